//! Mirror module scenarios on real daemons in the lab: each checks the result from outside,
//! as a user would (the client on the VIP, the health URL, `hakit state`, the module log).

use anyhow::{Result, anyhow, ensure};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{DEADLINE, MirrorConfig, State, wait_until};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn config() -> MirrorConfig {
    MirrorConfig::default()
}

/// Both nodes' states must never be "serving" together while `duration` passes.
/// Each `(node, state)` must hold at every sample throughout `duration` (a state that must
/// last, not just be there at the end).
fn stays(pair: &MirrorPair, wanted: &[(usize, State)], duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        for &(i, want) in wanted {
            let now = pair.state(i)?;
            ensure!(
                now == want,
                "{} left {want}: it is {now}",
                pair.nodes[i].name()
            );
        }
        sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn never_two_primaries(pair: &MirrorPair, duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let (a, b) = (pair.state(0), pair.state(1));
        if let (Ok(a), Ok(b)) = (a, b) {
            let serving = |s: State| matches!(s, State::Alone | State::Prim);
            ensure!(
                !(serving(a) && serving(b)),
                "two primaries: node1 {a}, node2 {b}"
            );
        }
        sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn first_start_waits_for_prim_then_pairs_and_serves_on_the_vip() -> Result<()> {
    let mut pair = MirrorPair::new("first", config())?;
    pair.scenario(|p| {
        p.hakit(0, "start")?;
        p.hakit(1, "start")?;
        // Well past the heartbeat timeout: with no data history nobody serves on its own.
        p.wait_state(0, State::Wait)?;
        p.wait_state(1, State::Wait)?;
        stays(
            p,
            &[(0, State::Wait), (1, State::Wait)],
            Duration::from_secs(3),
        )?;
        ensure!(
            p.module_log(0)?.contains("no node has data history yet"),
            "the log says why"
        );
        ensure!(p.ready_txt_status(0)? == 404 && p.ready_txt_status(1)? == 404);
        p.hakit(0, "prim")?;
        p.wait_in_sync(0)?;
        p.wait_served_by("node1")?;
        ensure!(p.ready_txt_status(0)? == 200, "health URL of the primary");
        ensure!(p.ready_txt_status(1)? == 404, "health URL of the secondary");
        let verbose = p.nodes[0].hakit(&["state", "-m", p.module(), "-v"])?;
        ensure!(
            verbose.contains("PRIM (Ready)")
                && verbose.contains("peer          node2 SECOND (Ready)"),
            "{verbose}"
        );
        Ok(())
    })
}

#[test]
fn sigkill_of_the_primary_fails_over_and_it_returns_as_second() -> Result<()> {
    let mut pair = MirrorPair::new("sigkill", config())?;
    pair.scenario(|p| {
        p.start_pair()?;
        p.wait_served_by("node1")?;
        p.nodes[0].kill_daemon()?;
        p.wait_state(1, State::Alone)?;
        // The guardian of the killed daemon stopped its application and removed its address.
        p.wait_served_by("node2")?;
        ensure!(p.ready_txt_status(1)? == 200);
        let log = p.module_log(1)?;
        ensure!(
            log.contains("node1 lost: heartbeat default silent for"),
            "node2's log says why"
        );
        wait_until("node1's guardian to release the VIP", DEADLINE, || {
            Ok(p.module_log(0)?
                .contains("guardian: removed virtual IP 10.88.0.10"))
        })?;
        p.nodes[0].start_daemon()?;
        p.wait_ready(0, State::Second)?;
        p.wait_ready(1, State::Prim)?;
        p.wait_served_by("node2")
    })
}

#[test]
fn sigterm_hands_over_cleanly_and_the_module_restarts_with_the_daemon() -> Result<()> {
    let mut pair = MirrorPair::new("sigterm", config())?;
    pair.scenario(|p| {
        p.start_pair()?;
        p.nodes[0].stop_daemon()?;
        p.wait_state(1, State::Alone)?;
        p.wait_served_by("node2")?;
        let log = p.module_log(0)?;
        ensure!(
            log.contains("the daemon is shutting down"),
            "node1 stopped its module"
        );
        let log = p.module_log(1)?;
        ensure!(
            log.contains("node1 is STOP") && log.contains("taking over"),
            "node2 took over when node1 stopped, without waiting for the heartbeat timeout"
        );
        // The module was started when the daemon stopped: it starts again with the daemon.
        p.nodes[0].start_daemon()?;
        p.wait_in_sync(1)
    })
}

#[test]
fn link_cut_fails_over_and_healing_leaves_one_primary() -> Result<()> {
    let mut pair = MirrorPair::new("linkcut", config())?;
    pair.scenario(|p| {
        p.start_pair()?;
        p.nodes[0].host().link_down()?;
        p.wait_state(1, State::Alone)?;
        p.wait_served_by("node2")?;
        p.nodes[0].host().link_up()?;
        // Without a split-brain checker both served during the cut; once they hear each other
        // again exactly one keeps serving and the other becomes SECOND.
        wait_until("one PRIM and one SECOND", DEADLINE, || {
            let states = (p.state(0)?, p.state(1)?);
            Ok(matches!(
                states,
                (State::Prim, State::Second) | (State::Second, State::Prim)
            ))
        })?;
        let logs = format!("{}{}", p.module_log(0)?, p.module_log(1)?);
        ensure!(logs.contains("SPLIT BRAIN"), "the split brain is reported");
        Ok(())
    })
}

#[test]
fn swap_moves_the_application_to_the_other_node() -> Result<()> {
    let mut pair = MirrorPair::new("swap", config())?;
    pair.scenario(|p| {
        p.start_pair()?;
        p.hakit(0, "swap")?;
        p.wait_in_sync(1)?;
        p.wait_served_by("node2")?;
        p.hakit(0, "swap")?;
        p.wait_in_sync(0)?;
        p.wait_served_by("node1")
    })
}

#[test]
fn defaultprim_swaps_back_when_the_preferred_node_returns() -> Result<()> {
    let cfg = MirrorConfig {
        defaultprim: "node1".into(),
        ..config()
    };
    let mut pair = MirrorPair::new("defprim", cfg)?;
    pair.scenario(|p| {
        p.start_pair()?;
        p.nodes[0].kill_daemon()?;
        p.wait_state(1, State::Alone)?;
        p.nodes[0].start_daemon()?;
        p.wait_ready(0, State::Prim)?;
        p.wait_ready(1, State::Second)?;
        p.wait_served_by("node1")?;
        ensure!(
            p.module_log(1)?.contains("defaultprim is node1"),
            "node2's log says why it swapped"
        );
        Ok(())
    })
}

#[test]
fn failover_off_makes_the_secondary_wait() -> Result<()> {
    let cfg = MirrorConfig {
        failover: false,
        ..config()
    };
    let mut pair = MirrorPair::new("fooff", cfg)?;
    pair.scenario(|p| {
        p.start_pair()?;
        p.nodes[0].kill_daemon()?;
        p.wait_state(1, State::Wait)?;
        stays(p, &[(1, State::Wait)], Duration::from_secs(2))?;
        ensure!(
            p.module_log(1)?.contains("failover is off"),
            "the log says why"
        );
        Ok(())
    })
}

/// The application process errd watches: a copy of `sleep` under a name unique to this lab
/// (lab hosts share the machine's process table).
fn errd_scripts(pair: &MirrorPair, app: &str) -> Result<()> {
    let start = format!(
        "#!/bin/sh\ncp /bin/sleep /srv/app/{app}\n/srv/app/{app} 100000 < /dev/null > /dev/null 2>&1 &\nexit 0\n"
    );
    let stop = format!("#!/bin/sh\npkill -x {app}\nexit 0\n");
    for node in &pair.nodes {
        let bin = format!("/etc/hakit/modules/{}/bin", pair.module());
        node.host()
            .write_file(format!("{bin}/start_prim"), &start, 0o755)?;
        node.host()
            .write_file(format!("{bin}/stop_prim"), &stop, 0o755)?;
    }
    Ok(())
}

#[test]
fn errd_restarts_locally_then_fails_over_after_maxloop() -> Result<()> {
    let app = format!("app{}", std::process::id() % 100_000);
    let cfg = MirrorConfig {
        extra_xml: format!(
            r#"<errd polltimer="300ms"><proc name="{app}" atleast="1" action="restart" class="prim"/></errd>"#
        ),
        ..config()
    };
    let mut pair = MirrorPair::new("errd", cfg)?;
    errd_scripts(&pair, &app)?;
    pair.scenario(|p| {
        p.start_pair()?;
        let kill_app = |p: &MirrorPair| p.nodes[0].host().run_ok(["pkill", "-x", app.as_str()]);
        for nth in 1..=3 {
            wait_until("the application to run on node1", DEADLINE, || {
                Ok(p.nodes[0]
                    .host()
                    .run(["pgrep", "-x", app.as_str()])?
                    .status
                    .success())
            })?;
            p.wait_ready(0, State::Prim)?;
            kill_app(p)?;
            wait_until(&format!("local restart {nth}"), DEADLINE, || {
                Ok(p.module_log(0)?.contains(&format!("local restart {nth}/3")))
            })?;
        }
        p.wait_ready(0, State::Prim)?;
        wait_until("the application to run on node1", DEADLINE, || {
            Ok(p.nodes[0]
                .host()
                .run(["pgrep", "-x", app.as_str()])?
                .status
                .success())
        })?;
        kill_app(p)?;
        p.wait_ready(0, State::Second)?;
        p.wait_ready(1, State::Prim)?;
        let log = p.module_log(0)?;
        ensure!(
            log.contains("stopstart, the peer takes over"),
            "node1's log says why"
        );
        Ok(())
    })
}

#[test]
fn isolated_nodes_wait_when_the_witness_is_unreachable() -> Result<()> {
    let cfg = MirrorConfig {
        extra_xml: hakit_lab::witness_check_xml(),
        ..config()
    };
    let mut pair = MirrorPair::new("witness", cfg)?;
    pair.scenario(|p| {
        p.start_pair()?;
        // The primary's cable is cut: it cannot reach the witness and steps down.
        p.nodes[0].host().link_down()?;
        never_two_primaries(p, Duration::from_secs(4))?;
        p.wait_state(0, State::Wait)?;
        p.wait_state(1, State::Alone)?;
        ensure!(
            p.module_log(0)?.contains("isolated"),
            "node1's log says why"
        );
        p.nodes[0].host().link_up()?;
        p.wait_ready(0, State::Second)?;
        // Now the secondary's cable: it waits, the primary goes on alone.
        p.nodes[1].host().link_down()?;
        never_two_primaries(p, Duration::from_secs(4))?;
        ensure!(p.state(1)? == State::Wait, "isolated secondary must WAIT");
        p.wait_state(0, State::Alone)?;
        p.nodes[1].host().link_up()?;
        p.wait_ready(1, State::Second)
    })
}

#[test]
fn heartbeats_with_a_foreign_key_are_dropped_and_counted() -> Result<()> {
    let mut pair = MirrorPair::new("authkey", config())?;
    pair.scenario(|p| {
        // node2 gets a key of its own and restarts: node1's heartbeats fail authentication.
        p.nodes[1].hakit(&["cluster", "genkey", "--force"])?;
        p.nodes[1].kill_daemon()?;
        p.nodes[1].start_daemon()?;
        let module = p.module().to_string();
        p.nodes[1].wait_answer(&module)?;
        p.hakit(0, "prim")?;
        p.hakit(1, "second")?;
        p.wait_state(0, State::Alone)?;
        // node2 never pairs with an unauthenticated peer.
        stays(p, &[(1, State::Wait)], Duration::from_secs(2))?;
        let verbose = p.nodes[1].hakit(&["state", "-m", p.module(), "-v"])?;
        let rejected = verbose
            .lines()
            .find(|l| l.contains("rejected"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no rejected count in {verbose}"))?;
        ensure!(rejected > 0, "rejected heartbeats are counted: {verbose}");
        ensure!(p.module_log(1)?.contains("bad MAC"), "and logged");
        Ok(())
    })
}

#[test]
fn bad_configuration_is_rejected_with_its_position() -> Result<()> {
    let mut pair = MirrorPair::new("badconf", config())?;
    pair.scenario(|p| {
        let file = format!("/etc/hakit/modules/{}/conf/userconfig.xml", p.module());
        let good = p.nodes[0].host().read_file(&file)?;
        let bad = good.replacen(
            "<heartbeat name=\"default\"/>",
            "<heartbeat name=\u{201d}default\u{201d}/>",
            1,
        );
        p.nodes[0].host().write_file(&file, &bad, 0o644)?;
        let out = p.nodes[0].host().run([
            hakit_lab::hakit_bin()?.as_os_str(),
            "config".as_ref(),
            "check".as_ref(),
        ])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "config check must fail");
        ensure!(
            stderr.contains("userconfig.xml:2:") && stderr.contains("straight quote"),
            "{stderr}"
        );
        let timeout = good.replacen("timeout=\"1s\"", "timeout=\"3x\"", 1);
        p.nodes[0].host().write_file(&file, &timeout, 0o644)?;
        let out = p.nodes[0].host().run([
            hakit_lab::hakit_bin()?.as_os_str(),
            "config".as_ref(),
            "check".as_ref(),
        ])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success() && stderr.contains("3x"), "{stderr}");
        // A daemon started on a bad configuration refuses to run and says why.
        p.nodes[0].kill_daemon()?;
        p.nodes[0].start_daemon()?;
        wait_until("the daemon to exit", DEADLINE, || {
            Ok(p.nodes[0].daemon_pid().is_none())
        })?;
        let out = std::fs::read_to_string(p.nodes[0].daemon_log()?)?;
        ensure!(out.contains("3x"), "daemon output: {out}");
        Ok(())
    })
}

/// Node1 and node2 must stay in states `want` while `duration` passes.
fn states_hold(pair: &MirrorPair, want: (State, State), duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let states = (pair.state(0)?, pair.state(1)?);
        ensure!(
            states == want,
            "node1 {}, node2 {}: expected node1 {}, node2 {}",
            states.0,
            states.1,
            want.0,
            want.1
        );
        sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn one_silent_network_keeps_the_pair_and_only_all_silent_fails_over() -> Result<()> {
    let cfg = MirrorConfig {
        heartbeats: vec!["default".into(), "backup".into()],
        ..config()
    };
    let mut pair = MirrorPair::with_backup_network("twonets", cfg)?;
    pair.scenario(|p| {
        p.start_pair()?;
        let backup = p.backup()?.clone();
        let node1 = p.nodes[0].host().clone();
        // Only the default network is cut: heartbeats still flow on backup.
        node1.link_down()?;
        // Several heartbeat timeouts (1 s each): nobody takes over.
        states_hold(p, (State::Prim, State::Second), Duration::from_secs(5))?;
        wait_until("node2 to log that only default is silent", DEADLINE, || {
            Ok(p.module_log(1)?.lines().any(|l| {
                l.contains("heartbeat default silent for")
                    && l.contains("node1 still heard on another network")
            }))
        })?;
        // Both networks cut: node1 is lost.
        node1.link_down_on(&backup)?;
        p.wait_state(1, State::Alone)?;
        wait_until("node2 to log node1 lost on both networks", DEADLINE, || {
            Ok(p.module_log(1)?.lines().any(|l| {
                l.contains("node1 lost: heartbeat default silent for")
                    && l.contains("heartbeat backup silent for")
            }))
        })?;
        node1.link_up()?;
        node1.link_up_on(&backup)?;
        wait_until("one PRIM and one SECOND", DEADLINE, || {
            let states = (p.state(0)?, p.state(1)?);
            Ok(matches!(
                states,
                (State::Prim, State::Second) | (State::Second, State::Prim)
            ))
        })?;
        let prim = usize::from(p.state(1)? == State::Prim);
        p.wait_in_sync(prim)
    })
}
