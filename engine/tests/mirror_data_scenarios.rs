//! The mirror module with replicated directories, in simulated time: the order of mounts
//! around the scripts, the SECOND's wait for the primary's copy, and what happens when the
//! stream or the primary fails. The application on the serving node writes every tick; the
//! simulated stream carries each write synchronously while it is up.

mod sim;

use hakit::mirror::fsm::Command;
use hakit::mirror::plan::DataMode;
use hakit::mirror::role::{Readiness, Role};
use sim::*;

/// node1 `prim`, node2 `second`: node2 is about to join.
fn joining_pair() -> World {
    let mut w = World::new(
        7,
        Options {
            has_data: true,
            ..Options::default()
        },
    );
    w.command(0, Command::Prim).unwrap();
    w.command(1, Command::Second).unwrap();
    w
}

fn data_pair() -> World {
    let mut w = joining_pair();
    until_ready(&mut w, 1);
    w
}

fn ready(w: &World, i: usize) -> bool {
    w.role(i) == Some(Role::Second)
        && w.nodes[i].machine.as_ref().unwrap().readiness() == Readiness::Ready
}

fn until_ready(w: &mut World, second: usize) {
    w.run_until("SECOND Ready", SECS(20), |w| ready(w, second));
}

fn position(log: &[String], what: &str) -> usize {
    log.iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no log line with {what:?}:\n{}", log.join("\n")))
}

#[test]
fn data_is_mounted_before_the_application_starts_and_unmounted_after_it_stops() {
    let mut w = data_pair();
    let log = w.nodes[0].log.clone();
    assert!(position(&log, "mount the replicated directories") < position(&log, "start_prim"));
    assert_eq!(w.nodes[0].data_mode, DataMode::Serve);
    assert_eq!(w.nodes[1].data_mode, DataMode::Receive);
    w.command(0, Command::Stop).unwrap();
    w.run_until("node1 stopped", SECS(10), |w| {
        w.role(0) == Some(Role::Stop) && w.settled(0)
    });
    let log = &w.nodes[0].log;
    assert!(position(log, "stop_prim") < position(log, "unmount the replicated directories"));
    assert_eq!(w.nodes[0].data_mode, DataMode::Off);
}

#[test]
fn the_second_is_ready_only_once_it_holds_the_primarys_data() {
    let mut w = joining_pair();
    let mut checked = 0;
    while !ready(&w, 1) {
        w.tick();
        let second = w.nodes[1].machine.as_ref().unwrap();
        if second.role() == Role::Second {
            assert!(
                !ready(&w, 1) || w.nodes[1].data == w.nodes[0].data,
                "{}",
                w.dump()
            );
            checked += 1;
        }
        assert!(w.now < SECS(20), "never ready\n{}", w.dump());
    }
    assert!(checked > 0);
    assert!(w.nodes[1].log.iter().any(|l| l.contains("copied its data")));
    // From then on every write reaches it.
    for _ in 0..300 {
        w.tick();
        assert_eq!(w.nodes[1].data, w.nodes[0].data, "{}", w.dump());
    }
    assert!(w.nodes[0].data > 300, "the application wrote meanwhile");
}

#[test]
fn a_crashed_primary_loses_no_acknowledged_write() {
    let mut w = data_pair();
    w.run_for(SECS(2));
    let acknowledged = w.nodes[0].acknowledged;
    w.crash(0);
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    assert!(
        w.nodes[1].data >= acknowledged,
        "node2 took over with write {} but node1 had acknowledged {acknowledged}",
        w.nodes[1].data
    );
    // node1 comes back as SECOND and gets everything written meanwhile.
    w.boot(0); // the module was started: it starts again with the daemon
    until_ready(&mut w, 0);
    assert_eq!(w.nodes[0].data, w.nodes[1].data);
}

#[test]
fn a_broken_stream_makes_the_primary_alone_and_the_second_copies_again() {
    let mut w = data_pair();
    let generation = w.nodes[0].disk.data.generation;
    w.break_link(0, "no ack within sendtimeout");
    w.run_until("node1 ALONE or PRIM on a new generation", SECS(5), |w| {
        w.nodes[0].disk.data.generation != generation
    });
    assert!(!ready(&w, 1) || w.nodes[1].data == w.nodes[0].data);
    let log = w.nodes[0].log.join("\n");
    assert!(log.contains("replication to node2 broke"), "{log}");
    until_ready(&mut w, 1);
    w.run_for(SECS(1));
    assert_eq!(w.nodes[1].data, w.nodes[0].data);
    assert_eq!(
        w.nodes[1].disk.data.generation,
        w.nodes[0].disk.data.generation
    );
}

#[test]
fn a_primary_lost_during_the_copy_leaves_the_second_waiting_with_an_incomplete_copy() {
    let mut w = joining_pair();
    w.run_until("node2 waits for the copy", SECS(10), |w| {
        w.nodes[1]
            .log
            .last()
            .is_some_and(|l| l.contains("waiting for node1 to copy"))
    });
    w.crash(0);
    w.run_for(SECS(5));
    assert_eq!(w.role(1), Some(Role::Wait), "{}", w.dump());
    assert!(!w.nodes[1].disk.data.consistent);
    let refusal = w.command(1, Command::Prim).unwrap_err();
    assert!(refusal.contains("missed writes"), "{refusal}");
}

#[test]
fn a_second_stopped_during_the_copy_stops_at_once_and_then_refuses_prim() {
    // Stopped while it waits for the copy, or just before (its stop is then deferred until
    // the step that runs ends, and must not wait for the copy).
    for moment in ["waiting for node1 to copy", "WAIT -> SECOND"] {
        let mut w = joining_pair();
        w.run_until(moment, SECS(10), |w| {
            w.nodes[1].log.last().is_some_and(|l| l.contains(moment))
        });
        w.command(1, Command::Stop).unwrap();
        w.run_until("node2 stopped", SECS(5), |w| {
            w.role(1) == Some(Role::Stop) && w.settled(1)
        });
        assert!(!w.nodes[1].disk.data.consistent, "{moment}: {}", w.dump());
        w.command(0, Command::Stop).unwrap();
        w.run_until("node1 stopped", SECS(5), |w| {
            w.role(0) == Some(Role::Stop) && w.settled(0)
        });
        w.run_for(SECS(1));
        let refusal = w.command(1, Command::Prim).unwrap_err();
        assert!(refusal.contains("incomplete"), "{moment}: {refusal}");
        w.command(1, Command::Primforce).unwrap();
        w.run_until("node2 serves its copy", SECS(5), |w| {
            w.role(1) == Some(Role::Alone) && w.settled(1)
        });
    }
}

#[test]
fn a_returning_second_gets_only_the_changes_an_old_primary_its_own_journal_too() {
    let mut w = data_pair();
    w.run_for(SECS(1));
    // The SECOND crashes and returns: it held node1's data, only the journal travels.
    w.crash(1);
    w.run_until("node1 ALONE", SECS(10), |w| {
        w.role(0) == Some(Role::Alone) && w.settled(0)
    });
    w.run_for(SECS(1));
    w.boot(1);
    w.run_until("node2 joining", SECS(10), |w| w.nodes[0].link.is_some());
    let target = w.nodes[0].link.unwrap().target;
    assert!(target.incremental && !target.peer_journal, "{}", w.dump());
    until_ready(&mut w, 1);
    assert_eq!(w.nodes[1].data, w.nodes[0].data);
    // Now the primary crashes and returns: it may hold writes it never had acknowledged.
    w.run_for(SECS(1));
    w.crash(0);
    w.run_until("node2 ALONE", SECS(10), |w| {
        w.role(1) == Some(Role::Alone) && w.settled(1)
    });
    w.boot(0);
    w.run_until("node1 joining", SECS(10), |w| w.nodes[1].link.is_some());
    let target = w.nodes[1].link.unwrap().target;
    assert!(
        target.incremental && target.peer_journal,
        "an old primary gets what changed since the takeover and what its own journal names\n{}",
        w.dump()
    );
    until_ready(&mut w, 0);
    assert_eq!(w.nodes[1].data, w.nodes[0].data);
}

#[test]
fn after_a_split_brain_the_losers_data_is_saved_before_it_is_replaced() {
    let mut w = data_pair();
    w.run_for(SECS(1));
    // No witness: a partition makes both serve and both write.
    w.nodes[1].connected = false;
    w.run_until("both ALONE", SECS(10), |w| {
        w.role(0) == Some(Role::Alone) && w.role(1) == Some(Role::Alone)
    });
    w.run_for(SECS(1));
    let (a, b) = (w.nodes[0].data, w.nodes[1].data);
    w.nodes[1].connected = true;
    w.run_until("one primary, one SECOND Ready", SECS(20), |w| {
        (ready(w, 0) || ready(w, 1)) && w.serving_count() == 1
    });
    let loser = if ready(&w, 1) { 1 } else { 0 };
    let diverged = [a, b][loser];
    assert!(
        w.nodes[loser].quarantined.iter().any(|&q| q >= diverged),
        "the loser saved what it wrote during the split ({diverged}): {:?}\n{}",
        w.nodes[loser].quarantined,
        w.dump()
    );
    assert_eq!(w.nodes[loser].data, w.nodes[1 - loser].data);
}
