//! The mirror module's behaviour, scenario by scenario, in simulated time.

mod sim;

use hakit::config::{CheckAction, DefaultPrim, SplitBrainWinner};
use hakit::mirror::data::LastRole;
use hakit::mirror::fsm::{Command, Input};
use hakit::mirror::plan::Script;
use hakit::mirror::role::{Readiness, Role};
use sim::*;

/// node1 `prim`, node2 `second`: PRIM / SECOND Ready.
fn pair(opts: Options) -> World {
    let mut w = World::new(1, opts);
    assert_eq!(
        w.command(0, Command::Prim),
        Ok("starting as primary (requested by prim)".into())
    );
    w.command(1, Command::Second).unwrap();
    until_in_sync(&mut w, 0);
    w
}

/// Wait until node `prim` is PRIM and the other SECOND Ready, and each has heard it.
fn until_in_sync(w: &mut World, prim: usize) {
    let second = 1 - prim;
    w.run_until("PRIM and SECOND Ready", SECS(20), |w| {
        w.role(prim) == Some(Role::Prim)
            && w.role(second) == Some(Role::Second)
            && w.nodes[second].machine.as_ref().unwrap().readiness() == Readiness::Ready
            && w.settled(prim)
    });
    w.run_for(3 * PULSE);
}

#[test]
fn first_start_waits_for_the_administrator_then_prim_and_second() {
    let mut w = World::new(1, Options::default());
    w.command(0, Command::Start).unwrap();
    w.command(1, Command::Start).unwrap();
    w.run_for(SECS(5));
    assert_eq!(
        roles(&w),
        (Some(Role::Wait), Some(Role::Wait)),
        "no history: nobody serves on its own"
    );
    assert!(!w.nodes[0].vip && !w.nodes[1].vip);
    w.command(0, Command::Prim).unwrap();
    w.run_until("node1 PRIM, node2 SECOND", SECS(10), |w| {
        roles(w) == (Some(Role::Prim), Some(Role::Second))
    });
    assert!(w.nodes[0].vip && w.nodes[0].app);
    assert!(!w.nodes[1].vip && !w.nodes[1].app);
    assert_eq!(
        w.nodes[0].disk.data.generation,
        w.nodes[1].disk.data.generation
    );
}

#[test]
fn crash_of_the_primary_fails_over_and_the_returning_node_becomes_second() {
    let mut w = pair(Options::default());
    let t0 = w.now;
    w.crash(0);
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    assert!(w.now - t0 >= TIMEOUT, "not before the heartbeat timeout");
    assert!(w.nodes[1].vip && w.nodes[1].app);
    assert!(
        w.nodes[1]
            .scripts_run
            .ends_with(&[Script::StopSecond, Script::StartPrim])
    );
    let log = w.nodes[1].log.join("\n");
    assert!(
        log.contains("node1 lost: heartbeat default silent for"),
        "{log}"
    );
    assert!(log.contains("taking over"), "{log}");

    w.boot(0);
    w.run_until("node1 back as SECOND", SECS(10), |w| {
        roles(w) == (Some(Role::Second), Some(Role::Prim)) && w.settled(0)
    });
    assert!(!w.nodes[0].vip && !w.nodes[0].app);
}

#[test]
fn a_node_that_may_have_missed_writes_never_becomes_primary_unforced() {
    let mut w = pair(Options::default());
    // node2 (SECOND) is stopped; node1 goes on alone and writes.
    w.command(1, Command::Stop).unwrap();
    w.run_until("node1 ALONE", SECS(5), |w| {
        w.role(0) == Some(Role::Alone) && w.settled(0)
    });
    assert_eq!(w.nodes[1].disk.data.last_role, LastRole::Second);
    // Now node1 dies; node2 starts alone: it must wait.
    w.crash(0);
    w.command(1, Command::Start).unwrap();
    w.run_for(SECS(5));
    assert_eq!(w.role(1), Some(Role::Wait), "{}", w.dump());
    let refused = w.command(1, Command::Prim).unwrap_err();
    assert!(
        refused.contains("may have missed writes") && refused.contains("primforce"),
        "{refused}"
    );
    w.command(1, Command::Primforce).unwrap();
    w.run_until("node2 ALONE by force", SECS(5), |w| {
        w.role(1) == Some(Role::Alone)
    });
}

#[test]
fn last_alone_node_restarts_alone_after_waiting_for_its_peer() {
    let mut w = pair(Options::default());
    w.command(1, Command::Stop).unwrap();
    w.run_until("node1 ALONE", SECS(5), |w| {
        w.role(0) == Some(Role::Alone) && w.settled(0)
    });
    w.crash(0);
    w.crash(1);
    w.run_for(SECS(1));
    w.boot(0);
    w.run_for(TIMEOUT / 2);
    assert_eq!(
        w.role(0),
        Some(Role::Wait),
        "waits for the peer's heartbeat first"
    );
    w.run_until("node1 ALONE again", SECS(5), |w| {
        w.role(0) == Some(Role::Alone)
    });
}

#[test]
fn swap_moves_the_primary_role_and_back() {
    let mut w = pair(Options::default());
    w.command(0, Command::Swap).unwrap();
    until_in_sync(&mut w, 1);
    assert!(w.nodes[1].vip && !w.nodes[0].vip);
    // Swap asked on the SECOND this time.
    w.command(0, Command::Swap).unwrap();
    until_in_sync(&mut w, 0);
    assert!(w.nodes[0].vip && !w.nodes[1].vip);
}

#[test]
fn defaultprim_swaps_back_once_the_preferred_node_is_second_ready() {
    let mut w = pair(Options {
        defaultprim: DefaultPrim::Node("node1".into()),
        ..Options::default()
    });
    w.crash(0);
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    w.boot(0);
    w.run_until("node1 PRIM again", SECS(20), |w| {
        roles(w) == (Some(Role::Prim), Some(Role::Second)) && w.settled(0) && w.settled(1)
    });
    let log = w.nodes[1].log.join("\n");
    assert!(
        log.contains("defaultprim is node1 and it is SECOND Ready: swapping back"),
        "{log}"
    );
}

#[test]
fn failover_off_makes_the_secondary_wait() {
    let mut w = pair(Options {
        failover: false,
        ..Options::default()
    });
    w.crash(0);
    w.run_for(SECS(5));
    assert_eq!(w.role(1), Some(Role::Wait));
    assert!(!w.nodes[1].vip);
    assert!(w.nodes[1].log.join("\n").contains("failover is off"));
    // Turned back on at run time: still no takeover of a node it cannot hear (data may be stale).
    w.command(1, Command::Failover(true)).unwrap();
    w.run_for(SECS(3));
    assert_eq!(w.role(1), Some(Role::Wait));
}

#[test]
fn clean_stop_of_the_primary_hands_over_at_once() {
    let mut w = pair(Options::default());
    let t0 = w.now;
    w.command(0, Command::Stop).unwrap();
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    assert!(
        w.now - t0 < TIMEOUT,
        "a clean stop does not wait for the heartbeat timeout"
    );
    assert_eq!(w.nodes[0].disk.data.last_role, LastRole::HandedOver);
    w.run_for(PULSE * 2); // node1 hears that node2 serves
    let refusal = w.command(0, Command::Prim).unwrap_err();
    assert!(refusal.contains("node2 is ALONE"), "{refusal}");
    w.crash(1);
    w.command(0, Command::Start).unwrap();
    w.run_for(SECS(3));
    assert_eq!(
        w.role(0),
        Some(Role::Wait),
        "a node that handed over never restarts alone"
    );
    let refusal = w.command(0, Command::Prim).unwrap_err();
    assert!(refusal.contains("may have missed writes"), "{refusal}");
}

#[test]
fn checker_restarts_locally_then_fails_over_after_maxloop() {
    let mut w = pair(Options {
        checkers: vec![errd_checker(CheckAction::Restart)],
        ..Options::default()
    });
    assert_eq!(w.nodes[0].active_checkers, vec!["errd:app".to_string()]);
    assert!(
        w.nodes[1].active_checkers.is_empty(),
        "class prim checkers do not run on SECOND"
    );
    for nth in 1..=3 {
        w.checker(0, "errd:app", true);
        w.run_until("local restart done", SECS(5), |w| w.settled(0));
        assert_eq!(w.role(0), Some(Role::Prim));
        let log = w.nodes[0].log.join("\n");
        assert!(log.contains(&format!("local restart {nth}/3")), "{log}");
    }
    w.checker(0, "errd:app", true);
    w.run_until("node2 takes over", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    let log = w.nodes[0].log.join("\n");
    assert!(
        log.contains("maxloop 3): stopstart, the peer takes over"),
        "{log}"
    );
    w.run_until("node1 back as SECOND", SECS(10), |w| {
        w.role(0) == Some(Role::Second) && w.settled(0)
    });
}

#[test]
fn wait_checker_stops_serving_until_it_recovers() {
    let mut w = pair(Options {
        checkers: vec![errd_checker(CheckAction::Wait)],
        ..Options::default()
    });
    w.checker(0, "errd:app", true);
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    assert_eq!(w.role(0), Some(Role::Wait));
    assert_eq!(
        w.nodes[0].active_checkers,
        vec!["errd:app".to_string()],
        "kept running to see recovery"
    );
    w.checker(0, "errd:app", false);
    w.run_until("node1 SECOND", SECS(10), |w| {
        w.role(0) == Some(Role::Second) && w.settled(0)
    });
}

#[test]
fn isolated_primary_steps_down_when_no_witness_answers() {
    let mut w = pair(Options {
        witness: true,
        ..Options::default()
    });
    w.nodes[0].connected = false;
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    w.run_until("node1 WAIT", SECS(5), |w| {
        w.role(0) == Some(Role::Wait) && w.settled(0)
    });
    assert!(!w.nodes[0].vip && !w.nodes[0].app);
    let log = w.nodes[0].log.join("\n");
    assert!(
        log.contains("no witness answered") && log.contains("isolated"),
        "{log}"
    );
    w.nodes[0].connected = true;
    w.run_until("node1 SECOND", SECS(10), |w| {
        w.role(0) == Some(Role::Second) && w.settled(0)
    });
}

#[test]
fn a_late_heartbeat_from_before_a_cut_does_not_stop_the_survivor() {
    let mut w = pair(Options {
        witness: true,
        ..Options::default()
    });
    w.run_for(SECS(5));
    // What node1 said while it served, delivered only after the cut healed (queued).
    let stale = w.nodes[0].machine.as_ref().unwrap().advert(w.now);
    w.nodes[0].connected = false;
    w.run_until("node2 ALONE, node1 stepped down", SECS(10), |w| {
        roles(w) == (Some(Role::Wait), Some(Role::Alone)) && w.settled(1)
    });
    w.nodes[0].connected = true;
    w.feed(
        1,
        Input::Heartbeat {
            net: 0,
            advert: stale,
        },
    );
    w.run_until("node1 SECOND", SECS(10), |w| {
        w.role(0) == Some(Role::Second) && w.settled(0)
    });
    let log = w.nodes[1].log.join("\n");
    assert!(!log.contains("SPLIT BRAIN"), "{log}");
    assert!(
        matches!(w.role(1), Some(Role::Alone | Role::Prim)),
        "node2 kept serving\n{log}"
    );
}

#[test]
fn isolated_secondary_waits_instead_of_taking_over() {
    let mut w = pair(Options {
        witness: true,
        ..Options::default()
    });
    w.nodes[1].connected = false;
    w.run_for(SECS(5));
    assert_eq!(roles(&w), (Some(Role::Alone), Some(Role::Wait)));
    assert!(!w.nodes[1].vip);
    w.nodes[1].connected = true;
    w.run_until("node2 SECOND", SECS(10), |w| {
        w.role(1) == Some(Role::Second) && w.settled(1)
    });
}

#[test]
fn without_witness_a_partition_gives_two_alone_nodes_and_healing_keeps_one() {
    let mut w = pair(Options::default());
    w.nodes[0].connected = false;
    w.run_until("split brain", SECS(10), |w| {
        roles(w) == (Some(Role::Alone), Some(Role::Alone))
    });
    w.run_for(SECS(3));
    w.nodes[0].connected = true;
    w.run_until("one primary", SECS(10), |w| {
        w.serving_count() == 1 && w.settled(0) && w.settled(1)
    });
    w.run_until("PRIM and SECOND", SECS(10), |w| {
        matches!(
            roles(w),
            (Some(Role::Prim), Some(Role::Second)) | (Some(Role::Second), Some(Role::Prim))
        )
    });
    let logs = format!(
        "{}\n{}",
        w.nodes[0].log.join("\n"),
        w.nodes[1].log.join("\n")
    );
    assert!(logs.contains("SPLIT BRAIN"), "{logs}");
    assert!(logs.contains("re-announcing the virtual IPs"), "{logs}");
}

#[test]
fn a_configured_split_brain_winner_keeps_its_data_even_having_served_less() {
    let mut w = pair(Options {
        splitbrain_winner: SplitBrainWinner::Node("node2".into()),
        ..Options::default()
    });
    assert_eq!(roles(&w), (Some(Role::Prim), Some(Role::Second)));
    w.nodes[0].connected = false;
    w.run_until("split brain", SECS(10), |w| {
        roles(w) == (Some(Role::Alone), Some(Role::Alone))
    });
    w.run_for(SECS(3));
    w.nodes[0].connected = true;
    w.run_until("node2 PRIM, node1 SECOND", SECS(15), |w| {
        roles(w) == (Some(Role::Second), Some(Role::Prim)) && w.settled(0) && w.settled(1)
    });
    let log = w.nodes[0].log.join("\n");
    assert!(
        log.contains("I stop serving (splitbrain_winner is node2)"),
        "{log}"
    );
}

#[test]
fn commands_are_refused_with_reasons() {
    let mut w = pair(Options::default());
    assert!(
        w.command(1, Command::Prim)
            .unwrap_err()
            .contains("node1 is PRIM")
    );
    assert!(
        w.command(0, Command::Start)
            .unwrap_err()
            .contains("already started")
    );
    w.command(1, Command::Stop).unwrap();
    w.run_until("stopped", SECS(5), |w| w.role(1) == Some(Role::Stop));
    assert!(
        w.command(1, Command::Swap)
            .unwrap_err()
            .contains("swap needs PRIM and SECOND Ready")
    );
    assert!(
        w.command(1, Command::Restart)
            .unwrap_err()
            .contains("nothing runs")
    );
}
