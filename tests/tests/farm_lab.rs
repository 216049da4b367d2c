//! Farm module scenarios on real daemons in the lab: three servers and a client with many
//! source addresses on one bridge. Every check is made from outside, as a user would: the
//! client's connections to the VIP, `hakit state`, the health URL, the module logs.

use anyhow::{Result, anyhow, ensure};
use hakit_lab::farm::{Answer, Farm, FarmConfig, shares};
use hakit_lab::{DEADLINE, hakit_bin, wait_until};
use std::collections::BTreeMap;
use std::ffi::OsStr;

/// Connections per measurement.
const CONNECTIONS: usize = 800;

/// Each node's share of `answers` must be within 8 points of its weight (the binomial spread
/// of 800 connections is under 2 points).
fn assert_shares(answers: &[Answer], weights: &[(&str, u32)]) -> Result<BTreeMap<String, usize>> {
    let counts = shares(answers)?;
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    for (node, w) in weights {
        let got = counts.get(*node).copied().unwrap_or(0) as f64 / answers.len() as f64;
        let want = f64::from(*w) / f64::from(total);
        ensure!(
            (got - want).abs() <= 0.08,
            "{node} answered {:.1} % of the connections, its weight is {:.1} % ({counts:?})",
            got * 100.0,
            want * 100.0
        );
    }
    for node in counts.keys() {
        ensure!(
            weights.iter().any(|(n, w)| n == node && *w > 0),
            "{node} answered connections it should not have: {counts:?}"
        );
    }
    Ok(counts)
}

fn ready_txt(farm: &Farm, i: usize) -> Result<u16> {
    let path = format!("/var/modules/{}/ready.txt", farm.module());
    match farm.client.http_get(farm.nodes[i].host().ip(), 9010, &path) {
        Ok(_) => Ok(200),
        Err(e) if format!("{e:#}").contains(" 404 ") => Ok(404),
        Err(e) => Err(e),
    }
}

#[test]
fn farm_shares_follow_power_a_killed_node_moves_its_share_and_returns_without_breaking_flows()
-> Result<()> {
    let mut farm = Farm::new("farm-kill", FarmConfig::default(), 16)?;
    farm.scenario(|f| {
        ensure!(ready_txt(f, 0)? == 404, "STOP is not ready");
        f.start_all()?;
        f.wait_view(&[0, 1, 2])?;
        for i in 0..3 {
            ensure!(f.is_up(i)?, "state -lq exits 2 on UP");
            ensure!(ready_txt(f, i)? == 200, "ready.txt of node{}", i + 1);
        }
        let v = f.verbose_state(0)?;
        for want in [
            "member        node1: load 128/256",
            "member        node2: load 64/256",
            "member        node3: load 64/256",
            "this node answers ARP for the VIP",
        ] {
            ensure!(v.contains(want), "{want:?} in:\n{v}");
        }
        let counts = assert_shares(
            &f.connect(CONNECTIONS)?,
            &[("node1", 2), ("node2", 1), ("node3", 1)],
        )?;
        eprintln!("3 nodes, powers 2/1/1: {counts:?}");

        // node3's daemon dies: its guardian cleans up, the others take its share.
        f.nodes[2].kill_daemon()?;
        f.wait_view(&[0, 1])?;
        wait_until("node3's guardian to clean up", DEADLINE, || {
            let log = f.module_log(2)?;
            Ok(log.contains("guardian: removed virtual IP 10.88.0.10")
                && log.contains("guardian: stop_both")
                && log.contains("arp_ignore back to 0"))
        })?;
        let link = f.nodes[2].host().run_ok(["ip", "-d", "link", "show", "eth0"])?;
        ensure!(
            link.contains("promiscuity 0") && !link.contains("xdp"),
            "nothing left on node3's eth0: {link}"
        );
        let counts = assert_shares(&f.connect(CONNECTIONS)?, &[("node1", 2), ("node2", 1)])?;
        eprintln!("node3 killed: {counts:?}");
        let log = f.module_log(0)?;
        ensure!(
            log.contains("node3 lost after") && log.contains("taken whole"),
            "node1's log says why its table changed"
        );

        // Long-lived connections opened while node3 is away, kept open across its return.
        let (held, opened) = f.hold(120, "held")?;
        let before = shares(&opened)?;
        f.nodes[2].start_daemon()?;
        // The module was started when the daemon died: it starts again with it.
        f.wait_view(&[0, 1, 2])?;
        let counts = assert_shares(
            &f.connect(CONNECTIONS)?,
            &[("node1", 2), ("node2", 1), ("node3", 1)],
        )?;
        eprintln!("node3 back: {counts:?}");
        let again = f.release(held)?;
        ensure!(again.len() == opened.len(), "{again:?}");
        for (a, b) in opened.iter().zip(&again) {
            ensure!(
                a.answer == b.answer && a.port == b.port,
                "held connection {}:{} was answered by {} and now by {:?}",
                a.source,
                a.port,
                a.answer,
                b.answer
            );
        }
        let log = f.module_log(0)?;
        ensure!(log.contains("drained from live owners"), "node1 drained buckets");
        eprintln!(
            "{} connections held across node3's return, all answered again by the same node: {before:?}",
            opened.len()
        );
        Ok(())
    })
}

#[test]
fn farm_link_cut_moves_the_share_and_healing_brings_it_back() -> Result<()> {
    let mut farm = Farm::new("farm-cut", FarmConfig::default(), 16)?;
    farm.scenario(|f| {
        f.start_all()?;
        f.wait_view(&[0, 1, 2])?;
        f.nodes[1].host().link_down()?;
        f.wait_view(&[0, 2])?;
        let counts = assert_shares(&f.connect(CONNECTIONS)?, &[("node1", 2), ("node3", 1)])?;
        eprintln!("node2 cut off: {counts:?}");
        f.nodes[1].host().link_up()?;
        f.wait_view(&[0, 1, 2])?;
        let counts = assert_shares(
            &f.connect(CONNECTIONS)?,
            &[("node1", 2), ("node2", 1), ("node3", 1)],
        )?;
        eprintln!("node2 back: {counts:?}");
        Ok(())
    })
}

#[test]
fn farm_node_with_power_zero_gets_nothing_and_stop_hands_its_share_over() -> Result<()> {
    let config = FarmConfig {
        powers: [1, 1, 0],
        ..FarmConfig::default()
    };
    let mut farm = Farm::new("farm-power0", config, 16)?;
    farm.scenario(|f| {
        // A binary that cannot find the XDP object says how to build it.
        let bin = hakit_bin()?;
        let out = f.nodes[0].host().run([
            OsStr::new("env"),
            OsStr::new("HAKIT_FARM_XDP_OBJECT=/nonexistent/farm-xdp.o"),
            bin.as_os_str(),
            OsStr::new("config"),
            OsStr::new("check"),
        ])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(10) && stderr.contains("cargo xtask build-ebpf"),
            "config check without the XDP object: {:?} {stderr}",
            out.status
        );
        ensure!(
            f.nodes[0]
                .hakit(&["config", "check"])?
                .contains("module web: farm")
        );
        f.start_all()?;
        f.wait_view(&[0, 1, 2])?;
        let v = f.verbose_state(2)?;
        ensure!(v.contains("member        node3: load 0/256"), "{v}");
        let counts = assert_shares(
            &f.connect(CONNECTIONS)?,
            &[("node1", 1), ("node2", 1), ("node3", 0)],
        )?;
        eprintln!("powers 1/1/0: {counts:?}");
        // The VIP resolves to the virtual MAC; every server is promiscuous with XDP attached,
        // the VIP on lo and the kernel not answering ARP for it.
        let neigh = f.client.run_ok(["ip", "neigh", "show", "10.88.0.10"])?;
        ensure!(
            neigh.contains("5a:fe:0a:58:00:0a"),
            "client ARP cache: {neigh}"
        );
        let plumbing = |i: usize| -> Result<(String, String, String)> {
            let host = f.nodes[i].host();
            Ok((
                host.run_ok(["ip", "-d", "link", "show", "eth0"])?,
                host.run_ok(["ip", "addr", "show", "lo"])?,
                host.run_ok(["cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore"])?,
            ))
        };
        let (link, lo, arp_ignore) = plumbing(0)?;
        ensure!(
            link.contains("promiscuity 1") && link.contains("xdp"),
            "{link}"
        );
        ensure!(lo.contains("10.88.0.10/32"), "{lo}");
        ensure!(arp_ignore.trim() == "1", "arp_ignore {arp_ignore}");
        // A clean stop: node1 leaves the view at once and node2 takes everything.
        f.hakit(0, "stop")?;
        f.wait_view(&[1, 2])?;
        ensure!(!f.is_up(0)?, "node1 is STOP");
        let answers = f.connect(CONNECTIONS / 4)?;
        let counts = shares(&answers)?;
        ensure!(
            counts.keys().eq(["node2"].iter()),
            "only node2 serves: {counts:?}"
        );
        wait_until("node1 to tear its data plane down", DEADLINE, || {
            Ok(f.module_log(0)?.contains("data plane torn down"))
        })?;
        let (link, lo, arp_ignore) = plumbing(0)?;
        ensure!(
            link.contains("promiscuity 0") && !link.contains("xdp"),
            "{link}"
        );
        ensure!(!lo.contains("10.88.0.10"), "{lo}");
        ensure!(arp_ignore.trim() == "0", "arp_ignore {arp_ignore}");
        ensure!(
            f.module_log(0)?.contains("stop_both"),
            "{}",
            anyhow!("node1 ran stop_both")
        );
        Ok(())
    })
}
