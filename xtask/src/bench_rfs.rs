//! `cargo xtask bench rfs`: fio on a native directory, on the overlay with no peer (ALONE) and
//! on the overlay replicating every operation over TCP loopback to a receiver on the same
//! disk, in one run, as ratios to native. The overlay runs in a release build of
//! `rfs-fuse/examples/bench_mount.rs`. (The lab benchmark over veth comes with the engine's
//! replication.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd::{self, cargo, target_dir};

#[derive(clap::Args)]
pub struct RfsArgs {
    /// Where the test directories are created (its file system is what is measured).
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// Size of the sequential files, MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Duration of each synchronous-write job, seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

struct Figures {
    seq_write_mib_s: f64,
    fsync_iops: f64,
    fsync_p50_us: f64,
    fsync_p99_us: f64,
    fsync4_iops: f64,
    seq_read_mib_s: f64,
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
        "rfs benchmark in {} (fio, psync engine)",
        args.dir.display()
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
    type Row = (&'static str, fn(&Figures) -> f64, &'static str);
    let rows: [Row; 6] = [
        (
            "sequential write 1 MiB + end fsync",
            |f| f.seq_write_mib_s,
            "MiB/s",
        ),
        ("4 KiB random write, O_SYNC", |f| f.fsync_iops, "IOPS"),
        ("  p50 latency", |f| f.fsync_p50_us, "µs"),
        ("  p99 latency", |f| f.fsync_p99_us, "µs"),
        ("4 jobs of 4 KiB write, O_SYNC", |f| f.fsync4_iops, "IOPS"),
        ("sequential read 1 MiB", |f| f.seq_read_mib_s, "MiB/s"),
    ];
    println!("| workload | native | overlay ALONE | ratio | replicated (loopback) | ratio |");
    println!("|---|---|---|---|---|---|");
    for (name, get, unit) in rows {
        let (n, a, r) = (get(native), get(alone), get(replicated));
        println!(
            "| {name} | {n:.0} {unit} | {a:.0} {unit} | {:.2} | {r:.0} {unit} | {:.2} |",
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
    let size = format!("--size={}M", args.size_mib);
    let runtime = format!("--runtime={}", args.seconds);
    let seq_write = fio(
        dir,
        &[
            "--name=seq",
            "--rw=write",
            "--bs=1M",
            &size,
            "--end_fsync=1",
        ],
    )?;
    drop_caches();
    let seq_read = fio(dir, &["--name=seq", "--rw=read", "--bs=1M", &size])?;
    let fsync_job = [
        "--rw=randwrite",
        "--bs=4k",
        "--size=64M",
        "--fsync=1",
        &runtime,
        "--time_based",
    ];
    let mut one = vec!["--name=fsync1"];
    one.extend(fsync_job);
    let fsync1 = fio(dir, &one)?;
    let mut four = vec!["--name=fsync4", "--numjobs=4", "--group_reporting"];
    four.extend(fsync_job);
    let fsync4 = fio(dir, &four)?;
    Ok(Figures {
        seq_write_mib_s: number(&seq_write, "/write/bw")? / 1024.0,
        fsync_iops: number(&fsync1, "/write/iops")?,
        fsync_p50_us: number(&fsync1, "/write/clat_ns/percentile/50.000000")? / 1000.0,
        fsync_p99_us: number(&fsync1, "/write/clat_ns/percentile/99.000000")? / 1000.0,
        fsync4_iops: number(&fsync4, "/write/iops")?,
        seq_read_mib_s: number(&seq_read, "/read/bw")? / 1024.0,
    })
}

/// Runs fio in `dir` and returns its first job's report.
fn fio(dir: &Path, args: &[&str]) -> Result<Value> {
    let out = Command::new("fio")
        .arg(format!("--directory={}", dir.display()))
        .args(["--ioengine=psync", "--output-format=json"])
        .args(args)
        .output()
        .context("running fio (install it with `cargo xtask setup`)")?;
    if !out.status.success() {
        bail!(
            "fio {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("reading fio's JSON report")?;
    report
        .pointer("/jobs/0")
        .cloned()
        .with_context(|| format!("no job in fio's report for {args:?}"))
}

fn number(job: &Value, pointer: &str) -> Result<f64> {
    job.pointer(pointer)
        .and_then(Value::as_f64)
        .with_context(|| format!("fio report has no number at {pointer}"))
}

/// Cold reads where allowed (root); otherwise the page cache serves them alike everywhere.
fn drop_caches() {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}
