//! Bounds-checked packet access and header parsing (Ethernet with up to two VLAN tags, IPv4
//! with options, IPv6 without extension headers, TCP, UDP). Every read is preceded by a check
//! against `data_end` in the form the verifier tracks.

use aya_ebpf::programs::XdpContext;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;

/// A pointer to `T` at `offset` in the packet, if the packet holds all of it.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// `N` bytes at `offset` (byte arrays: no alignment assumption).
#[inline(always)]
pub fn bytes_at<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<[u8; N]> {
    let p = ptr_at::<[u8; N]>(ctx, offset)?;
    // SAFETY: `ptr_at` checked that the N bytes lie inside the packet; [u8; N] has alignment 1.
    Some(unsafe { *p })
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    bytes_at::<2>(ctx, offset).map(u16::from_be_bytes)
}

/// The Ethernet header: destination MAC, and the EtherType and offset of the payload after
/// up to two VLAN tags.
pub struct Eth {
    pub dst: [u8; 6],
    pub ether_type: u16,
    pub l3: usize,
}

#[inline(always)]
pub fn eth(ctx: &XdpContext) -> Option<Eth> {
    let dst = bytes_at::<6>(ctx, 0)?;
    let mut ether_type = be16_at(ctx, 12)?;
    let mut l3 = ETH_HLEN;
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        ether_type = be16_at(ctx, l3 + 2)?;
        l3 += VLAN_HLEN;
        if ether_type == ETH_P_8021Q {
            ether_type = be16_at(ctx, l3 + 2)?;
            l3 += VLAN_HLEN;
        }
    }
    Some(Eth {
        dst,
        ether_type,
        l3,
    })
}

/// What the filter needs from the IP header.
pub struct Ip {
    pub dst_matches: bool,
    pub proto: u8,
    /// Offset of the transport header.
    pub l4: usize,
    /// A fragment (first or later): no reliable ports.
    pub fragment: bool,
}

/// IPv4 header at `l3`; `None` if truncated or malformed. `src` receives the client address.
#[inline(always)]
pub fn ipv4(ctx: &XdpContext, l3: usize, vip: [u8; 4], src: &mut [u8; 4]) -> Option<Ip> {
    let hdr = bytes_at::<20>(ctx, l3)?;
    if hdr[0] >> 4 != 4 {
        return None;
    }
    let ihl = (hdr[0] & 0x0f) as usize;
    if ihl < 5 {
        return None;
    }
    let dst = [hdr[16], hdr[17], hdr[18], hdr[19]];
    *src = [hdr[12], hdr[13], hdr[14], hdr[15]];
    // More-fragments flag or a non-zero fragment offset.
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff;
    Some(Ip {
        dst_matches: dst == vip,
        proto: hdr[9],
        l4: l3 + ihl * 4,
        fragment: frag != 0,
    })
}

/// IPv6 fixed header at `l3`. Extension headers are not followed: a packet with any (including
/// a fragment header) shows a next header that is neither TCP nor UDP and is passed.
#[inline(always)]
pub fn ipv6(ctx: &XdpContext, l3: usize, vip: [u8; 16], src: &mut [u8; 16]) -> Option<Ip> {
    let first = bytes_at::<8>(ctx, l3)?;
    if first[0] >> 4 != 6 {
        return None;
    }
    *src = bytes_at::<16>(ctx, l3 + 8)?;
    let dst = bytes_at::<16>(ctx, l3 + 24)?;
    Some(Ip {
        dst_matches: dst == vip,
        proto: first[6],
        l4: l3 + 40,
        fragment: false,
    })
}

/// Source port, destination port and (TCP) whether the segment opens a connection (SYN
/// without ACK). `None` if the header is truncated.
#[inline(always)]
pub fn tcp(ctx: &XdpContext, l4: usize) -> Option<(u16, u16, bool)> {
    let hdr = bytes_at::<20>(ctx, l4)?;
    let flags = hdr[13];
    let syn = flags & 0x02 != 0 && flags & 0x10 == 0;
    Some((
        u16::from_be_bytes([hdr[0], hdr[1]]),
        u16::from_be_bytes([hdr[2], hdr[3]]),
        syn,
    ))
}

#[inline(always)]
pub fn udp(ctx: &XdpContext, l4: usize) -> Option<(u16, u16)> {
    let hdr = bytes_at::<8>(ctx, l4)?;
    Some((
        u16::from_be_bytes([hdr[0], hdr[1]]),
        u16::from_be_bytes([hdr[2], hdr[3]]),
    ))
}

/// Rewrites the destination MAC (the frame was checked to hold an Ethernet header).
/// Byte by byte: an array copy compiles to a call to `memmove`.
#[inline(always)]
pub fn set_dst_mac(ctx: &XdpContext, mac: [u8; 6]) {
    if let Some(p) = ptr_at::<[u8; 6]>(ctx, 0) {
        let p = p.cast::<u8>();
        // SAFETY: `ptr_at` checked that the 6 bytes are inside the packet, which XDP may
        // write; the offsets are constants below 6.
        unsafe {
            p.write(mac[0]);
            p.add(1).write(mac[1]);
            p.add(2).write(mac[2]);
            p.add(3).write(mac[3]);
            p.add(4).write(mac[4]);
            p.add(5).write(mac[5]);
        }
    }
}
