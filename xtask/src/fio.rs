//! The fio workloads of the file system benchmarks (`bench rfs`, `bench mirror`): the same jobs
//! and the same figures read from fio's JSON report, wherever fio runs (here, or inside a lab
//! node through its mounts).

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Sizes and repetitions of the workloads.
#[derive(clap::Args)]
pub struct FioArgs {
    /// Size of the sequential files, MiB.
    #[arg(long, default_value_t = 256)]
    pub size_mib: u64,
    /// Duration of each synchronous-write job, seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Times each workload runs; every figure is the median of the runs.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// What one run of the workloads measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub seq_write_mib_s: f64,
    /// 4 KiB random writes, each followed by an fsync: writes per second (one job).
    pub fsync_iops: f64,
    /// Latency of one write plus its fsync (sum of the calls' percentiles), µs.
    pub op_p50_us: f64,
    pub op_p99_us: f64,
    /// The two calls separately, µs.
    pub write_p50_us: f64,
    pub sync_p50_us: f64,
    /// Four jobs of the same, writes per second in all.
    pub fsync4_iops: f64,
    /// Reading the sequential file just written, its pages dropped from the page cache first.
    pub seq_read_mib_s: f64,
    /// Reading it again at once (the page cache holds it, as far as the file system keeps it).
    pub seq_read_warm_mib_s: f64,
}

/// A line of the result tables.
pub struct Row {
    pub label: &'static str,
    pub get: fn(&Figures) -> f64,
    pub unit: &'static str,
    pub kind: Kind,
}

/// What a row measures, for the benchmarks that judge it against a target.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SequentialWrite,
    /// Latency of a synchronous write (write + fsync).
    SyncWriteLatency,
    SequentialRead,
    Other,
}

const fn row(label: &'static str, get: fn(&Figures) -> f64, unit: &'static str, kind: Kind) -> Row {
    Row {
        label,
        get,
        unit,
        kind,
    }
}

/// The rows every file system benchmark prints, in this order.
pub const ROWS: [Row; 9] = [
    row(
        "sequential write 1 MiB + end fsync",
        |f| f.seq_write_mib_s,
        "MiB/s",
        Kind::SequentialWrite,
    ),
    row(
        "4 KiB random write + fsync each, 1 job",
        |f| f.fsync_iops,
        "IOPS",
        Kind::Other,
    ),
    row(
        "  p50 latency, write + fsync",
        |f| f.op_p50_us,
        "µs",
        Kind::SyncWriteLatency,
    ),
    row(
        "  p99 latency, write + fsync",
        |f| f.op_p99_us,
        "µs",
        Kind::SyncWriteLatency,
    ),
    row(
        "  p50 of the write() alone",
        |f| f.write_p50_us,
        "µs",
        Kind::Other,
    ),
    row(
        "  p50 of the fsync() alone",
        |f| f.sync_p50_us,
        "µs",
        Kind::Other,
    ),
    row(
        "4 jobs of 4 KiB random write + fsync each",
        |f| f.fsync4_iops,
        "IOPS",
        Kind::Other,
    ),
    row(
        "sequential read 1 MiB (cold cache)",
        |f| f.seq_read_mib_s,
        "MiB/s",
        Kind::SequentialRead,
    ),
    row(
        "sequential read 1 MiB again (warm)",
        |f| f.seq_read_warm_mib_s,
        "MiB/s",
        Kind::SequentialRead,
    ),
];

/// Runs the workloads `args.runs` times in `dir` and returns the median of each figure.
/// `fio` runs fio with the given arguments (where it runs is the caller's business) and returns
/// its JSON report (`--output-format=json` is among the arguments).
pub fn measure(
    dir: &str,
    args: &FioArgs,
    fio: &mut dyn FnMut(&[String]) -> Result<Vec<u8>>,
) -> Result<Figures> {
    let runs = measure_interleaved(&[dir], args, fio)?;
    Ok(median(&runs[0]))
}

/// Runs the workloads `args.runs` times in each of `dirs`, each workload in every directory in
/// turn (so that the machine's changing load falls on all of them alike), and returns the
/// figures of every run, per directory (in the order of `dirs`).
pub fn measure_interleaved(
    dirs: &[&str],
    args: &FioArgs,
    fio: &mut dyn FnMut(&[String]) -> Result<Vec<u8>>,
) -> Result<Vec<Vec<Figures>>> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut runs = vec![Vec::with_capacity(args.runs); dirs.len()];
    for _ in 0..args.runs {
        for (dir, figures) in measure_once(dirs, args, fio)?.into_iter().enumerate() {
            runs[dir].push(figures);
        }
    }
    Ok(runs)
}

fn measure_once(
    dirs: &[&str],
    args: &FioArgs,
    fio: &mut dyn FnMut(&[String]) -> Result<Vec<u8>>,
) -> Result<Vec<Figures>> {
    let size = format!("--size={}M", args.size_mib);
    let runtime = format!("--runtime={}", args.seconds);
    // One workload in every directory, its reports in the order of `dirs`.
    let mut in_each = |name: &str, more: &[&str]| -> Result<Vec<Value>> {
        let mut reports = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let mut all = vec![
                format!("--directory={dir}"),
                format!("--name={name}"),
                "--ioengine=psync".into(),
                "--output-format=json".into(),
            ];
            all.extend(more.iter().map(|a| a.to_string()));
            reports.push(first_job(&fio(&all)?, &all)?);
        }
        Ok(reports)
    };
    let seq_write = in_each("seq", &["--rw=write", "--bs=1M", &size, "--end_fsync=1"])?;
    drop_caches();
    let seq_read = in_each("seq", &["--rw=read", "--bs=1M", &size])?;
    // Every job deletes its files at the end: each run starts from the same empty directory.
    let seq_read_warm = in_each("seq", &["--rw=read", "--bs=1M", &size, "--unlink=1"])?;
    let fsync_job = [
        "--rw=randwrite",
        "--bs=4k",
        "--size=64M",
        "--fsync=1",
        &runtime,
        "--time_based",
        "--unlink=1",
    ];
    let fsync1 = in_each("fsync1", &fsync_job)?;
    let mut four = vec!["--numjobs=4", "--group_reporting"];
    four.extend(fsync_job);
    let fsync4 = in_each("fsync4", &four)?;
    (0..dirs.len())
        .map(|i| {
            let reads = [&seq_read[i], &seq_read_warm[i]];
            figures(&seq_write[i], reads, &fsync1[i], &fsync4[i])
        })
        .collect()
}

/// The figures of one directory's reports.
fn figures(
    seq_write: &Value,
    [seq_read, seq_read_warm]: [&Value; 2],
    fsync1: &Value,
    fsync4: &Value,
) -> Result<Figures> {
    let us = |job: &Value, pointer: &str| number(job, pointer).map(|ns| ns / 1000.0);
    let write_p = |p: &str| us(fsync1, &format!("/write/clat_ns/percentile/{p}"));
    let sync_p = |p: &str| us(fsync1, &format!("/sync/lat_ns/percentile/{p}"));
    let (p50, p99) = ("50.000000", "99.000000");
    Ok(Figures {
        seq_write_mib_s: number(seq_write, "/write/bw")? / 1024.0,
        fsync_iops: number(fsync1, "/write/iops")?,
        op_p50_us: write_p(p50)? + sync_p(p50)?,
        op_p99_us: write_p(p99)? + sync_p(p99)?,
        write_p50_us: write_p(p50)?,
        sync_p50_us: sync_p(p50)?,
        fsync4_iops: number(fsync4, "/write/iops")?,
        seq_read_mib_s: number(seq_read, "/read/bw")? / 1024.0,
        seq_read_warm_mib_s: number(seq_read_warm, "/read/bw")? / 1024.0,
    })
}

/// Each figure's median over `runs` (NaN if there are none).
pub fn median(runs: &[Figures]) -> Figures {
    let mut out = Figures::default();
    let fields: [fn(&mut Figures) -> &mut f64; ROWS.len()] = [
        |f| &mut f.seq_write_mib_s,
        |f| &mut f.fsync_iops,
        |f| &mut f.op_p50_us,
        |f| &mut f.op_p99_us,
        |f| &mut f.write_p50_us,
        |f| &mut f.sync_p50_us,
        |f| &mut f.fsync4_iops,
        |f| &mut f.seq_read_mib_s,
        |f| &mut f.seq_read_warm_mib_s,
    ];
    for field in fields {
        let mut values: Vec<f64> = runs
            .iter()
            .map(|run| {
                let mut run = *run;
                *field(&mut run)
            })
            .collect();
        values.sort_by(f64::total_cmp);
        *field(&mut out) = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
    }
    out
}

/// Runs fio here, in the current namespaces.
pub fn local(args: &[String]) -> Result<Vec<u8>> {
    let out = std::process::Command::new("fio")
        .args(args)
        .output()
        .context("running fio (install it with `cargo xtask setup`)")?;
    if !out.status.success() {
        bail!(
            "fio {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// The first job of a fio JSON report.
fn first_job(report: &[u8], args: &[String]) -> Result<Value> {
    let report: Value = serde_json::from_slice(report).context("reading fio's JSON report")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_taken_figure_by_figure() {
        let run = |w: f64, r: f64| Figures {
            seq_write_mib_s: w,
            seq_read_mib_s: r,
            ..Figures::default()
        };
        let m = median(&[run(1.0, 30.0), run(3.0, 10.0), run(2.0, 20.0)]);
        assert_eq!((m.seq_write_mib_s, m.seq_read_mib_s), (2.0, 20.0));
    }

    #[test]
    fn the_first_job_is_read_from_the_report() {
        let report = br#"{"jobs":[{"write":{"bw":2048.0,"iops":10}}]}"#;
        let job = first_job(report, &[]).unwrap();
        assert_eq!(number(&job, "/write/bw").unwrap(), 2048.0);
        assert!(number(&job, "/read/bw").is_err());
    }
}
