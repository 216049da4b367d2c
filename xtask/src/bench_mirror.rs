//! `cargo xtask bench mirror`: the mirror module's replicated directory measured with fio in
//! the lab, real daemons (release build), one run, one disk. On node1: ALONE, `/srv/app/data`
//! through the overlay while node2's module is stopped (no peer); then replicated, the same
//! directory once node2 is SECOND Ready, at each ack level asked for (`async="second"`, then
//! `async="none"`: both daemons restart with the new configuration). In every phase each
//! workload also runs, just before, in a directory that is not replicated (`/srv/app/native`):
//! the native figures are the median of all those runs, and a load that changes over time (the
//! machine is shared) falls on native and overlay alike. Both directories live under node1's
//! private `/srv/app`, bind-mounted from the lab's folder: the same file system. fio runs
//! inside node1's namespaces, so through the mount.
//!
//! The link between the nodes (veth pairs through the lab's bridge) is measured first, daemons
//! idle: ping's average round trip, and the throughput of one TCP stream (a Python sender and
//! receiver), so that the targets of DESIGN.md can be stated: replicated sequential write
//! ≥ 0.8 × min(native, link); write + fsync latency ≤ native + RTT + 50 µs; reads ≥ 0.95 ×
//! native.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{Host, MirrorConfig, Signal, State};

use crate::fio::{self, Figures, FioArgs, Kind};

const DATA: &str = "/srv/app/data";
const NATIVE: &str = "/srv/app/native";
/// fio's JSON report, inside node1 (outside the directories measured).
const REPORT: &str = "/srv/app/fio-report.json";
/// Longest one fio job may take before it is declared hung (a guard, not a threshold).
const FIO_GUARD: Duration = Duration::from_secs(900);
/// The port of the link throughput measurement, on node2.
const LINK_PORT: u16 = 5201;
/// Longest the link receiver may run once the sender is done (a guard).
const LINK_GUARD: Duration = Duration::from_secs(10);
/// Pings of the round-trip measurement.
const PINGS: u32 = 20;

#[derive(clap::Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    fio: FioArgs,
    /// Ack levels measured replicated, one column each, in this order.
    #[arg(long, value_delimiter = ',', default_value = "second,none")]
    levels: Vec<Level>,
    /// Duration of the link throughput measurement, seconds.
    #[arg(long, default_value_t = 3)]
    link_seconds: u64,
}

/// `<rfs async=...>`.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    /// The peer has the operation in memory.
    Second,
    /// The peer has applied it to its file system.
    None,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Second => "second",
            Level::None => "none",
        }
    }
}

/// The link between the nodes, daemons idle.
struct Link {
    rtt_us: f64,
    tcp_mib_s: f64,
}

pub fn run(bin: &std::path::Path, args: &MirrorArgs) -> Result<()> {
    let Some(first) = args.levels.first() else {
        bail!("--levels names no ack level");
    };
    let config = MirrorConfig {
        rfs_dirs: vec![DATA.to_string()],
        rfs_async: first.name().to_string(),
        ..MirrorConfig::default()
    };
    let mut pair = MirrorPair::with_bin("bench-mirror", config, bin)?;
    pair.scenario(|p| {
        for i in 0..2 {
            p.nodes[i].host().run_ok(["mkdir", "-p", DATA, NATIVE])?;
        }
        let node1 = p.nodes[0].host().clone();
        let disks = node1.run_ok(["df", "--output=source,fstype,target", NATIVE, DATA])?;
        println!(
            "mirror benchmark (release build, fio psync, median of {} runs); node1's file \
             systems:\n{}",
            args.fio.runs,
            disks.trim_end()
        );
        let link = measure_link(p, args.link_seconds)?;
        println!(
            "link node1 -> node2 (veth through the lab bridge, daemons idle): RTT {:.0} µs \
             (ping average of {PINGS}), one TCP stream {:.0} MiB/s",
            link.rtt_us, link.tcp_mib_s
        );
        p.hakit(0, "prim")?;
        p.wait_ready(0, State::Alone)?;
        println!("ALONE (node2's module stopped): fio in {DATA}, interleaved with {NATIVE}");
        let mut phases = vec![("ALONE".to_string(), phase(p, &args.fio)?)];
        for (k, level) in args.levels.iter().enumerate() {
            if k == 0 {
                p.hakit(1, "second")?;
            } else {
                restart_with(p, *level)?;
            }
            p.wait_in_sync(0)?;
            let name = format!("replicated, async=\"{}\"", level.name());
            println!("{name} (node2 SECOND Ready): fio in {DATA}, interleaved with {NATIVE}");
            phases.push((name, phase(p, &args.fio)?));
            let state = p.nodes[0].hakit(&["state", "-v", "-m", p.module()])?;
            for line in state.lines().filter(|l| {
                l.contains("ack level") || l.contains("stream") || l.contains("replicated")
            }) {
                println!("  node1 state -v: {}", line.trim());
            }
        }
        if phases.iter().any(|(_, phase)| !phase.breaks.is_empty()) {
            println!(
                "the replication stream broke during the run; the logs:\n{}",
                p.logs()
            );
        }
        print_table(&link, &phases);
        Ok(())
    })
}

/// The runs of one phase: the workloads in [`NATIVE`] and in [`DATA`] in turn.
struct Phase {
    native: Vec<Figures>,
    measured: Vec<Figures>,
    /// Lines of node1's module log saying the replication stream broke during the phase:
    /// part of the phase then ran without a peer (ALONE, then a new copy to node2).
    breaks: Vec<String>,
}

/// Runs the workloads inside node1 (through its mounts), watching its module log.
fn phase(p: &MirrorPair, args: &FioArgs) -> Result<Phase> {
    let host = p.nodes[0].host();
    let logged = p.module_log(0)?.len();
    let mut runs = fio::measure_interleaved(&[NATIVE, DATA], args, &mut |fio_args| {
        run_fio(host, fio_args)
    })?;
    let log = p.module_log(0)?;
    let breaks: Vec<String> = log
        .get(logged..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("replication to") && l.contains("broke"))
        .map(str::to_string)
        .collect();
    for line in &breaks {
        println!("  WARNING: during this phase, node1's module log says: {line}");
    }
    let measured = runs.pop().unwrap_or_default();
    let native = runs.pop().unwrap_or_default();
    Ok(Phase {
        native,
        measured,
        breaks,
    })
}

/// Runs fio inside `host` with `args` plus `--output` (its JSON report) and returns the report.
/// Not [`Host::run_ok`]: a large run may exceed its one-minute hang guard.
fn run_fio(host: &Host, args: &[String]) -> Result<Vec<u8>> {
    let report = host.path(REPORT)?;
    let _ = std::fs::remove_file(&report);
    let mut command = vec!["fio".to_string(), format!("--output={REPORT}")];
    command.extend(args.iter().cloned());
    let mut child = host.spawn(&command, "fio.log")?;
    let status = wait_for(host, &mut child, FIO_GUARD)
        .with_context(|| format!("fio {args:?} on {}", host.name()))?;
    if !status.success() {
        let log = std::fs::read_to_string(host.output_file("fio.log")?).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        bail!(
            "fio {args:?} failed on {} ({status}): {}",
            host.name(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    std::fs::read(&report).with_context(|| format!("reading {}", report.display()))
}

/// Waits for a process started with [`Host::spawn`]; killed if it runs longer than `guard`.
fn wait_for(host: &Host, child: &mut Child, guard: Duration) -> Result<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > guard {
            host.kill(child, Signal::SIGKILL)?;
            bail!("did not finish within {guard:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Both daemons stopped (node2 first), the module's configuration rewritten with `level`, both
/// started again: node1 `prim`, node2 `second`.
fn restart_with(p: &mut MirrorPair, level: Level) -> Result<()> {
    p.nodes[1].stop_daemon()?;
    p.nodes[0].stop_daemon()?;
    p.config.rfs_async = level.name().to_string();
    p.config.write(&[p.nodes[0].host(), p.nodes[1].host()])?;
    let module = p.module().to_string();
    for node in &mut p.nodes {
        node.start_daemon()?;
        node.wait_answer(&module)?;
    }
    p.hakit(0, "prim")?;
    p.hakit(1, "second")?;
    Ok(())
}

/// Sends as fast as it can to the receiver for a number of seconds (retrying the connection
/// while the receiver starts).
const LINK_SENDER: &str = concat!(
    connect_py!(),
    r#"
seconds = float(sys.argv[3])
chunk = bytes(1 << 20)
end = time.monotonic() + seconds
while time.monotonic() < end:
    sock.sendall(chunk)
sock.close()
"#
);

/// Accepts one connection, reads it to the end, prints the bytes and the seconds from the
/// first byte to the end.
const LINK_RECEIVER: &str = concat!(
    accept_py!(),
    r#"
buf = bytearray(1 << 20)
total, start = 0, None
while True:
    n = conn.recv_into(buf)
    if n == 0:
        break
    if start is None:
        start = time.monotonic()
    total += n
print(total, time.monotonic() - start)
"#
);

/// Ping's average round trip from node1 to node2, then one TCP stream's throughput.
fn measure_link(p: &MirrorPair, seconds: u64) -> Result<Link> {
    let (node1, node2) = (p.nodes[0].host(), p.nodes[1].host());
    let peer = node2.ip().to_string();
    let count = PINGS.to_string();
    let ping = node1.run_ok(["ping", "-n", "-q", "-c", &count, "-i", "0.05", &peer])?;
    // "rtt min/avg/max/mdev = 0.031/0.045/0.080/0.010 ms"
    let rtt_ms: f64 = ping
        .lines()
        .find_map(|l| l.split_once(" = ").filter(|_| l.starts_with("rtt")))
        .and_then(|(_, v)| v.split('/').nth(1))
        .and_then(|avg| avg.parse().ok())
        .with_context(|| format!("no average round trip in ping's output: {ping}"))?;
    let port = LINK_PORT.to_string();
    let mut receiver = node2.spawn(["python3", "-c", LINK_RECEIVER, &port], "link-receiver.log")?;
    let sent = node1.run_ok([
        "python3",
        "-c",
        LINK_SENDER,
        &peer,
        &port,
        &seconds.to_string(),
    ]);
    wait_for(node2, &mut receiver, LINK_GUARD).context("the link receiver on node2")?;
    sent?;
    let out = std::fs::read_to_string(node2.output_file("link-receiver.log")?)?;
    let mut words = out.split_whitespace();
    let (bytes, secs) = match (words.next(), words.next()) {
        (Some(b), Some(s)) => (b.parse::<f64>()?, s.parse::<f64>()?),
        _ => bail!("unexpected output of the link receiver: {out}"),
    };
    Ok(Link {
        rtt_us: rtt_ms * 1000.0,
        tcp_mib_s: bytes / secs / (1024.0 * 1024.0),
    })
}

/// What a row must reach, replicated, and its bound computed from native and the link.
enum Target {
    AtLeast(f64, String),
    AtMost(f64, String),
    Nothing,
}

impl Target {
    fn of(row: &fio::Row, link: &Link, native: &Figures) -> Target {
        let (n, unit) = ((row.get)(native), row.unit);
        match row.kind {
            Kind::SequentialWrite => {
                let bound = 0.8 * n.min(link.tcp_mib_s);
                Target::AtLeast(
                    bound,
                    format!("≥ 0.8 × min(native, link) = {bound:.0} {unit}"),
                )
            }
            Kind::SyncWriteLatency => {
                let bound = n + link.rtt_us + 50.0;
                Target::AtMost(bound, format!("≤ native + RTT + 50 µs = {bound:.0} {unit}"))
            }
            Kind::SequentialRead => {
                let bound = 0.95 * n;
                Target::AtLeast(bound, format!("≥ 0.95 × native = {bound:.0} {unit}"))
            }
            Kind::Other => Target::Nothing,
        }
    }

    fn text(&self) -> &str {
        match self {
            Target::AtLeast(_, text) | Target::AtMost(_, text) => text,
            Target::Nothing => "",
        }
    }

    fn met(&self, value: f64) -> &'static str {
        match self {
            Target::AtLeast(bound, _) if value >= *bound => "yes",
            Target::AtMost(bound, _) if value <= *bound => "yes",
            Target::Nothing => "",
            _ => "**no**",
        }
    }
}

/// The table: native (the median of every native run, all phases pooled), then each phase's
/// medians and their ratio to native; the targets apply to the replicated phases (all but the
/// first, ALONE).
fn print_table(link: &Link, phases: &[(String, Phase)]) {
    let pooled: Vec<Figures> = phases
        .iter()
        .flat_map(|(_, p)| p.native.iter().copied())
        .collect();
    let native = fio::median(&pooled);
    let medians: Vec<Figures> = phases
        .iter()
        .map(|(_, p)| fio::median(&p.measured))
        .collect();
    let mut header = "| workload | native |".to_string();
    let mut rule = "|---|---|".to_string();
    for (name, phase) in phases {
        let broke = match phase.breaks.len() {
            0 => String::new(),
            n => format!(" (stream broke {n}×: partly without peer)"),
        };
        header.push_str(&format!(" {name}{broke} | ratio |"));
        rule.push_str("---|---|");
    }
    header.push_str(" target (replicated) | met? |");
    rule.push_str("---|---|");
    println!("{header}\n{rule}");
    for row in &fio::ROWS {
        let fio::Row {
            label, get, unit, ..
        } = row;
        let n = get(&native);
        let mut line = format!("| {label} | {n:.0} {unit} |");
        for figures in &medians {
            line.push_str(&format!(
                " {:.0} {unit} | {:.2} |",
                get(figures),
                get(figures) / n
            ));
        }
        let target = Target::of(row, link, &native);
        let met: Vec<&str> = medians.iter().skip(1).map(|f| target.met(get(f))).collect();
        let met = match target {
            Target::Nothing => String::new(),
            _ => met.join(" / "),
        };
        line.push_str(&format!(" {} | {met} |", target.text()));
        println!("{line}");
    }
    println!(
        "\nnative: median of the {} native runs, interleaved workload by workload with each \
         phase's runs; ratios to it; latency = the write()'s percentile plus its fsync()'s; \
         link: RTT {:.0} µs, one TCP stream {:.0} MiB/s. Native during each phase (drift):",
        pooled.len(),
        link.rtt_us,
        link.tcp_mib_s
    );
    for (name, phase) in phases {
        let n = fio::median(&phase.native);
        println!(
            "  {name}: seq write {:.0} MiB/s, write + fsync p50 {:.0} µs, 1 job {:.0} IOPS, \
             4 jobs {:.0} IOPS, seq read cold {:.0} MiB/s, warm {:.0} MiB/s",
            n.seq_write_mib_s,
            n.op_p50_us,
            n.fsync_iops,
            n.fsync4_iops,
            n.seq_read_mib_s,
            n.seq_read_warm_mib_s
        );
    }
}
