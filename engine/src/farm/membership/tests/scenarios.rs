//! Scripted scenarios in the simulated network: what each node installs, when, and why.

use super::super::FarmState;
use super::sim::*;

/// Three nodes of power 1 started together, converged on {node1,node2,node3}.
fn farm_of_three(seed: u64) -> World {
    let mut w = World::new(seed, &[1, 1, 1], 1);
    w.start_all();
    w.run_until("the first view", ms(3000), World::converged);
    w
}

#[test]
fn farm_cold_start_installs_one_view_everywhere_once() {
    let mut w = farm_of_three(1);
    let installed_at = w.now;
    assert_eq!(w.enforced_members(0), Some(vec!["node1", "node2", "node3"]));
    for i in 0..3 {
        assert_eq!(w.state(i), Some(FarmState::Up));
        assert_eq!(w.nodes[i].installs, 1, "{}", w.dump());
    }
    let line = w.logged(0, "agreed by all members")[0];
    assert!(
        line.contains(
            "agreed by all members: installing table, node1 86/256, node2 85/256, \
             node3 85/256, 256 buckets moved (0 drained from live owners, 256 taken whole)"
        ),
        "{line}"
    );
    // Nodes hear each other within two pulses: no need to wait the whole slost period.
    assert!(installed_at < ms(500), "{} ms", installed_at.as_millis());
    w.run_for(ms(10_000));
    assert!(w.nodes.iter().all(|n| n.installs == 1), "{}", w.dump());
}

#[test]
fn farm_crashed_node_is_dropped_after_mlost_count_pulses_and_its_buckets_taken_whole() {
    let mut w = farm_of_three(2);
    w.crash(2);
    let crashed_at = w.now;
    w.run_until("a view without node3", ms(5000), World::converged);
    let after = w.now - crashed_at;
    // Lost after 20 silent pulses (2 s), then agreed within a pulse or two.
    assert!(
        after >= ms(1900) && after <= ms(2400),
        "{} ms",
        after.as_millis()
    );
    assert_eq!(w.enforced_members(0), Some(vec!["node1", "node2"]));
    let lost = w.logged(0, "node3 lost after");
    assert!(
        lost[0].contains("node3 lost after 20 missed heartbeats: view {node1,node2} (id ")
            && lost[0].ends_with("without node3, waiting for agreement"),
        "{lost:?}"
    );
    let agreed = w.logged(1, "agreed by all members");
    assert!(
        agreed[1].contains("node1 128/256, node2 128/256, 85 buckets moved (0 drained"),
        "{agreed:?}"
    );
}

#[test]
fn farm_restarted_node_rejoins_and_drains_buckets_from_live_owners() {
    let mut w = farm_of_three(3);
    w.crash(2);
    w.run_until("a view without node3", ms(5000), World::converged);
    w.boot(2);
    w.run_until("node3 back", ms(3000), World::converged);
    assert_eq!(w.enforced_members(1), Some(vec!["node1", "node2", "node3"]));
    // Every node, node3 included (it has no table of its own), sees node3's buckets come
    // from node1 and node2, which stay: they drain.
    for i in 0..3 {
        let line = *w.logged(i, "agreed by all members").last().unwrap_or(&"");
        assert!(
            line.contains("85 buckets moved (85 drained from live owners, 0 taken whole)"),
            "node{}: {line}",
            i + 1
        );
    }
}

#[test]
fn farm_failing_checker_withdraws_at_once_and_returns_when_healthy() {
    let mut w = farm_of_three(4);
    w.fail_checker(1);
    assert_eq!(w.nodes[1].enforced, None, "withdrawn on the spot");
    assert_eq!(w.state(1), Some(FarmState::Wait));
    assert_eq!(w.state(1).map(FarmState::exit_code), Some(1));
    let failed_at = w.now;
    w.run_until("a view without node2", ms(1000), World::converged);
    assert!(w.now - failed_at <= ms(300), "dropped within a few pulses");
    assert_eq!(w.enforced_members(0), Some(vec!["node1", "node3"]));
    let line = *w.logged(0, "agreed by all members").last().unwrap_or(&"");
    assert!(
        line.contains("(0 drained from live owners, 85 taken whole)"),
        "{line}"
    );
    assert!(!w.logged(1, "checker app failed").is_empty());
    w.recover_checker(1);
    w.run_until("node2 back", ms(1000), World::converged);
    assert_eq!(w.enforced_members(0), Some(vec!["node1", "node2", "node3"]));
    assert_eq!(w.state(1).map(FarmState::exit_code), Some(2));
}

#[test]
fn farm_admin_stop_and_start() {
    let mut w = farm_of_three(5);
    w.stop(0);
    assert_eq!(w.state(0), Some(FarmState::Stop));
    assert_eq!(w.state(0).map(FarmState::exit_code), Some(0));
    w.run_until("a view without node1", ms(1000), World::converged);
    assert_eq!(w.enforced_members(1), Some(vec!["node2", "node3"]));
    assert!(!w.logged(0, "stopped by the administrator").is_empty());
    w.start(0);
    w.run_until("node1 back", ms(2000), World::converged);
    assert_eq!(w.enforced_members(0), Some(vec!["node1", "node2", "node3"]));
}

#[test]
fn farm_power_zero_node_is_up_with_no_bucket() {
    let mut w = World::new(6, &[1, 0, 1], 1);
    w.start_all();
    w.run_until("the first view", ms(3000), World::converged);
    assert_eq!(w.state(1), Some(FarmState::Up));
    let (_, table) = w.nodes[1]
        .enforced
        .clone()
        .unwrap_or_else(|| panic!("{}", w.dump()));
    assert_eq!(
        table.describe_loads(),
        "node1 128/256, node2 0/256, node3 128/256"
    );
    // Alone with power 0: a view, an empty table, and a log saying why.
    w.crash(0);
    w.crash(2);
    w.run_until("node2 alone", ms(5000), World::converged);
    let line = *w.logged(1, "agreed by all members").last().unwrap_or(&"");
    assert!(
        line.contains("every member of the view has power 0"),
        "{line}"
    );
}

#[test]
fn farm_partition_makes_two_views_and_healing_merges_them() {
    let mut w = farm_of_three(7);
    w.side = vec![0, 1, 1];
    w.run_until("both sides settled", ms(5000), |w| {
        w.enforced_members(0) == Some(vec!["node1"])
            && w.enforced_members(1) == Some(vec!["node2", "node3"])
            && w.enforced_members(2) == Some(vec!["node2", "node3"])
    });
    w.heal();
    w.run_until("one view again", ms(3000), World::converged);
    assert_eq!(w.enforced_members(0), Some(vec!["node1", "node2", "node3"]));
}

/// node1's heartbeats no longer reach node2 (one way). node2 loses node1; node1 still hears
/// node2 but sees that node2 does not hear it back, so it drops node2 too. node3 hears both:
/// a non-transitive situation, no view is agreed by all its members, nothing new is
/// installed (the simulation checks it), and the wait is logged. Healing merges everything.
#[test]
fn farm_one_way_loss_installs_nothing_unagreed_and_recovers() {
    let mut w = farm_of_three(8);
    w.cut.insert((0, 1));
    w.run_for(ms(6000));
    for i in 0..2 {
        assert!(
            !w.logged(
                i,
                "not agreed after 2000 ms: node3 proposes {node1,node2,node3}"
            )
            .is_empty(),
            "{}",
            w.dump()
        );
    }
    assert!(w.nodes.iter().all(|n| n.installs == 1), "{}", w.dump());
    w.heal();
    w.run_until("one view again", ms(3000), World::converged);
}

#[test]
fn farm_nodes_with_different_powers_never_agree_and_say_why() {
    let mut w = World::new(9, &[1, 1, 1], 1);
    w.nodes[2].cfg.hosts[0].power = 2;
    w.boot(2);
    w.start_all();
    w.run_for(ms(4000));
    assert!(w.nodes.iter().all(|n| n.enforced.is_none()), "{}", w.dump());
    let why = w.logged(0, "configurations");
    assert!(
        why.iter()
            .any(|l| l.contains("node3 proposes the same hosts under id")),
        "{}",
        w.dump()
    );
}

#[test]
fn farm_lossy_network_keeps_the_view() {
    let mut w = farm_of_three(10);
    w.loss = 0.3;
    w.run_for(ms(60_000));
    assert!(w.converged());
    assert!(w.nodes.iter().all(|n| n.installs == 1), "{}", w.dump());
}

#[test]
fn farm_one_silent_network_out_of_two_changes_nothing() {
    let mut w = World::new(11, &[1, 1], 2);
    w.start_all();
    w.run_until("the first view", ms(3000), World::converged);
    w.net_down[0] = true;
    w.run_for(ms(5000));
    assert!(w.converged());
    assert!(w.nodes.iter().all(|n| n.installs == 1));
    assert!(
        !w.logged(0, "heartbeats from node2 on lan lan0 silent for")
            .is_empty(),
        "{}",
        w.dump()
    );
    w.net_down[1] = true;
    w.run_until("each alone", ms(5000), |w| {
        w.enforced_members(0) == Some(vec!["node1"]) && w.enforced_members(1) == Some(vec!["node2"])
    });
}

#[test]
fn farm_late_starter_joins_without_taking_everything_first() {
    let mut w = World::new(12, &[1, 1, 1], 1);
    w.start(0);
    w.start(1);
    w.run_until("two nodes", ms(3000), World::converged);
    w.run_for(ms(3000));
    w.start(2);
    w.run_until("three nodes", ms(3000), World::converged);
    // node3 never installed a view of its own: it listened, then joined the others.
    assert_eq!(w.nodes[2].installs, 1, "{}", w.dump());
    let line = w.logged(2, "agreed by all members")[0];
    assert!(
        line.contains("(85 drained from live owners, 0 taken whole)"),
        "{line}"
    );
}

#[test]
fn farm_lone_node_installs_alone_after_listening_slost_count_pulses() {
    let mut w = World::new(13, &[1, 1, 1], 1);
    w.crash(1);
    w.crash(2);
    w.start(0);
    w.run_until("node1 alone", ms(3000), |w| {
        w.converged() && w.nodes[0].enforced.is_some()
    });
    assert!(w.now >= ms(1000), "listened {} ms", w.now.as_millis());
    assert_eq!(w.enforced_members(0), Some(vec!["node1"]));
    assert!(!w.logged(0, "listening for the other hosts").is_empty());
}
