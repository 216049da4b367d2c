//! Tests of the real program in the real kernel: decisions through `BPF_PROG_TEST_RUN` on
//! crafted frames, and attachment on a veth in a private network namespace. They need root
//! and the object from `cargo xtask build-ebpf` (`cargo xtask test` builds it first).

mod decisions;
mod flows;
mod setup;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet;
use super::{
    BucketState, FilterConfig, FilterMode, Proto, Rule, TestRun, XdpFilter, XdpObject, bucket_for,
    virtual_mac,
};

const VIP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x100);
const OWN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const BUCKETS: u32 = 256;

fn vmac() -> [u8; 6] {
    virtual_mac(IpAddr::V4(VIP4))
}

fn config() -> FilterConfig {
    FilterConfig {
        vip4: Some(VIP4),
        vip6: Some(VIP6),
        virtual_mac: None,
        interface_mac: Some(OWN_MAC),
        seed: 0x1234_5678,
    }
}

fn rule(port: u16, proto: Proto, filter: FilterMode) -> Rule {
    Rule {
        port,
        proto,
        filter,
    }
}

/// Even buckets owned, odd ones another node's.
fn half_owned() -> Vec<BucketState> {
    (0..BUCKETS)
        .map(|b| match b % 2 {
            0 => BucketState::Owned,
            _ => BucketState::NotOwned,
        })
        .collect()
}

/// A filter loaded without an interface: TCP 80 on_addr, TCP 81 on_port, UDP 53 on_addr;
/// even buckets owned.
fn filter() -> XdpFilter {
    let mut f = XdpFilter::load_unattached(&XdpObject::locate(), &config())
        .unwrap_or_else(|e| panic!("loading the XDP filter: {e}"));
    f.set_rules(&[
        rule(80, Proto::Tcp, FilterMode::OnAddr),
        rule(81, Proto::Tcp, FilterMode::OnPort),
        rule(53, Proto::Udp, FilterMode::OnAddr),
    ])
    .expect("rules");
    f.set_owned_buckets(&half_owned()).expect("buckets");
    f
}

fn bucket(client: IpAddr, port: u16, mode: FilterMode) -> u32 {
    bucket_for(client, port, mode, config().seed, BUCKETS).expect("bucket count > 0")
}

/// The first client of 192.168.7.0/24 (or fd00:7::/112) whose on_addr bucket satisfies `want`.
fn client_where(v6: bool, want: impl Fn(u32) -> bool) -> IpAddr {
    (1..=65_000u16)
        .map(|i| match v6 {
            false => IpAddr::V4(Ipv4Addr::new(192, 168, (i >> 8) as u8, i as u8)),
            true => IpAddr::V6(Ipv6Addr::new(0xfd00, 7, 0, 0, 0, 0, 0, i)),
        })
        .find(|c| want(bucket(*c, 0, FilterMode::OnAddr)))
        .expect("some client matches")
}

fn owned_client(v6: bool) -> IpAddr {
    client_where(v6, |b| b % 2 == 0)
}

fn foreign_client(v6: bool) -> IpAddr {
    client_where(v6, |b| b % 2 == 1)
}

fn vip(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(VIP6)
    } else {
        IpAddr::V4(VIP4)
    }
}

/// A TCP frame to the VIP through the virtual MAC.
fn tcp_to_vip(client: IpAddr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    packet::frame(
        vmac(),
        client,
        sport,
        vip(client.is_ipv6()),
        dport,
        Some(flags),
    )
}

fn run(f: &mut XdpFilter, frame: &[u8]) -> TestRun {
    f.test_run(frame, 1)
        .unwrap_or_else(|e| panic!("test run: {e}"))
}

/// Asserts the frame was accepted: passed, with the destination MAC rewritten and nothing
/// else changed.
fn assert_accepted(r: &TestRun, frame: &[u8]) {
    assert_eq!(r.action, TestRun::PASS, "accepted frames are passed");
    assert_eq!(r.packet[..6], OWN_MAC, "destination MAC rewritten");
    assert_eq!(r.packet[6..], frame[6..], "the rest is untouched");
}

fn assert_passed_untouched(r: &TestRun, frame: &[u8], what: &str) {
    assert_eq!(r.action, TestRun::PASS, "{what}: passed");
    assert_eq!(r.packet, frame, "{what}: untouched");
}
