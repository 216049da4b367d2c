//! What the change journal costs a writer (`cargo xtask bench journal` runs this in release):
//! a file written sequentially in 128 KiB writes, then `fdatasync`, natively and with every
//! write first seen by the journal (the first write into each zone appends a record and
//! syncs it), for several zone sizes; the median of 3 runs each, interleaved.
//!
//! Usage: `journal_bench [MIB]` (default 256); the files go to a temporary folder under
//! `/var/tmp` (a disk, not memory).

use anyhow::{Context, Result};
use bytes::Bytes;
use hakit::daemon::data::journal::Journal;
use rfs_fuse::protocol::op::{Op, RelPath};
use rfs_fuse::sync::zones::ZoneSize;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const WRITE: usize = 128 << 10;
const RUNS: usize = 3;
const ZONES: [u64; 4] = [64 << 10, 1 << 20, 8 << 20, 16 << 20];

fn main() -> Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|m| m.parse().context("MIB must be a whole number"))
        .transpose()?
        .unwrap_or(256);
    let dir = tempfile::Builder::new()
        .prefix("hakit-journal-bench")
        .tempdir_in("/var/tmp")?;
    let mut native = Vec::new();
    let mut journaled = vec![Vec::new(); ZONES.len()];
    for _ in 0..RUNS {
        native.push(run(dir.path(), mib, None)?);
        for (times, zone) in journaled.iter_mut().zip(ZONES) {
            times.push(run(dir.path(), mib, ZoneSize::new(zone))?);
        }
    }
    let base = median(&mut native);
    println!("{mib} MiB in 128 KiB writes + fdatasync, median of {RUNS}:");
    println!("| zone | ms | vs native | records synced |");
    println!("|---|---|---|---|");
    println!("| native (no journal) | {} | 1.00× | 0 |", base.as_millis());
    for (times, zone) in journaled.iter_mut().zip(ZONES) {
        let t = median(times);
        println!(
            "| {} KiB | {} | {:.2}× | {} |",
            zone >> 10,
            t.as_millis(),
            t.as_secs_f64() / base.as_secs_f64(),
            (mib << 20).div_ceil(zone)
        );
    }
    Ok(())
}

/// One file of `mib` MiB written from scratch, through a fresh journal of `zone` if any.
fn run(dir: &Path, mib: u64, zone: Option<ZoneSize>) -> Result<Duration> {
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let file = File::create(dir.join("data"))?;
    let data = Bytes::from(vec![7u8; WRITE]);
    let observe = zone
        .map(|zone| {
            let journal = Journal::open(&state, 1, zone);
            let observe = journal.observer(0).context("no observer")?;
            observe(&Op::Open {
                handle: 1,
                path: RelPath::new(b"data")?,
            });
            anyhow::Ok((journal, observe))
        })
        .transpose()?;
    let started = Instant::now();
    for offset in (0..mib << 20).step_by(WRITE) {
        if let Some((_, observe)) = &observe {
            observe(&Op::Write {
                handle: 1,
                offset,
                data: data.clone(),
            });
        }
        file.write_all_at(&data, offset)?;
    }
    file.sync_data()?;
    Ok(started.elapsed())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
