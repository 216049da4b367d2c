//! Hand-made frames for `BPF_PROG_TEST_RUN` (tests and the benchmark) and for injection on a
//! veth in tests. The IPv4 header checksum is right (the stack checks it); TCP/UDP checksums
//! are left 0 (the filter does not look at them; UDP over IPv4 may omit it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[cfg(test)]
pub(crate) const SYN: u8 = 0x02;
pub(crate) const ACK: u8 = 0x10;
/// Source MAC of every crafted frame (a client or the router).
pub(crate) const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Ethernet header + `payload`.
pub(crate) fn ethernet(dst: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A 20-byte IPv4 header (no options) + `payload`; `frag` is the flags/offset field.
pub(crate) fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap_or(u16::MAX);
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1]); // id
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]); // ttl, proto, checksum
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The Internet checksum (RFC 1071) of `data` (even length).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub(crate) fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A 20-byte TCP header with `flags` + 16 bytes of payload.
pub(crate) fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::with_capacity(36);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // seq, ack
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]); // offset, flags, window, …
    t.extend_from_slice(&[0xab; 16]);
    t
}

/// An 8-byte UDP header + 16 bytes of payload.
pub(crate) fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::with_capacity(24);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 24, 0, 0]);
    u.extend_from_slice(&[0xcd; 16]);
    u
}

/// A whole frame: TCP (`flags`) or UDP (`flags` = None) from `client:sport` to `server:dport`.
pub(crate) fn frame(
    dst_mac: [u8; 6],
    client: IpAddr,
    sport: u16,
    server: IpAddr,
    dport: u16,
    flags: Option<u8>,
) -> Vec<u8> {
    let (proto, l4) = match flags {
        Some(f) => (6, tcp(sport, dport, f)),
        None => (17, udp(sport, dport)),
    };
    match (client, server) {
        (IpAddr::V6(c), IpAddr::V6(s)) => ethernet(dst_mac, 0x86dd, &ipv6(c, s, proto, &l4)),
        (IpAddr::V4(c), IpAddr::V4(s)) => ethernet(dst_mac, 0x0800, &ipv4(c, s, proto, 0, &l4)),
        // Mixed families: an IPv4 frame to the unspecified address (never farm traffic).
        _ => ethernet(
            dst_mac,
            0x0800,
            &ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, proto, 0, &l4),
        ),
    }
}

#[cfg(test)]
/// An ARP request "who has `target`" (broadcast).
pub(crate) fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&CLIENT_MAC);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    ethernet([0xff; 6], 0x0806, &a)
}
