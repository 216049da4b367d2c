//! Connection survival across a rebalancing: draining and new-only buckets.

use std::net::IpAddr;

use super::packet::{self, ACK, SYN};
use super::*;

/// The table with bucket `b` in `state` (the others as in `half_owned`).
fn with_bucket(b: u32, state: BucketState) -> Vec<BucketState> {
    let mut t = half_owned();
    t[b as usize] = state;
    t
}

#[test]
fn draining_bucket_keeps_known_connections_and_refuses_new_ones() {
    let mut f = filter();
    for v6 in [false, true] {
        let client = owned_client(v6);
        let b = bucket(client, 0, FilterMode::OnAddr);
        // While owned, a connection is opened (remembered at its SYN) and used.
        f.set_owned_buckets(&half_owned()).expect("buckets");
        let recorded = f.counters().expect("counters").flows_recorded;
        let syn = tcp_to_vip(client, 5000, 80, SYN);
        assert_accepted(&run(&mut f, &syn), &syn);
        let ack = tcp_to_vip(client, 5000, 80, ACK);
        assert_accepted(&run(&mut f, &ack), &ack);
        assert_eq!(f.counters().expect("counters").flows_recorded, recorded + 1);
        f.flow_activity().expect("activity"); // start a fresh period

        // The bucket moves to another node: this one drains it.
        f.set_owned_buckets(&with_bucket(b, BucketState::Draining))
            .expect("buckets");
        let before = f.counters().expect("counters");
        assert_accepted(&run(&mut f, &ack), &ack);
        let new_syn = tcp_to_vip(client, 5001, 80, SYN);
        assert_eq!(
            run(&mut f, &new_syn).action,
            TestRun::DROP,
            "new connection"
        );
        let unknown = tcp_to_vip(client, 5002, 80, ACK);
        assert_eq!(
            run(&mut f, &unknown).action,
            TestRun::DROP,
            "unknown connection"
        );
        // A SYN reusing a known client port opens a new connection: the new owner's.
        assert_eq!(
            run(&mut f, &syn).action,
            TestRun::DROP,
            "SYN on a known 4-tuple"
        );
        // UDP moves at once.
        let dns = packet::frame(vmac(), client, 5003, vip(v6), 53, None);
        assert_eq!(run(&mut f, &dns).action, TestRun::DROP, "UDP");
        let after = f.counters().expect("counters");
        assert_eq!(
            after.accepted_draining,
            before.accepted_draining + 1,
            "v6={v6}"
        );
        assert_eq!(after.dropped_draining, before.dropped_draining + 4);

        // Userspace sees the connection still active in its bucket, then idle.
        assert!(
            f.flow_activity().expect("activity")[b as usize] >= 1,
            "v6={v6}"
        );
        assert_eq!(
            f.flow_activity().expect("activity")[b as usize],
            0,
            "v6={v6}"
        );

        // Drained: not owned any more, even known connections go.
        f.set_owned_buckets(&with_bucket(b, BucketState::NotOwned))
            .expect("buckets");
        assert_eq!(run(&mut f, &ack).action, TestRun::DROP);
    }
}

#[test]
fn new_only_bucket_takes_new_connections_and_leaves_old_ones() {
    let mut f = filter();
    for v6 in [false, true] {
        let client = foreign_client(v6);
        let b = bucket(client, 0, FilterMode::OnAddr);
        f.set_owned_buckets(&with_bucket(b, BucketState::NewOnly))
            .expect("buckets");
        let before = f.counters().expect("counters");
        // A new connection is this node's, and stays so.
        let syn = tcp_to_vip(client, 6000, 80, SYN);
        assert_accepted(&run(&mut f, &syn), &syn);
        let ack = tcp_to_vip(client, 6000, 80, ACK);
        assert_accepted(&run(&mut f, &ack), &ack);
        // An established connection this node never saw is the old owner's.
        let old = tcp_to_vip(client, 6001, 80, ACK);
        assert_eq!(
            run(&mut f, &old).action,
            TestRun::DROP,
            "old owner's connection"
        );
        // UDP moves at once.
        let dns = packet::frame(vmac(), client, 6002, vip(v6), 53, None);
        assert_accepted(&run(&mut f, &dns), &dns);
        let after = f.counters().expect("counters");
        assert_eq!(after.accepted, before.accepted + 3, "v6={v6}");
        assert_eq!(after.dropped_new_only, before.dropped_new_only + 1);
        assert_eq!(after.flows_recorded, before.flows_recorded + 1);

        // The old connections have drained: the bucket is fully owned, everything is taken.
        f.set_owned_buckets(&with_bucket(b, BucketState::Owned))
            .expect("buckets");
        assert_accepted(&run(&mut f, &old), &old);
    }
}

/// Fragments have no ports to find a connection by: TCP ones stay with the old owner until
/// the drain ends, UDP ones move at once like the rest of UDP.
#[test]
fn fragments_during_a_move() {
    let mut f = filter();
    let IpAddr::V4(client) = owned_client(false) else {
        unreachable!("v4 client")
    };
    let b = bucket(IpAddr::V4(client), 0, FilterMode::OnAddr);
    let fragment = |proto| {
        packet::ethernet(
            vmac(),
            0x0800,
            &packet::ipv4(client, VIP4, proto, 185, &[0; 24]),
        )
    };
    let (tcp, udp) = (fragment(6), fragment(17));
    f.set_owned_buckets(&with_bucket(b, BucketState::Draining))
        .expect("buckets");
    assert_accepted(&run(&mut f, &tcp), &tcp);
    assert_eq!(run(&mut f, &udp).action, TestRun::DROP);
    f.set_owned_buckets(&with_bucket(b, BucketState::NewOnly))
        .expect("buckets");
    assert_eq!(run(&mut f, &tcp).action, TestRun::DROP);
    assert_accepted(&run(&mut f, &udp), &udp);
}
