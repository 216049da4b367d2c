//! Answering ARP for a farm VIP with the virtual MAC: the pure frame logic, and which node of
//! a view answers.
//!
//! Clients must send the VIP's frames to the virtual MAC, which no port ever sends from, so
//! that switches flood them to every node. Exactly one node (see [`responder`]) answers ARP
//! requests for the VIP: the ARP payload says "VIP is at the virtual MAC", while the Ethernet
//! source is the answering node's own MAC, so switches never learn the virtual one.

use etherparse::{ArpEthIpv4Packet, ArpOperation, PacketBuilder};
use std::net::Ipv4Addr;

use super::membership::View;

const ETH_HEADER: usize = 14;
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
/// Ethernet, IPv4, 6-byte MACs, 4-byte addresses, request.
const ARP_REQUEST_HEAD: [u8; 8] = [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01];
const ARP_LEN: usize = 28;
const MIN_FRAME: usize = 60;

/// The node of `view` that answers ARP for the VIP: its first member by name. Every member
/// computes the same from the agreed view; `None` for an empty view.
pub fn responder(view: &View) -> Option<&str> {
    view.members.iter().next().map(String::as_str)
}

/// The reply to `frame` if it is an ARP request for `vip`: "`vip` is at `virtual_mac`", sent
/// from `own_mac` to the requester. Anything else (other frames, other addresses, truncated
/// or malformed requests) gets `None`.
pub fn reply(
    frame: &[u8],
    vip: Ipv4Addr,
    virtual_mac: [u8; 6],
    own_mac: [u8; 6],
) -> Option<Vec<u8>> {
    if frame.get(12..14)? != ETHERTYPE_ARP {
        return None;
    }
    let arp = frame.get(ETH_HEADER..ETH_HEADER + ARP_LEN)?;
    if arp.get(..8)? != ARP_REQUEST_HEAD {
        return None;
    }
    let sender_mac: [u8; 6] = arp.get(8..14)?.try_into().ok()?;
    let sender_ip: [u8; 4] = arp.get(14..18)?.try_into().ok()?;
    let target_ip: [u8; 4] = arp.get(24..28)?.try_into().ok()?;
    if target_ip != vip.octets() || sender_ip == vip.octets() {
        // Not for the VIP, or a gratuitous announcement of it (never from us: we send none).
        return None;
    }
    let answer = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: virtual_mac,
        sender_ipv4: vip.octets(),
        target_mac: sender_mac,
        target_ipv4: sender_ip,
    };
    let builder = PacketBuilder::ethernet2(own_mac, sender_mac).arp(answer.into());
    let mut out = Vec::with_capacity(MIN_FRAME);
    builder.write_to_vec(&mut out).ok()?;
    if out.len() < MIN_FRAME {
        out.resize(MIN_FRAME, 0);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::farm::membership::ViewId;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 10);
    const VMAC: [u8; 6] = [0x5a, 0xfe, 10, 88, 0, 10];
    const OWN: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 0x64];

    fn request(target: Ipv4Addr, op: ArpOperation) -> Vec<u8> {
        let arp = ArpEthIpv4Packet {
            operation: op,
            sender_mac: CLIENT,
            sender_ipv4: [10, 88, 0, 100],
            target_mac: [0; 6],
            target_ipv4: target.octets(),
        };
        let mut f = Vec::new();
        PacketBuilder::ethernet2(CLIENT, [0xff; 6])
            .arp(arp.into())
            .write_to_vec(&mut f)
            .unwrap();
        f
    }

    #[test]
    fn a_request_for_the_vip_is_answered_with_the_virtual_mac_from_our_own() {
        let r = reply(&request(VIP, ArpOperation::REQUEST), VIP, VMAC, OWN).unwrap();
        assert_eq!(r.len(), MIN_FRAME);
        assert_eq!(&r[..6], &CLIENT, "to the requester");
        assert_eq!(&r[6..12], &OWN, "Ethernet source: never the virtual MAC");
        assert_eq!(&r[12..14], &ETHERTYPE_ARP);
        assert_eq!(&r[20..22], &[0, 2], "a reply");
        assert_eq!(&r[22..28], &VMAC, "the VIP is at the virtual MAC");
        assert_eq!(&r[28..32], &VIP.octets());
        assert_eq!(&r[32..38], &CLIENT);
        assert_eq!(&r[38..42], &[10, 88, 0, 100]);
    }

    #[test]
    fn other_frames_are_not_answered() {
        let other = Ipv4Addr::new(10, 88, 0, 1);
        assert_eq!(
            reply(&request(other, ArpOperation::REQUEST), VIP, VMAC, OWN),
            None
        );
        assert_eq!(
            reply(&request(VIP, ArpOperation::REPLY), VIP, VMAC, OWN),
            None
        );
        let full = request(VIP, ArpOperation::REQUEST);
        for n in 0..ETH_HEADER + ARP_LEN {
            assert_eq!(reply(&full[..n], VIP, VMAC, OWN), None, "truncated at {n}");
        }
        let mut ipv4 = full.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(reply(&ipv4, VIP, VMAC, OWN), None);
        let mut garp = full;
        garp[28..32].copy_from_slice(&VIP.octets());
        assert_eq!(reply(&garp, VIP, VMAC, OWN), None);
    }

    #[test]
    fn the_first_member_answers() {
        let view = View {
            members: ["node2", "node3"].iter().map(|s| s.to_string()).collect(),
            id: ViewId(1),
        };
        assert_eq!(responder(&view), Some("node2"));
        let empty = View {
            members: Default::default(),
            id: ViewId(2),
        };
        assert_eq!(responder(&empty), None);
    }
}
