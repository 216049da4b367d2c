//! Gratuitous ARP: tells the LAN's switches and neighbours that the virtual IP now lives at
//! this interface's MAC address.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use etherparse::{ArpEthIpv4Packet, ArpOperation, PacketBuilder};
use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type, socklen_t};

use super::NetError;

const BROADCAST: [u8; 6] = [0xff; 6];
/// Ethernet frames shorter than this are padded on the wire; pad them ourselves so that the
/// frame is the same whatever the driver does.
const MIN_FRAME: usize = 60;

/// Sends `count` broadcast ARP requests with sender IP = target IP = `addr` and sender
/// MAC = the MAC of `ifname`, `interval` apart, through an `AF_PACKET` socket.
/// Blocking: call it inside `spawn_blocking`. The interface must be up.
pub fn send_gratuitous_arp(
    ifname: &str,
    addr: Ipv4Addr,
    count: u32,
    interval: Duration,
) -> Result<(), NetError> {
    let err = |step: &'static str| {
        move |source: std::io::Error| NetError::Garp {
            ifname: ifname.to_string(),
            addr: IpAddr::V4(addr),
            step,
            source,
        }
    };
    let ifindex = nix::net::if_::if_nametoindex(ifname)
        .map_err(|e| err("looking up the interface")(e.into()))?;
    // Protocol 0: this socket only sends, it receives nothing.
    let socket =
        Socket::new(Domain::PACKET, Type::RAW, None).map_err(err("opening an AF_PACKET socket"))?;
    let dest = broadcast_sockaddr(ifindex)
        .ok_or_else(|| err("building the link address")(std::io::ErrorKind::InvalidInput.into()))?;
    socket
        .bind(&dest)
        .map_err(err("binding to the interface"))?;
    // A packet socket bound to a device reports that device's hardware address.
    let own = socket
        .local_addr()
        .map_err(err("reading the interface MAC"))?;
    let mac = ethernet_mac(&own).ok_or_else(|| NetError::NotEthernet {
        ifname: ifname.to_string(),
    })?;
    let frame = garp_frame(mac, addr);
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        socket
            .send_to(&frame, &dest)
            .map_err(err("sending the frame"))?;
    }
    Ok(())
}

/// The Ethernet frame of a gratuitous ARP request, padded to the Ethernet minimum.
fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> Vec<u8> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: mac,
        sender_ipv4: addr.octets(),
        target_mac: [0; 6],
        target_ipv4: addr.octets(),
    };
    let builder = PacketBuilder::ethernet2(mac, BROADCAST).arp(arp.into());
    let mut frame = Vec::with_capacity(MIN_FRAME);
    // Writing into a Vec cannot fail; an empty frame would be caught by the kernel anyway.
    let _ = builder.write_to_vec(&mut frame);
    if frame.len() < MIN_FRAME {
        frame.resize(MIN_FRAME, 0);
    }
    frame
}

/// The MAC address in a packet socket's own address, if it is an Ethernet one.
pub(crate) fn ethernet_mac(addr: &SockAddr) -> Option<[u8; 6]> {
    if addr.family() != u16::try_from(libc::AF_PACKET).ok()? {
        return None;
    }
    // SAFETY: the storage behind a SockAddr is a whole sockaddr_storage (zeroed before the
    // kernel filled it), larger than and aligned for sockaddr_ll, and its family is
    // AF_PACKET, so it holds a sockaddr_ll (possibly with a short, zero-padded sll_addr).
    let ll: libc::sockaddr_ll = unsafe { addr.as_ptr().cast::<libc::sockaddr_ll>().read() };
    if ll.sll_hatype != libc::ARPHRD_ETHER || ll.sll_halen != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&ll.sll_addr[..6]);
    Some(mac)
}

/// `sockaddr_ll` for broadcast ARP frames on interface `ifindex`.
pub(crate) fn broadcast_sockaddr(ifindex: u32) -> Option<SockAddr> {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `view_as` checks that sockaddr_ll fits in the storage (sockaddr_storage is
    // larger and suitably aligned for every sockaddr type); sockaddr_ll is plain integers,
    // for which the all-zero storage is a valid value.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = u16::try_from(libc::AF_PACKET).ok()?;
    ll.sll_protocol = u16::try_from(libc::ETH_P_ARP).ok()?.to_be();
    ll.sll_ifindex = i32::try_from(ifindex).ok()?;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&BROADCAST);
    let len = socklen_t::try_from(size_of::<libc::sockaddr_ll>()).ok()?;
    // SAFETY: the storage holds a fully initialised sockaddr_ll with family AF_PACKET and
    // `len` is exactly its size, so the kernel will read it as that type.
    Some(unsafe { SockAddr::new(storage, len) })
}
