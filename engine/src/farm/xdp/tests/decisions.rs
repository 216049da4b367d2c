//! Which frames are accepted, dropped or passed, and the counters that say so.

use std::net::{IpAddr, Ipv4Addr};

use super::super::XdpError;
use super::packet::{self, ACK, SYN};
use super::*;

#[test]
fn own_bucket_accepted_with_mac_rewritten() {
    let mut f = filter();
    for v6 in [false, true] {
        let client = owned_client(v6);
        let before = f.counters().expect("counters");
        let frame = tcp_to_vip(client, 40_000, 80, SYN);
        assert_accepted(&run(&mut f, &frame), &frame);
        let after = f.counters().expect("counters");
        assert_eq!(after.accepted, before.accepted + 1, "v6={v6}");
        assert_eq!(after.dropped, before.dropped);
        let b = bucket(client, 0, FilterMode::OnAddr) as usize;
        assert!(f.bucket_accepts().expect("hits")[b] >= 1);
    }
}

#[test]
fn foreign_bucket_dropped() {
    let mut f = filter();
    for v6 in [false, true] {
        let before = f.counters().expect("counters");
        let frame = tcp_to_vip(foreign_client(v6), 40_000, 80, SYN);
        assert_eq!(run(&mut f, &frame).action, TestRun::DROP, "v6={v6}");
        let after = f.counters().expect("counters");
        assert_eq!(after.dropped, before.dropped + 1);
        assert_eq!(after.accepted, before.accepted);
    }
}

/// The kernel's verdict for many clients and ports agrees with `bucket_for` (same hash on both
/// sides), on_addr keeps a client on one bucket whatever its port, on_port spreads it.
#[test]
fn on_addr_and_on_port_follow_the_shared_hash() {
    let mut f = filter();
    let client = IpAddr::V4(Ipv4Addr::new(192, 168, 50, 7));
    let mut on_port_verdicts = std::collections::HashSet::new();
    for sport in 1000..1064u16 {
        // Port 80: on_addr.
        let frame = tcp_to_vip(client, sport, 80, SYN);
        let owned = bucket(client, sport, FilterMode::OnAddr).is_multiple_of(2);
        let want = if owned { TestRun::PASS } else { TestRun::DROP };
        assert_eq!(run(&mut f, &frame).action, want, "on_addr, port {sport}");
        // Port 81: on_port.
        let frame = tcp_to_vip(client, sport, 81, SYN);
        let owned = bucket(client, sport, FilterMode::OnPort).is_multiple_of(2);
        let want = if owned { TestRun::PASS } else { TestRun::DROP };
        assert_eq!(run(&mut f, &frame).action, want, "on_port, port {sport}");
        on_port_verdicts.insert(want);
    }
    assert_eq!(
        on_port_verdicts.len(),
        2,
        "on_port spreads one client's ports"
    );
    for i in 1..=200u8 {
        for v6 in [false, true] {
            let c = match v6 {
                false => IpAddr::V4(Ipv4Addr::new(172, 16, i, 255 - i)),
                true => format!("2001:db8::{i:x}:{:x}", 7 * u16::from(i))
                    .parse()
                    .expect("v6"),
            };
            let frame = tcp_to_vip(c, 3333, 81, ACK);
            let owned = bucket(c, 3333, FilterMode::OnPort).is_multiple_of(2);
            let want = if owned { TestRun::PASS } else { TestRun::DROP };
            assert_eq!(run(&mut f, &frame).action, want, "client {c}");
        }
    }
}

#[test]
fn other_traffic_passes_untouched() {
    let mut f = filter();
    let owned = owned_client(false);
    let IpAddr::V4(owned4) = owned else {
        unreachable!("v4 client")
    };
    let other_ip = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 101));
    let vip4 = IpAddr::V4(VIP4);
    let good = tcp_to_vip(owned, 40_000, 80, SYN);
    let eth_ip = |ip: &[u8]| packet::ethernet(vmac(), 0x0800, ip);
    let full_ip = packet::ipv4(owned4, VIP4, 6, 0, &packet::tcp(40_000, 80, SYN));
    let mut bad_ihl = full_ip.clone();
    bad_ihl[0] = 0x44;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "another IP behind the virtual MAC",
            packet::frame(vmac(), owned, 40_000, other_ip, 80, Some(SYN)),
        ),
        (
            "the VIP sent to this node's own MAC",
            packet::frame(OWN_MAC, owned, 40_000, vip4, 80, Some(SYN)),
        ),
        ("ARP for the VIP", packet::arp_request(owned4, VIP4)),
        ("port without a rule", tcp_to_vip(owned, 40_000, 8080, SYN)),
        (
            "UDP to a TCP-only port",
            packet::frame(vmac(), owned, 40_000, vip4, 80, None),
        ),
        (
            "ICMP to the VIP",
            eth_ip(&packet::ipv4(owned4, VIP4, 1, 0, &[8, 0, 0, 0, 0, 1, 0, 1])),
        ),
        (
            "Ethernet header only",
            packet::ethernet(vmac(), 0x0800, &[]),
        ),
        ("truncated IPv4 header", eth_ip(&full_ip[..19])),
        ("truncated TCP header", eth_ip(&full_ip[..20 + 19])),
        ("IPv4 header length < 20", eth_ip(&bad_ihl)),
        (
            "IPv6 extension header",
            packet::ethernet(
                vmac(),
                0x86dd,
                &packet::ipv6(
                    "fd00:7::1".parse().expect("v6"),
                    VIP6,
                    0,
                    &packet::tcp(40_000, 80, SYN),
                ),
            ),
        ),
        (
            "truncated IPv6 header",
            packet::ethernet(vmac(), 0x86dd, &[0x60; 39]),
        ),
    ];
    // Sanity: the good frame is accepted, so each case below fails for its own reason.
    assert_accepted(&run(&mut f, &good), &good);
    let before = f.counters().expect("counters");
    for (what, frame) in &cases {
        assert_passed_untouched(&run(&mut f, frame), frame, what);
    }
    let after = f.counters().expect("counters");
    assert_eq!(after.passed, before.passed + cases.len() as u64);
    assert_eq!(
        (after.accepted, after.dropped),
        (before.accepted, before.dropped)
    );
}

#[test]
fn ipv6_unconfigured_passes() {
    let mut cfg = config();
    cfg.vip6 = None;
    let mut f = XdpFilter::load_unattached(&XdpObject::locate(), &cfg).expect("load");
    f.set_rules(&[rule(80, Proto::Tcp, FilterMode::OnAddr)])
        .expect("rules");
    f.set_owned_buckets(&half_owned()).expect("buckets");
    for client in [owned_client(true), foreign_client(true)] {
        let frame = tcp_to_vip(client, 40_000, 80, SYN);
        assert_passed_untouched(&run(&mut f, &frame), &frame, "IPv6 without a v6 VIP");
    }
}

#[test]
fn unconfigured_filter_passes_everything() {
    let mut f = XdpFilter::load_unattached(&XdpObject::locate(), &config()).expect("load");
    f.set_rules(&[rule(80, Proto::Tcp, FilterMode::OnAddr)])
        .expect("rules");
    let frame = tcp_to_vip(foreign_client(false), 40_000, 80, SYN);
    assert_passed_untouched(&run(&mut f, &frame), &frame, "no bucket table yet");
}

#[test]
fn vlan_tagged_and_wildcard_port() {
    let mut f = filter();
    f.set_rules(&[rule(0, Proto::Tcp, FilterMode::OnAddr)])
        .expect("rules");
    let frame = tcp_to_vip(owned_client(false), 40_000, 8443, SYN);
    assert_accepted(&run(&mut f, &frame), &frame);
    // 802.1Q tag 42 between the MACs and the EtherType.
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 42]);
    tagged.extend_from_slice(&frame[12..]);
    assert_accepted(&run(&mut f, &tagged), &tagged);
    let foreign = tcp_to_vip(foreign_client(false), 40_000, 9, SYN);
    assert_eq!(run(&mut f, &foreign).action, TestRun::DROP);
}

/// A rule for one port wins over the protocol's wildcard; removed rules stop matching.
#[test]
fn rules_override_and_retire() {
    let mut f = filter();
    let client = IpAddr::V4(Ipv4Addr::new(192, 168, 60, 1));
    // A client port whose on_port verdict differs from its on_addr one.
    let sport = (1000..2000u16)
        .find(|p| {
            bucket(client, *p, FilterMode::OnPort) % 2 != bucket(client, 0, FilterMode::OnAddr) % 2
        })
        .expect("some port differs");
    let verdict = |owned: bool| if owned { TestRun::PASS } else { TestRun::DROP };
    let by_addr = verdict(bucket(client, 0, FilterMode::OnAddr).is_multiple_of(2));
    let by_port = verdict(bucket(client, sport, FilterMode::OnPort).is_multiple_of(2));
    let frame = tcp_to_vip(client, sport, 443, SYN);
    f.set_rules(&[rule(0, Proto::Tcp, FilterMode::OnAddr)])
        .expect("rules");
    assert_eq!(run(&mut f, &frame).action, by_addr, "wildcard on_addr");
    f.set_rules(&[
        rule(0, Proto::Tcp, FilterMode::OnAddr),
        rule(443, Proto::Tcp, FilterMode::OnPort),
    ])
    .expect("rules");
    assert_eq!(run(&mut f, &frame).action, by_port, "port 443 on_port wins");
    let other_port = tcp_to_vip(client, sport, 444, SYN);
    assert_eq!(
        run(&mut f, &other_port).action,
        by_addr,
        "other ports keep the wildcard"
    );
    f.set_rules(&[rule(443, Proto::Tcp, FilterMode::OnPort)])
        .expect("rules");
    assert_passed_untouched(&run(&mut f, &other_port), &other_port, "wildcard removed");
    f.set_rules(&[]).expect("rules");
    assert_passed_untouched(&run(&mut f, &frame), &frame, "no rules");
    assert!(f.rules().is_empty());
}

/// Fragments carry no ports (but the first): all fragments of a datagram follow the client
/// address alone; fragments of a protocol without rules are not farm traffic.
#[test]
fn fragments_follow_the_client_address() {
    let mut f = filter();
    let IpAddr::V4(owned) = owned_client(false) else {
        unreachable!()
    };
    let IpAddr::V4(foreign) = foreign_client(false) else {
        unreachable!()
    };
    let later =
        |c, proto| packet::ethernet(vmac(), 0x0800, &packet::ipv4(c, VIP4, proto, 185, &[0; 24]));
    let first = |c| {
        packet::ethernet(
            vmac(),
            0x0800,
            &packet::ipv4(c, VIP4, 17, 0x2000, &packet::udp(9, 53)),
        )
    };
    let frame = later(owned, 17);
    assert_accepted(&run(&mut f, &frame), &frame);
    let frame = first(owned);
    assert_accepted(&run(&mut f, &frame), &frame);
    assert_eq!(run(&mut f, &later(foreign, 6)).action, TestRun::DROP);
    f.set_rules(&[rule(53, Proto::Udp, FilterMode::OnAddr)])
        .expect("rules");
    let frame = later(foreign, 6);
    assert_passed_untouched(&run(&mut f, &frame), &frame, "TCP fragment, no TCP rule");
}

#[test]
fn invalid_settings_are_refused() {
    let mut f = filter();
    assert!(matches!(
        f.set_owned_buckets(&[]),
        Err(XdpError::Invalid(_))
    ));
    let too_many = vec![BucketState::Owned; super::super::MAX_BUCKETS as usize + 1];
    assert!(matches!(
        f.set_owned_buckets(&too_many),
        Err(XdpError::Invalid(_))
    ));
    let dup = [
        rule(80, Proto::Tcp, FilterMode::OnAddr),
        rule(80, Proto::Tcp, FilterMode::OnPort),
    ];
    assert!(matches!(f.set_rules(&dup), Err(XdpError::Invalid(_))));
    let mut cfg = config();
    cfg.vip4 = None;
    cfg.vip6 = None;
    assert!(matches!(f.set_config(&cfg), Err(XdpError::Invalid(_))));
}

/// Needs neither root nor the object.
#[test]
fn missing_object_says_how_to_build_it() {
    let object = XdpObject::Path("/nonexistent/farm-ebpf".into());
    let err = XdpFilter::load_unattached(&object, &config()).expect_err("no object");
    assert!(matches!(err, XdpError::ObjectMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cargo xtask build-ebpf"), "{msg}");
    assert!(msg.contains("/nonexistent/farm-ebpf"), "{msg}");
    let err = XdpFilter::load(&object, "lo", &config()).expect_err("no object");
    assert!(matches!(err, XdpError::ObjectMissing { .. }), "{err:?}");
}

#[test]
fn benchmark_runs() {
    let figures = super::super::bench(&XdpObject::locate(), 1000).expect("bench");
    assert!(figures.accept_ns > 0 && figures.drop_ns > 0, "{figures:?}");
}
