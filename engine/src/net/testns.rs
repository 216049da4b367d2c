//! Test support: run a test body in a fresh network namespace, and build links there.
//! Real kernel objects, no mocks; these need root (CAP_NET_ADMIN) and fail without it.

use std::future::Future;
use std::net::IpAddr;

use rtnetlink::{LinkUnspec, LinkVeth};

use super::netlink::Netlink;

/// Runs `body` on a new thread that first moves into a new, empty network namespace (only
/// `lo`, down), on a current-thread tokio runtime. Netlink and other sockets opened there,
/// and threads spawned from there (`spawn_blocking`), live in that namespace.
pub(crate) fn in_new_netns<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) failed: these tests need root");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(body());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

pub(crate) async fn link_up(name: &str) {
    let nl = Netlink::open().expect("netlink");
    nl.handle
        .link()
        .set(LinkUnspec::new_with_name(name).up().build())
        .execute()
        .await
        .unwrap_or_else(|e| panic!("set {name} up: {e}"));
}

/// A veth pair, both ends up.
pub(crate) async fn add_veth(a: &str, b: &str) {
    let nl = Netlink::open().expect("netlink");
    nl.handle
        .link()
        .add(LinkVeth::new(a, b).up().build())
        .execute()
        .await
        .unwrap_or_else(|e| panic!("add veth {a}/{b}: {e}"));
    link_up(b).await;
}

pub(crate) async fn add_addr(ifname: &str, addr: &str, prefix_len: u8) {
    let ip: IpAddr = addr.parse().expect("test address");
    let index = nix::net::if_::if_nametoindex(ifname).expect("test interface");
    let nl = Netlink::open().expect("netlink");
    let mut req = nl.handle.address().add(index, ip, prefix_len);
    if ip.is_ipv6() {
        req.message_mut().header.flags |=
            rtnetlink::packet_route::address::AddressHeaderFlags::Nodad;
    }
    req.execute()
        .await
        .unwrap_or_else(|e| panic!("add {addr}/{prefix_len} to {ifname}: {e}"));
}

/// `(ifindex, prefix_len)` of every interface address equal to `addr`.
pub(crate) async fn placements_of(addr: IpAddr) -> Vec<(u32, u8)> {
    let nl = Netlink::open().expect("netlink");
    nl.addresses()
        .await
        .expect("address dump")
        .iter()
        .filter(|e| e.addr == addr)
        .map(|e| (e.ifindex, e.prefix_len))
        .collect()
}

/// The hardware address of `ifname`, as netlink reports it.
pub(crate) async fn mac_of(ifname: &str) -> [u8; 6] {
    use futures::TryStreamExt;
    use rtnetlink::packet_route::link::LinkAttribute;
    let nl = Netlink::open().expect("netlink");
    let links: Vec<_> = nl
        .handle
        .link()
        .get()
        .match_name(ifname.to_string())
        .execute()
        .try_collect()
        .await
        .expect("link dump");
    let mac = links
        .iter()
        .flat_map(|l| l.attributes.iter())
        .find_map(|a| match a {
            LinkAttribute::Address(mac) => Some(mac.clone()),
            _ => None,
        })
        .expect("link has an address");
    mac.try_into().expect("6-byte MAC")
}
