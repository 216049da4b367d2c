//! A blocking rtnetlink exchange for what the loader needs about one interface: its MAC and
//! the XDP program attached to it; and removing a legacy (netlink) XDP attachment.
//!
//! Blocking on purpose: it is one request/answer on a local socket, and [`super::XdpFilter`]
//! is used from synchronous code as well as from tokio (where it is a few microseconds).
//! The socket acts in the calling thread's network namespace.

use std::io;

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkInfo, LinkMessage, LinkXdp, XdpAttached,
};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::XdpError;

/// XDP_FLAGS_SKB_MODE / XDP_FLAGS_DRV_MODE / XDP_FLAGS_HW_MODE (include/uapi/linux/if_link.h).
pub(super) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(super) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_FLAGS_HW_MODE: u32 = 1 << 3;

/// What the kernel reports about one interface.
pub(super) struct LinkState {
    pub mac: Option<[u8; 6]>,
    /// A veth end (see `attach.rs` on why that matters).
    pub is_veth: bool,
    /// The attached XDP program: id, and the mode flag that detaches it.
    pub xdp: Option<(u32, u32)>,
}

pub(super) fn link_state(ifindex: u32) -> Result<LinkState, XdpError> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let answers = exchange(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST, "get link")?;
    let link = answers
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })
        .ok_or_else(|| netlink_err("get link", io::Error::other("no link in the answer")))?;
    let mut state = LinkState {
        mac: None,
        is_veth: false,
        xdp: None,
    };
    for attr in &link.attributes {
        match attr {
            LinkAttribute::Address(a) => state.mac = a.as_slice().try_into().ok(),
            LinkAttribute::Xdp(x) => state.xdp = attached(x),
            LinkAttribute::LinkInfo(info) => {
                state.is_veth = info
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth)));
            }
            _ => {}
        }
    }
    Ok(state)
}

/// The program id and its mode flag from an `IFLA_XDP` nest.
fn attached(nest: &[LinkXdp]) -> Option<(u32, u32)> {
    let mode = nest.iter().find_map(|x| match x {
        LinkXdp::Attached(XdpAttached::Driver) => Some(XDP_FLAGS_DRV_MODE),
        LinkXdp::Attached(XdpAttached::SocketBuffer) => Some(XDP_FLAGS_SKB_MODE),
        LinkXdp::Attached(XdpAttached::Hardware) => Some(XDP_FLAGS_HW_MODE),
        _ => None,
    })?;
    let id = nest.iter().find_map(|x| match x {
        LinkXdp::ProgId(id) => Some(*id),
        _ => None,
    })?;
    Some((id, mode))
}

/// Attaches program `fd` (or detaches, with -1) through netlink, the pre-bpf_link way. The
/// attachment outlives the process that made it: that is what leaves stale programs behind.
pub(super) fn set_xdp_fd(ifindex: u32, fd: i32, mode_flag: u32) -> Result<(), XdpError> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(vec![
        LinkXdp::Fd(fd),
        LinkXdp::Flags(mode_flag),
    ]));
    exchange(
        RouteNetlinkMessage::SetLink(msg),
        NLM_F_REQUEST | NLM_F_ACK,
        "set xdp",
    )?;
    Ok(())
}

/// Sends one request and collects the answers up to the ACK (or the single answer).
fn exchange(
    msg: RouteNetlinkMessage,
    flags: u16,
    what: &'static str,
) -> Result<Vec<RouteNetlinkMessage>, XdpError> {
    let err = |e| netlink_err(what, e);
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
    socket.bind_auto().map_err(err)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0).map_err(err)?;

    let wants_ack = flags & NLM_F_ACK != 0;
    let mut answers = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full().map_err(err)?;
        let mut offset = 0;
        while offset < data.len() {
            let rest = &data[offset..];
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(err(e.to_io())),
                NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(answers),
                NetlinkPayload::InnerMessage(m) => answers.push(m),
                _ => {}
            }
            if len == 0 {
                break;
            }
            // Messages are 4-byte aligned.
            offset += (len + 3) & !3;
        }
        if !wants_ack && !answers.is_empty() {
            return Ok(answers);
        }
    }
}

fn netlink_err(what: &'static str, source: io::Error) -> XdpError {
    XdpError::Netlink { what, source }
}
