//! Zero-loss torture on real daemons in the lab: writers on the primary append numbered,
//! checksummed records to files of a replicated directory, one with an fsync after every
//! record (A), one without (B, write-through: a `write` that returned is on the peer), while
//! the primary's daemon is SIGKILLed or its cable cut at a random moment. Once the other node
//! is ALONE, every record the writers saw acknowledged must be there, intact and in order.
//! Then the old primary returns as SECOND and the next round runs the other way round.
//!
//! 50 rounds by default; `HAKIT_TORTURE_ROUNDS=n` (or `HAKIT_HEAVY=1`: 300) for more. The
//! seed is printed; `HAKIT_SEED=n` replays the same faults, delays and records (timing aside).
//! `HAKIT_TORTURE_ASYNC=none` runs with `<rfs async="none">` instead of the default `second`;
//! `HAKIT_TORTURE_FAULTS=kill` (or `cut`) injects only that fault (default: both, at random).
//!
//! A lost or damaged acknowledged record does not stop the rounds: each is printed (`LOST`),
//! the test fails at the end listing them all, and both nodes' folders (full logs, daemon
//! outputs, acknowledgements, the real files under the mounts) as they were at the first one
//! are kept in `target/tmp/torture-seed<seed>-round<n>/`. Anything else (a wait that times
//! out, a writer that cannot be reaped) stops the test at once, with the same evidence.
//!
//! A split-brain witness is configured: without it, a primary cut from the network would go
//! on alone and acknowledge writes its peer never sees (that is what the witness prevents).

use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use hakit_lab::pair::MirrorPair;
use hakit_lab::torture::{self, Records, Rng, Writer};
use hakit_lab::{DEADLINE, MirrorConfig, State, abort, wait_until};

const DATA: &str = "/srv/app/data";
const ROUNDS: u32 = 50;
const HEAVY_ROUNDS: u32 = 300;
/// Random delay between the writers' first acknowledged records and the fault.
const FAULT_DELAY_MS: (u64, u64) = (200, 1500);

fn config() -> MirrorConfig {
    MirrorConfig {
        rfs_dirs: vec![DATA.to_string()],
        rfs_async: std::env::var("HAKIT_TORTURE_ASYNC").unwrap_or_else(|_| "second".into()),
        extra_xml: hakit_lab::witness_check_xml(),
        ..MirrorConfig::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL of the primary's daemon (its mount dies with it).
    Kill,
    /// The primary's cable cut: its daemon lives on, isolated.
    LinkCut,
}

impl Fault {
    /// The faults to draw from: `HAKIT_TORTURE_FAULTS` = `kill`, `cut` or `both` (default).
    fn from_env() -> Result<Vec<Fault>> {
        match std::env::var("HAKIT_TORTURE_FAULTS").as_deref() {
            Err(_) | Ok("both") => Ok(vec![Fault::Kill, Fault::LinkCut]),
            Ok("kill") => Ok(vec![Fault::Kill]),
            Ok("cut") => Ok(vec![Fault::LinkCut]),
            Ok(other) => Err(anyhow!(
                "HAKIT_TORTURE_FAULTS must be kill, cut or both, not {other:?}"
            )),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Kill => "SIGKILL",
            Fault::LinkCut => "link cut",
        })
    }
}

/// The two writers of a round: name, fsync after each record.
const WRITERS: [(&str, bool); 2] = [("A", true), ("B", false)];

/// What one round did and checked.
struct Round {
    fault: Fault,
    prim: usize,
    delay_ms: u64,
    /// Per writer (A, B): acknowledged records, each checked on the new primary.
    acked: [u64; 2],
    /// Per writer: the acknowledgements, checked again at the end.
    records: [Vec<(u64, u64)>; 2],
    /// Per writer: what the new primary held.
    held: [Records; 2],
    /// Per writer: acknowledged records the new primary lacked.
    missing: [u64; 2],
    /// What broke the zero-loss rule, one entry per writer concerned.
    violations: Vec<String>,
    /// Fault to the other node ALONE Ready, as polled.
    failover: Duration,
    /// Restoring the old primary to both in sync again.
    recovery: Duration,
    total: Duration,
    /// The old primary's state when the other was ALONE (its daemon is gone after a SIGKILL).
    old_state: String,
}

fn data_file(round: u32, writer: &str) -> String {
    format!("{DATA}/r{round}-{writer}.log")
}

/// Node `i`'s view of a file through its mount, as raw bytes.
fn read_data(pair: &MirrorPair, i: usize, path: &str) -> Result<Vec<u8>> {
    let out = pair.nodes[i].host().run(["cat", path])?;
    ensure!(
        out.status.success(),
        "cat {path} on {}: {}",
        pair.nodes[i].name(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// What a round will do, drawn before it starts.
struct Plan {
    seed: u64,
    round: u32,
    /// The node that is PRIM when the round starts.
    prim: usize,
    fault: Fault,
    delay_ms: u64,
}

/// One round; a zero-loss violation is reported in [`Round::violations`] (the first one's
/// evidence kept, see [`keep_evidence`]); anything else that goes wrong is an error.
fn one_round(
    p: &mut MirrorPair,
    rng: &mut Rng,
    plan: &Plan,
    evidence: &mut Option<String>,
) -> Result<Round> {
    let &Plan {
        seed,
        round,
        prim,
        fault,
        delay_ms,
    } = plan;
    let start = Instant::now();
    let other = 1 - prim;
    p.wait_in_sync(prim)?;
    let host = p.nodes[prim].host().clone();
    let mut writers = Vec::new();
    for (name, fsync) in WRITERS {
        writers.push(Writer::start(
            &host,
            &format!("r{round}-{name}"),
            &data_file(round, name),
            &format!("/var/lib/hakit/r{round}-acked-{name}"),
            fsync,
            rng.next_u64(),
        )?);
    }
    wait_until("both writers to acknowledge a record", DEADLINE, || {
        for w in &writers {
            if w.acked()?.is_empty() {
                let out = w.output();
                if !out.is_empty() {
                    return Err(abort(format!("writer {} failed: {out}", w.name())));
                }
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    sleep(Duration::from_millis(delay_ms));
    let fault_at = Instant::now();
    let fault_ms = torture::now_ms();
    match fault {
        Fault::Kill => p.nodes[prim].kill_daemon()?,
        Fault::LinkCut => host.link_down()?,
    }
    p.wait_ready(other, State::Alone)?;
    let failover = fault_at.elapsed();
    // From here the writers acknowledge nothing more: what their files list is final.
    for w in &mut writers {
        w.kill()?;
    }
    let old_state = match p.state(prim) {
        Ok(s) => s.to_string(),
        Err(_) => "down".to_string(),
    };
    let mut acked = [0; 2];
    let mut records: [Vec<(u64, u64)>; 2] = Default::default();
    let mut held = [Records {
        records: 0,
        torn_tail: 0,
    }; 2];
    let mut missing = [0; 2];
    let mut violations = Vec::new();
    for (k, w) in writers.iter().enumerate() {
        records[k] = w.acked()?;
        acked[k] = records[k].len() as u64;
        let bytes = read_data(p, other, w.data())?;
        let checked = torture::parse_records(&bytes).and_then(|h| {
            held[k] = h;
            torture::verify(h, &records[k])
        });
        if let Err(e) = checked {
            missing[k] = acked[k].saturating_sub(held[k].records);
            violations.push(format!(
                "{} as {} holds it after the failover (fault at {}; writer {}: {} \
                 acknowledged; it said: {:?}): {e:#}",
                w.data(),
                p.nodes[other].name(),
                torture::time_of_day(fault_ms),
                w.name(),
                acked[k],
                w.output().trim()
            ));
        }
    }
    if !violations.is_empty() && evidence.is_none() {
        *evidence = Some(keep_evidence(p, seed, round));
    }
    let recovery_at = Instant::now();
    match fault {
        Fault::Kill => p.nodes[prim].start_daemon()?,
        Fault::LinkCut => host.link_up()?,
    }
    p.wait_in_sync(other)?;
    let recovery = recovery_at.elapsed();
    for w in &mut writers {
        w.reap(DEADLINE)?;
    }
    Ok(Round {
        fault,
        prim,
        delay_ms,
        acked,
        records,
        held,
        missing,
        violations,
        failover,
        recovery,
        total: start.elapsed(),
        old_state,
    })
}

/// Copies both nodes' folders (full logs, daemon outputs, writers' acknowledgements and the
/// real files under each node's mount) out of the lab before it is torn down; says where.
fn keep_evidence(pair: &MirrorPair, seed: u64, round: u32) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("torture-seed{seed}-round{round}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut failures = Vec::new();
    for node in &pair.nodes {
        let target = dir.join(node.name());
        let copied = std::fs::create_dir_all(&target).is_ok()
            && std::process::Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", node.host().root().display()))
                .arg(&target)
                .status()
                .is_ok_and(|s| s.success());
        if !copied {
            failures.push(node.name().to_string());
        }
    }
    if failures.is_empty() {
        format!("evidence kept in {}", dir.display())
    } else {
        format!(
            "evidence partly kept in {} (copy failed for {})",
            dir.display(),
            failures.join(", ")
        )
    }
}

/// Every file of the replicated directory with its SHA-256, as node `i` sees it.
fn hashes(pair: &MirrorPair, i: usize) -> Result<String> {
    pair.nodes[i].host().run_ok([
        "sh",
        "-c",
        &format!("cd {DATA} && find . -type f -exec sha256sum {{}} + | sort -k 2"),
    ])
}

#[derive(Default)]
struct Totals {
    rounds: u32,
    kills: u32,
    cuts: u32,
    acked: [u64; 2],
    /// Records held beyond those acknowledged (in flight at the fault, reached the peer).
    unacked_held: u64,
    torn_tails: u32,
    /// Acknowledged records missing after a failover, per writer.
    missing: [u64; 2],
    failover: Duration,
    max_failover: Duration,
    total: Duration,
}

impl Totals {
    fn add(&mut self, r: &Round) {
        self.rounds += 1;
        match r.fault {
            Fault::Kill => self.kills += 1,
            Fault::LinkCut => self.cuts += 1,
        }
        for k in 0..2 {
            self.acked[k] += r.acked[k];
            self.unacked_held += r.held[k].records.saturating_sub(r.acked[k]);
            self.missing[k] += r.missing[k];
            self.torn_tails += u32::from(r.held[k].torn_tail > 0);
        }
        self.failover += r.failover;
        self.max_failover = self.max_failover.max(r.failover);
        self.total += r.total;
    }
}

#[test]
fn every_acknowledged_record_survives_random_failovers() -> Result<()> {
    let rounds = torture::rounds_from_env(ROUNDS, HEAVY_ROUNDS)?;
    let seed = torture::seed_from_env()?;
    let faults = Fault::from_env()?;
    let cfg = config();
    println!(
        "torture: {rounds} rounds, seed {seed} (replay: HAKIT_SEED={seed}), rfs async={}, \
         faults: {}",
        cfg.rfs_async,
        faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut rng = Rng::new(seed);
    let mut pair = MirrorPair::new("torture", cfg)?;
    for node in &pair.nodes {
        torture::install_writer(node.host())?;
    }
    pair.scenario(|p| {
        for i in 0..2 {
            p.nodes[i].host().run_ok(["mkdir", "-p", DATA])?;
        }
        p.start_pair()?;
        let mut totals = Totals::default();
        // Per round without a violation: the acknowledgements, checked again at the end.
        let mut checked = Vec::new();
        // Zero-loss violations: the rounds go on (to count them), the test fails at the end.
        let mut violations = Vec::new();
        let mut evidence = None;
        let mut prim = 0;
        for round in 1..=rounds {
            let fault = faults[rng.range(0, faults.len() as u64 - 1) as usize];
            let delay_ms = rng.range(FAULT_DELAY_MS.0, FAULT_DELAY_MS.1);
            let what = format!(
                "round {round}/{rounds} (seed {seed}): {fault} of {} after {delay_ms} ms",
                p.nodes[prim].name()
            );
            let plan = Plan {
                seed,
                round,
                prim,
                fault,
                delay_ms,
            };
            let r = one_round(p, &mut rng, &plan, &mut evidence)
                .map_err(|e| {
                    let kept = evidence
                        .clone()
                        .unwrap_or_else(|| keep_evidence(p, seed, round));
                    e.context(format!("{kept}; see there for full logs and files"))
                })
                .context(what.clone())?;
            println!(
                "torture: round {round:3}/{rounds} {:8} of {} after {:4} ms: acked records \
                 checked A(fsync) {:5} B(no fsync) {:5}; held A {} B {}{}; old primary {}; \
                 failover {:.1?}, recovery {:.1?}, round {:.1?}",
                r.fault.to_string(),
                p.nodes[r.prim].name(),
                r.delay_ms,
                r.acked[0],
                r.acked[1],
                r.held[0].records,
                r.held[1].records,
                if r.held.iter().any(|h| h.torn_tail > 0) {
                    format!(
                        " (+ partial record of {}/{} bytes)",
                        r.held[0].torn_tail, r.held[1].torn_tail
                    )
                } else {
                    String::new()
                },
                r.old_state,
                r.failover,
                r.recovery,
                r.total
            );
            for v in &r.violations {
                println!("torture: round {round:3}/{rounds} LOST: {v}");
                violations.push(format!("{what}: {v}"));
            }
            totals.add(&r);
            if r.violations.is_empty() {
                checked.push((round, r.records));
            }
            prim = 1 - prim;
        }
        // After every resync since, the current primary still holds each round's records
        // (those of the rounds that passed), and both copies are identical.
        p.wait_in_sync(prim)?;
        for (round, records) in &checked {
            for (k, (name, _)) in WRITERS.iter().enumerate() {
                let path = data_file(*round, name);
                torture::parse_records(&read_data(p, prim, &path)?)
                    .and_then(|h| torture::verify(h, &records[k]))
                    .with_context(|| format!("{path} at the end, on the primary"))?;
            }
        }
        let last = p.wait_same("both copies identical", hashes)?;
        let files = last.lines().count();
        let n = totals.rounds.max(1);
        println!(
            "torture: {} rounds ({} SIGKILL, {} link cut), acknowledged records verified: \
             A (fsync) {}, B (no fsync) {}, total {}; missing: A {} B {} in {} rounds; {} more \
             records held than acknowledged; {} partial records at a file's end; failover mean \
             {:.1?} max {:.1?}; round mean {:.1?}; at the end {files} files identical on both \
             nodes",
            totals.rounds,
            totals.kills,
            totals.cuts,
            totals.acked[0],
            totals.acked[1],
            totals.acked[0] + totals.acked[1],
            totals.missing[0],
            totals.missing[1],
            rounds as usize - checked.len(),
            totals.unacked_held,
            totals.torn_tails,
            totals.failover / n,
            totals.max_failover,
            totals.total / n,
        );
        ensure!(
            violations.is_empty(),
            "acknowledged records lost or damaged in {} of {} rounds ({}):\n{}",
            rounds as usize - checked.len(),
            rounds,
            evidence.as_deref().unwrap_or("no evidence kept"),
            violations.join("\n")
        );
        ensure!(
            totals.acked.iter().all(|&a| a > 0),
            "the writers acknowledged nothing: the torture proved nothing"
        );
        Ok(())
    })
}
