//! `cargo xtask lab`: builds hakit and runs the lab demo (see `hakit_lab::demo`), narrated.
//!
//! SIGINT and SIGTERM are blocked before any thread starts and awaited by a dedicated thread, so
//! Ctrl-C at any point tears the lab down (no namespace or process left) before exiting.

use std::sync::{Arc, Weak};
use std::thread;

use anyhow::{Context, Result, bail};
use hakit_lab::Lab;
use hakit_lab::demo::Demo;
use nix::sys::signal::{SigSet, Signal};

use crate::cmd::{self, cargo, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Leave the lab up after the scenario (even a failed one) until Ctrl-C.
    #[arg(long)]
    keep: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .context("blocking SIGINT and SIGTERM")?;

    cmd::run(cargo().args(["build", "-p", "hakit"]))?;
    let bin = target_dir().join("debug").join("hakit");
    if !bin.is_file() {
        bail!("the build did not produce {}", bin.display());
    }

    let mut demo = Demo::setup(&bin)?;
    tear_down_on_signal(signals, Arc::downgrade(demo.lab()));
    let outcome = demo.scenario();
    if outcome.is_err() {
        eprint!("{}", demo.daemon_logs());
    }
    if args.keep {
        if let Err(e) = &outcome {
            eprintln!("xtask lab: the scenario failed: {e:#}");
        }
        println!("{}\nCtrl-C tears the lab down.", demo.how_to_explore());
        loop {
            thread::park();
        }
    }
    drop(demo);
    outcome
}

/// On SIGINT/SIGTERM: tear the lab down (if still up) and exit.
fn tear_down_on_signal(signals: SigSet, lab: Weak<Lab>) {
    thread::spawn(move || {
        let signal = signals.wait().map_or("a signal".into(), |s| s.to_string());
        if let Some(lab) = lab.upgrade() {
            eprintln!("\nxtask lab: {signal}: tearing the lab down");
            lab.teardown();
        }
        std::process::exit(130);
    });
}
