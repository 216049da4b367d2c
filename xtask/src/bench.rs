//! `cargo xtask bench <what>`: benchmarks run in the lab on a release build.
//!
//! `failover`: a two-node mirror module (pulse 100 ms, timeout 1 s) serving a web page on its
//! virtual IP; the primary's daemon is SIGKILLed and a client polls the VIP every few
//! milliseconds until the page comes from the other node. Each run measures, from outside,
//! detection + virtual IP + start_prim + the application answering. The killed node's daemon
//! is restarted, it comes back as SECOND, and the next run kills the other node.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{DEADLINE, MirrorConfig, State, wait_until};

use crate::cmd::{self, cargo, target_dir};

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
}

/// How often the client tries the VIP, and how long one try may take.
const POLL: Duration = Duration::from_millis(20);

pub fn run(args: &Args) -> Result<()> {
    cmd::run(cargo().args(["build", "--release", "-p", "hakit"]))?;
    let bin = target_dir().join("release").join("hakit");
    if !bin.is_file() {
        bail!("the build did not produce {}", bin.display());
    }
    match args.what {
        What::Failover { runs } => failover(&bin, runs),
    }
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
