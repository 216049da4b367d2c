//! Attaching the program: replace a stale hakit program, then native mode, else generic.
//!
//! Attachments are bpf_links owned by this process: if the daemon dies, the kernel detaches the
//! program (the node then accepts no farm traffic: frames to the virtual MAC are not for this
//! host). What can be left behind is a legacy netlink attachment (older kernels, other tools,
//! a daemon killed mid-way through a netlink fallback) or the link of a hung daemon still
//! holding it. Either one, if it runs a program named like ours, is detached before we
//! attach; a foreign XDP program is never touched.
//!
//! Native mode is not always the better one. veth runs "native" XDP on socket buffers that
//! already went through `eth_type_trans` with the original destination MAC: the frame is
//! marked for another host, and rewriting the MAC in XDP does not clear that mark, so the
//! stack still discards every accepted frame (seen on Linux 6.18). Generic mode re-derives
//! the packet type after the program changed the header. [`AttachMode::Auto`] therefore uses
//! generic mode on veth (the lab's and containers' links) and native mode elsewhere.

use aya::programs::links::LinkType;
use aya::programs::{Xdp, XdpMode as AyaMode, loaded_links, loaded_programs};
use farm_ebpf_common::PROGRAM_NAME;

use super::{XdpError, XdpMode, netlink, sys};

#[derive(Debug)]
pub(super) struct Attachment {
    pub mode: XdpMode,
    pub link: aya::programs::xdp::XdpLinkId,
    /// Id of the stale program detached to make room, if any.
    pub replaced: Option<u32>,
}

/// Which XDP mode to attach in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Native, falling back to generic if the driver refuses; generic on veth (see above).
    #[default]
    Auto,
    /// Native only (on veth: filters, but the stack discards accepted frames).
    Native,
    /// Generic (SKB) only.
    Generic,
}

/// `link`: what netlink reports on the interface (kind, attached program).
pub(super) fn attach(
    prog: &mut Xdp,
    ifname: &str,
    ifindex: u32,
    link: &netlink::LinkState,
    wanted: AttachMode,
) -> Result<Attachment, XdpError> {
    let existing = link.xdp;
    let replaced = match existing {
        Some((id, mode_flag)) => {
            remove_stale(ifname, ifindex, id, mode_flag)?;
            Some(id)
        }
        None => None,
    };
    let native_first = match wanted {
        AttachMode::Auto => !link.is_veth,
        AttachMode::Native => true,
        AttachMode::Generic => false,
    };
    let native = if native_first {
        match prog.attach_to_if_index(ifindex, AyaMode::Driver) {
            Ok(link) => return Ok(attachment(link, XdpMode::Native, replaced)),
            Err(e) if wanted == AttachMode::Native => {
                return Err(XdpError::Attach {
                    ifname: ifname.into(),
                    mode: XdpMode::Native,
                    source: Box::new(e),
                });
            }
            Err(e) => Some(e),
        }
    } else {
        None
    };
    match prog.attach_to_if_index(ifindex, AyaMode::Skb) {
        Ok(link) => Ok(attachment(link, XdpMode::Generic, replaced)),
        Err(generic) => Err(match native {
            Some(native) => XdpError::AttachEither {
                ifname: ifname.into(),
                native: Box::new(native),
                generic: Box::new(generic),
            },
            None => XdpError::Attach {
                ifname: ifname.into(),
                mode: XdpMode::Generic,
                source: Box::new(generic),
            },
        }),
    }
}

fn attachment(
    link: aya::programs::xdp::XdpLinkId,
    mode: XdpMode,
    replaced: Option<u32>,
) -> Attachment {
    Attachment {
        mode,
        link,
        replaced,
    }
}

fn remove_stale(ifname: &str, ifindex: u32, id: u32, mode_flag: u32) -> Result<(), XdpError> {
    let name = program_name(id).unwrap_or_default();
    if name != PROGRAM_NAME {
        return Err(XdpError::Busy {
            ifname: ifname.into(),
            id,
            name,
        });
    }
    match xdp_link_of(id) {
        Some(link_id) => sys::detach_link(link_id),
        None => netlink::set_xdp_fd(ifindex, -1, mode_flag),
    }
}

/// The kernel's name for program `id` (`None` if it is gone or unreadable).
fn program_name(id: u32) -> Option<String> {
    loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .and_then(|p| p.name_as_str().map(String::from))
}

/// The XDP bpf_link running program `id`, if it is attached through one.
fn xdp_link_of(id: u32) -> Option<u32> {
    loaded_links()
        .filter_map(Result::ok)
        .find(|l| l.program_id() == id && matches!(l.link_type(), Ok(LinkType::Xdp)))
        .map(|l| l.id())
}
