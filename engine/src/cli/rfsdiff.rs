//! `hakit rfsdiff -m M`: what a SECOND returning now would receive, from this node's change
//! journal (the daemon running or not).

use anyhow::{Context, Result, bail};
use hakit::config::{Roots, load_all};
use hakit::daemon::data::journal::Journal;
use hakit::daemon::record_store;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

pub fn rfsdiff(roots: &Roots, module: &str) -> Result<i32> {
    let config = load_all(roots).map_err(|errors| {
        anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let Some(m) = config.modules.iter().find(|m| m.name == module) else {
        bail!("no module {module} in {}", roots.conf.display());
    };
    let Some(rfs) = &m.rfs else {
        bail!("module {module} replicates no folder (no <rfs>)");
    };
    let record = record_store::load(&m.paths.state_dir)
        .with_context(|| format!("reading {}", m.paths.state_dir.display()))?;
    match record.incremental_base {
        Some(base) => println!(
            "{module}: a SECOND returning with data generation {base} receives the paths below; \
             any other gets everything"
        ),
        None => println!(
            "{module}: no SECOND can return incrementally now (this node is not a primary that \
             lost its SECOND): a join copies everything"
        ),
    }
    let journals = Journal::read(&m.paths.state_dir, rfs.replicated.len());
    let mut total = (0u64, 0u64);
    for (replicated, journal) in rfs.replicated.iter().zip(journals) {
        let dir = &replicated.dir;
        let changes = match journal {
            Ok(changes) => changes,
            Err(why) => {
                println!("  {}: journal unusable ({why}): everything", dir.display());
                continue;
            }
        };
        let (mut paths, mut bytes) = (0u64, 0u64);
        for path in changes.top_paths() {
            paths += 1;
            bytes += size(&dir.join(OsString::from_vec(path.to_bytes())));
        }
        let root = if changes.root {
            " and its own attributes"
        } else {
            ""
        };
        println!(
            "  {}: {paths} changed path(s){root}, {bytes} bytes",
            dir.display()
        );
        total = (total.0 + paths, total.1 + bytes);
    }
    println!("  total: {} path(s), {} bytes", total.0, total.1);
    Ok(0)
}

/// Bytes under `path` (a file's length, a directory's files' lengths; absent: 0).
fn size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
        .unwrap_or(0)
}
