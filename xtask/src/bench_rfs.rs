//! `cargo xtask bench rfs`: fio on a native directory, on the overlay with no peer (ALONE) and
//! on the overlay replicating every operation over TCP loopback to a receiver on the same
//! disk, in one run, as ratios to native. The overlay runs in a release build of
//! `rfs-fuse/examples/bench_mount.rs`. (`bench mirror` measures the engine's replication
//! between two lab nodes over veth.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, cargo, target_dir};
use crate::fio::{self, Figures, FioArgs};

#[derive(clap::Args)]
pub struct RfsArgs {
    /// Where the test directories are created (its file system is what is measured).
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    #[command(flatten)]
    fio: FioArgs,
}

pub fn run(args: &RfsArgs) -> Result<()> {
    cmd::run(cargo().args([
        "build",
        "--release",
        "-p",
        "rfs-fuse",
        "--example",
        "bench_mount",
    ]))?;
    let mount_bin = target_dir().join("release/examples/bench_mount");
    let native_dir = tempfile::tempdir_in(&args.dir)?;
    let alone_dir = tempfile::tempdir_in(&args.dir)?;
    let primary_dir = tempfile::tempdir_in(&args.dir)?;
    let secondary_dir = tempfile::tempdir_in(&args.dir)?;
    println!(
        "rfs benchmark in {} (fio, psync engine, median of {} runs)",
        args.dir.display(),
        args.fio.runs
    );
    let native = measure(native_dir.path(), args)?;
    let alone = {
        let _mount = Mounted::start(
            &mount_bin,
            &["alone".as_ref(), alone_dir.path().as_os_str()],
        )?;
        measure(alone_dir.path(), args)?
    };
    let replicated = {
        let mount_args = [
            "replicated".as_ref(),
            primary_dir.path().as_os_str(),
            secondary_dir.path().as_os_str(),
        ];
        let _mount = Mounted::start(&mount_bin, &mount_args)?;
        measure(primary_dir.path(), args)?
    };
    print_table(&native, &alone, &replicated);
    Ok(())
}

fn print_table(native: &Figures, alone: &Figures, replicated: &Figures) {
    println!("| workload | native | overlay ALONE | ratio | replicated (loopback) | ratio |");
    println!("|---|---|---|---|---|---|");
    for fio::Row {
        label, get, unit, ..
    } in fio::ROWS
    {
        let (n, a, r) = (get(native), get(alone), get(replicated));
        println!(
            "| {label} | {n:.0} {unit} | {a:.0} {unit} | {:.2} | {r:.0} {unit} | {:.2} |",
            a / n,
            r / n
        );
    }
}

/// The overlay mounted by the release helper; unmounted when dropped (its stdin closes).
struct Mounted {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Mounted {
    fn start(bin: &Path, args: &[&std::ffi::OsStr]) -> Result<Mounted> {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("no stdout from the mount helper")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "mounted" {
            bail!("the mount helper did not mount: {line:?}");
        }
        Ok(Mounted { child, stdin })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

fn measure(dir: &Path, args: &RfsArgs) -> Result<Figures> {
    let dir = dir
        .to_str()
        .context("the test directory's path is not UTF-8")?;
    fio::measure(dir, &args.fio, &mut fio::local)
}
