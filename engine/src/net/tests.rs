//! Real-kernel tests of the network drivers, each in its own network namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use etherparse::{EtherType, NetSlice, SlicedPacket};
use nix::sys::socket::MsgFlags;
use socket2::{Domain, Socket, Type};

use super::testns::{add_addr, add_veth, in_new_netns, mac_of, placements_of};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
fn vip_add_del_in_subnet() {
    in_new_netns(|| async {
        add_veth("hk0", "hk0p").await;
        add_addr("hk0", "10.77.0.1", 24).await;
        let hk0 = nix::net::if_::if_nametoindex("hk0").expect("hk0");
        let vip = ip("10.77.0.99");

        assert!(!has_vip(vip).await.expect("has_vip"));
        let placed = add_vip(vip, None).await.expect("add_vip");
        assert_eq!(
            placed,
            VipPlacement {
                ifname: "hk0".into(),
                ifindex: hk0,
                prefix_len: 24
            }
        );
        assert!(has_vip(vip).await.expect("has_vip"));
        assert_eq!(placements_of(vip).await, vec![(hk0, 24)]);

        let local = local_addresses().await.expect("local_addresses");
        assert!(local.contains(&ip("10.77.0.1")), "{local:?}");
        assert!(local.contains(&vip), "{local:?}");

        // Idempotent: a second add changes nothing.
        let again = add_vip(vip, None).await.expect("second add_vip");
        assert_eq!(again, placed);
        assert_eq!(placements_of(vip).await, vec![(hk0, 24)]);
        // Same with the interface named.
        assert_eq!(add_vip(vip, Some("hk0")).await.expect("named add"), placed);

        assert!(del_vip(vip).await.expect("del_vip"));
        assert!(!has_vip(vip).await.expect("has_vip"));
        assert!(placements_of(vip).await.is_empty());
        assert!(!del_vip(vip).await.expect("second del_vip"));
        // The interface's own address is untouched.
        assert!(has_vip(ip("10.77.0.1")).await.expect("has_vip"));
    });
}

#[test]
fn vip_without_matching_subnet_is_a_clear_error() {
    in_new_netns(|| async {
        add_veth("hk0", "hk0p").await;
        add_addr("hk0", "10.77.0.1", 24).await;
        let err = add_vip(ip("10.99.0.1"), None)
            .await
            .expect_err("no interface holds 10.99.0.0/24");
        assert!(matches!(err, NetError::NoMatchingSubnet { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no interface has an address in the subnet of 10.99.0.1; set <interface name=...>"
        );
        assert!(!has_vip(ip("10.99.0.1")).await.expect("has_vip"));
    });
}

#[test]
fn vip_on_named_interface() {
    in_new_netns(|| async {
        add_veth("hk0", "hk0p").await;
        add_veth("hk1", "hk1p").await;
        add_addr("hk0", "10.77.0.1", 24).await;
        let hk1 = nix::net::if_::if_nametoindex("hk1").expect("hk1");

        // Named interface without a matching subnet: a host address.
        let placed = add_vip(ip("10.99.0.1"), Some("hk1")).await.expect("add");
        assert_eq!(
            placed,
            VipPlacement {
                ifname: "hk1".into(),
                ifindex: hk1,
                prefix_len: 32
            }
        );
        assert_eq!(placements_of(ip("10.99.0.1")).await, vec![(hk1, 32)]);

        // Present elsewhere than configured: refused, nothing changed.
        let err = add_vip(ip("10.99.0.1"), Some("hk0"))
            .await
            .expect_err("already on hk1");
        assert!(matches!(err, NetError::VipElsewhere { .. }), "{err:?}");
        assert!(err.to_string().contains("hk1"), "{err}");

        let err = add_vip(ip("10.77.0.5"), Some("nope0"))
            .await
            .expect_err("no such interface");
        assert!(matches!(err, NetError::InterfaceNotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("nope0"), "{err}");
    });
}

#[test]
fn vip_ipv6() {
    in_new_netns(|| async {
        add_veth("hk0", "hk0p").await;
        add_addr("hk0", "fd00:77::1", 64).await;
        let hk0 = nix::net::if_::if_nametoindex("hk0").expect("hk0");
        let vip = ip("fd00:77::99");
        let placed = add_vip(vip, None).await.expect("add_vip v6");
        assert_eq!((placed.ifindex, placed.prefix_len), (hk0, 64));
        assert_eq!(placements_of(vip).await, vec![(hk0, 64)]);
        assert!(local_addresses().await.expect("local").contains(&vip));
        assert!(del_vip(vip).await.expect("del_vip v6"));
        assert!(!has_vip(vip).await.expect("has_vip v6"));
    });
}

#[test]
fn gratuitous_arp_frame_on_the_wire() {
    in_new_netns(|| async {
        add_veth("hkv0", "hkv1").await;
        let peer = nix::net::if_::if_nametoindex("hkv1").expect("hkv1");
        let mac = mac_of("hkv0").await;

        // Capture the ARP frames arriving on the other end.
        let capture = Socket::new(Domain::PACKET, Type::RAW, None).expect("capture socket");
        let bind_to = super::garp::broadcast_sockaddr(peer).expect("sockaddr_ll");
        capture
            .bind(&bind_to)
            .expect("bind capture socket to hkv1 for ARP");
        capture
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("read timeout");

        let vip = Ipv4Addr::new(10, 77, 0, 99);
        tokio::task::spawn_blocking(move || {
            send_gratuitous_arp("hkv0", vip, 2, Duration::from_millis(50))
        })
        .await
        .expect("join")
        .expect("send_gratuitous_arp");

        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 2048];
        let mut seen = 0;
        while seen < 2 {
            assert!(
                Instant::now() < deadline,
                "only {seen} GARP frames seen on hkv1"
            );
            let Ok(n) = nix::sys::socket::recv(capture.as_raw_fd(), &mut buf, MsgFlags::empty())
            else {
                continue;
            };
            let frame = &buf[..n];
            let packet = SlicedPacket::from_ethernet(frame).expect("ethernet frame");
            let Some(NetSlice::Arp(arp)) = packet.net else {
                continue;
            };
            if arp.sender_protocol_addr() != vip.octets() {
                continue;
            }
            let eth = packet
                .link
                .as_ref()
                .and_then(|l| l.to_header())
                .expect("eth");
            let eth = eth.ethernet2().expect("ethernet II");
            assert_eq!(eth.destination, [0xff; 6], "broadcast destination");
            assert_eq!(eth.source, mac, "source MAC");
            assert_eq!(eth.ether_type, EtherType::ARP);
            assert_eq!(&frame[12..14], &[0x08, 0x06]);
            assert_eq!(arp.operation(), etherparse::ArpOperation::REQUEST);
            assert_eq!(arp.sender_hw_addr(), mac, "sender MAC");
            assert_eq!(arp.target_protocol_addr(), vip.octets(), "target IP");
            seen += 1;
        }
    });
}

#[test]
fn gratuitous_arp_on_missing_interface_names_it() {
    in_new_netns(|| async {
        let err = send_gratuitous_arp("nope0", Ipv4Addr::new(10, 77, 0, 99), 1, Duration::ZERO)
            .expect_err("no such interface");
        assert!(err.to_string().contains("nope0"), "{err}");
    });
}
