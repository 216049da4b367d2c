//! `cargo xtask bench <what>`: benchmarks run in the lab on a release build.
//!
//! `failover`: a two-node mirror module (pulse 100 ms, timeout 1 s) serving a web page on its
//! virtual IP; the primary's daemon is SIGKILLed and a client polls the VIP every few
//! milliseconds until the page comes from the other node. Each run measures, from outside,
//! detection + virtual IP + start_prim + the application answering. The killed node's daemon
//! is restarted, it comes back as SECOND, and the next run kills the other node.
//!
//! `farm`: the farm XDP filter's cost per packet (accept / drop / not farm traffic), measured
//! by the kernel with `BPF_PROG_TEST_RUN` on the release-built object; then, in the lab, the
//! time from a farm node's death to the new table installed (`bench_farm`).
//!
//! `mirror`: fio through a replicated directory of the same pair: native, ALONE, replicated
//! (`bench_mirror`).
//!
//! `resync`: the replication lab scenarios that measure copies, on a release build: a SECOND
//! joining 64 MiB while a writer runs (copy time, how long writes waited), a SECOND returning
//! after changes to a 50 MiB data set (bytes on the primary's cable from the kernel's
//! interface counters, against the bytes of the changed files), and a lost SECOND (the longest
//! write while it was being declared lost); then a data set of `--mib` MiB resynchronised in
//! every way against a plain copy over the same link (`bench_resync`).
//!
//! `journal`: the change journal's cost to a writer, per zone size, against the same writes
//! without it (`examples/journal_bench.rs`).
//!
//! `idle`: the same pair, in sync and idle; each daemon's CPU time (from /proc/<pid>/stat)
//! over a measuring window, as a share of one core, and its resident memory.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{DEADLINE, MirrorConfig, State, wait_until};

use crate::cmd::{self, cargo, target_dir};
use crate::ebpf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Time from the primary's SIGKILL to the application answering on the VIP from the peer.
    Failover {
        /// Number of failovers measured.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// fio on native, overlay (no peer) and overlay replicating over loopback.
    Rfs(crate::bench_rfs::RfsArgs),
    /// fio in the lab on node1: a native directory, the replicated directory ALONE (no peer),
    /// then replicated to node2 over veth at each ack level; the link's RTT and TCP throughput.
    Mirror(crate::bench_mirror::MirrorArgs),
    /// Nanoseconds per packet of the farm XDP filter (accept, drop, not farm traffic), then
    /// the time from a farm node's death to the new table installed (three nodes in the lab).
    Farm {
        /// Runs per measurement (the best of five measurements is shown).
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        /// Node deaths measured.
        #[arg(long, default_value_t = 6)]
        runs: usize,
    },
    /// Copies to a joining or returning SECOND, and the write stall when it is lost (lab);
    /// then a data set resynchronised fully, incrementally and to a returning ex-primary,
    /// against a plain copy over the same link.
    Resync(crate::bench_resync::ResyncArgs),
    /// What the change journal costs a sequential writer, per zone size, against no journal.
    Journal {
        /// Size of the file written, MiB.
        #[arg(long, default_value_t = 256)]
        mib: u64,
    },
    /// CPU and memory of two idle daemons (PRIM and SECOND, pulse 100 ms).
    Idle {
        /// Length of the measuring window, in seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
}

/// How often the client tries the VIP, and how long one try may take.
const POLL: Duration = Duration::from_millis(20);

pub fn run(args: &Args) -> Result<()> {
    match &args.what {
        What::Failover { runs } => failover(&release_hakit()?, *runs),
        What::Idle { seconds } => idle(&release_hakit()?, Duration::from_secs(*seconds)),
        What::Rfs(rfs) => crate::bench_rfs::run(rfs),
        What::Resync(args) => {
            let bin = release_hakit()?;
            resync(&bin)?;
            crate::bench_resync::run(&bin, args)
        }
        What::Journal { mib } => cmd::run(
            cargo()
                .args(["run", "--quiet", "--release", "-p", "hakit"])
                .args(["--example", "journal_bench", "--"])
                .arg(mib.to_string()),
        ),
        What::Mirror(mirror) => crate::bench_mirror::run(&release_hakit()?, mirror),
        What::Farm { repeat, runs } => {
            farm(*repeat)?;
            crate::bench_farm::death_to_table(&release_hakit()?, *runs)
        }
    }
}

/// The hakit daemon, built in release for the lab benchmarks.
/// The lab scenarios print their measurements; run them one at a time, release build.
fn resync(bin: &std::path::Path) -> Result<()> {
    cmd::run(
        cargo()
            .args([
                "test",
                "--release",
                "-p",
                "hakit-lab",
                "--test",
                "replication_lab",
            ])
            .args(["--", "--nocapture", "--test-threads=1"])
            .args([
                "a_secondary_joins_while_the_application_writes",
                "a_returning_secondary_receives_only_what_changed",
                "a_lost_secondary_stalls_writes_only_until_it_is_declared_lost",
            ])
            .env("HAKIT_BIN", bin),
    )
}

fn release_hakit() -> Result<std::path::PathBuf> {
    cmd::run(cargo().args(["build", "--release", "-p", "hakit"]))?;
    let bin = target_dir().join("release").join("hakit");
    if !bin.is_file() {
        bail!("the build did not produce {}", bin.display());
    }
    Ok(bin)
}

fn farm(repeat: u32) -> Result<()> {
    let object = ebpf::build()?;
    cmd::run(
        cargo()
            .args(["run", "--quiet", "--release", "-p", "hakit"])
            .args(["--example", "farm_xdp_bench", "--"])
            .arg(repeat.to_string())
            .env("HAKIT_FARM_XDP_OBJECT", object),
    )
}

fn failover(bin: &std::path::Path, runs: usize) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let config = MirrorConfig::default();
    println!(
        "failover benchmark: pulse {}, timeout {}, {runs} runs (release build)",
        config.pulse, config.timeout
    );
    let mut pair = MirrorPair::with_bin("bench", config, bin)?;
    let mut times = Vec::with_capacity(runs);
    pair.scenario(|p| {
        p.start_pair()?;
        let mut primary = 0;
        for run in 1..=runs {
            let survivor = 1 - primary;
            let survivor_name = p.nodes[survivor].name().to_string();
            p.wait_served_by(p.nodes[primary].name())?;
            p.nodes[primary].kill_daemon()?;
            let took = time_until_served_by(p, &survivor_name)?;
            times.push(took);
            println!(
                "run {run:>2}: {} -> {survivor_name} in {} ms",
                p.nodes[primary].name(),
                took.as_millis()
            );
            p.nodes[primary].start_daemon()?;
            p.wait_ready(primary, State::Second)?;
            p.wait_ready(survivor, State::Prim)?;
            primary = survivor;
        }
        Ok(())
    })?;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(times[times.len() / 2]);
    println!(
        "failover (SIGKILL -> VIP answers from the peer): median {median:.0} ms, min {:.0} ms, \
         max {:.0} ms over {} runs; the heartbeat timeout alone is 1000 ms",
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
    Ok(())
}

/// From now until the client gets a page from `node` through the VIP.
fn time_until_served_by(pair: &MirrorPair, node: &str) -> Result<Duration> {
    let start = Instant::now();
    let (vip, port) = (pair.config.vip, pair.config.app_port);
    let want = format!("served by {node}");
    let mut served = None;
    wait_until(&format!("the VIP to answer {want:?}"), DEADLINE, || {
        let answered = pair
            .client
            .http_get_within(vip, port, "/", POLL)
            .is_ok_and(|body| body.contains(&want));
        if answered {
            served = Some(start.elapsed());
        }
        Ok(answered)
    })?;
    Ok(served.unwrap_or_else(|| start.elapsed()))
}

fn idle(bin: &std::path::Path, window: Duration) -> Result<()> {
    let mut pair = MirrorPair::with_bin("idle", MirrorConfig::default(), bin)?;
    pair.scenario(|p| {
        p.start_pair()?;
        let pids: Vec<u32> = p.nodes.iter_mut().filter_map(|n| n.daemon_pid()).collect();
        if pids.len() != 2 {
            bail!("both daemons must run");
        }
        let before: Vec<u64> = pids
            .iter()
            .map(|pid| cpu_ticks(*pid))
            .collect::<Result<_>>()?;
        std::thread::sleep(window);
        for (i, pid) in pids.iter().enumerate() {
            let used = cpu_ticks(*pid)?.saturating_sub(before[i]);
            // /proc counts in clock ticks of 1/100 s (USER_HZ on Linux).
            let share = used as f64 / 100.0 / window.as_secs_f64() * 100.0;
            let rss = rss_kib(*pid)?;
            println!(
                "{}: {share:.2} % of one core over {} s, RSS {:.1} MiB",
                p.nodes[i].name(),
                window.as_secs(),
                rss as f64 / 1024.0
            );
        }
        Ok(())
    })
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are space-separated.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    match (field(11), field(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => bail!("unexpected /proc/{pid}/stat: {stat}"),
    }
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}
