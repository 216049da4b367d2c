//! `hakit rfsdiff -m M`: what a SECOND returning now would receive, from this node's change
//! journal (the daemon running or not).

use anyhow::{Context, Result, bail};
use hakit::config::{Roots, load_all};
use hakit::daemon::data::copy_rate;
use hakit::daemon::data::estimate::{Size, in_place_size, whole_size};
use hakit::daemon::data::journal::Journal;
use hakit::daemon::record_store;
use rfs_fuse::sync::tracker::Changes;
use rfs_fuse::sync::zones::ZoneSize;
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
            "{module}: a SECOND returning with data generation {base} receives what is below \
             (zones as recorded durably; a primary that has not restarted since sends 64 KiB \
             zones){}; any other is compared with this node's tree and receives what differs",
            if record.base_from_primary {
                ", and what its own change journal names (it was the primary there)"
            } else {
                ""
            }
        ),
        None => println!(
            "{module}: no SECOND can return incrementally now (this node is not a primary that \
             lost its SECOND): a join compares the SECOND's tree with this node's and copies \
             what differs"
        ),
    }
    let Some(zone) = ZoneSize::new(rfs.ruzone_blocksize) else {
        bail!("module {module}: ruzone_blocksize must be positive");
    };
    let journals = Journal::read(&m.paths.state_dir, rfs.replicated.len(), zone);
    let mut total = Estimate::default();
    for (replicated, journal) in rfs.replicated.iter().zip(journals) {
        let dir = &replicated.dir;
        let changes = match journal {
            Ok(changes) => changes,
            Err(why) => {
                println!("  {}: journal unusable ({why}): everything", dir.display());
                continue;
            }
        };
        let estimate = Estimate::of(dir, &changes);
        let root = if changes.root {
            " and its own attributes"
        } else {
            ""
        };
        println!("  {}: {}{root}", dir.display(), estimate.shown());
        total.add(&estimate);
    }
    println!("  total: {}", total.shown());
    let bytes = total.whole.bytes + total.in_place.bytes;
    match copy_rate::last(&m.paths.state_dir) {
        Some(rate) => println!(
            "  time: about {:.1} s at the last copy's rate ({:.0} MiB/s)",
            bytes as f64 / rate as f64,
            rate as f64 / (1 << 20) as f64
        ),
        None => println!("  time: unknown (no copy of 16 MiB or more measured on this node yet)"),
    }
    Ok(0)
}

/// What a copy of a folder's changes sends.
#[derive(Default)]
struct Estimate {
    /// Paths copied whole, and the bytes of their files.
    paths: u64,
    whole: Size,
    /// Files changed in place, and the bytes of their changed zones.
    in_place: Size,
}

impl Estimate {
    fn of(dir: &Path, changes: &Changes) -> Estimate {
        Estimate {
            paths: changes.top_paths().count() as u64,
            whole: whole_size(dir, changes),
            in_place: in_place_size(dir, changes),
        }
    }

    fn add(&mut self, other: &Estimate) {
        self.paths += other.paths;
        self.whole = self.whole + other.whole;
        self.in_place = self.in_place + other.in_place;
    }

    fn shown(&self) -> String {
        format!(
            "{} bytes: {} changed path(s), {} bytes whole; {} file(s) changed in place, {} bytes \
             of changed zones",
            self.whole.bytes + self.in_place.bytes,
            self.paths,
            self.whole.bytes,
            self.in_place.files,
            self.in_place.bytes
        )
    }
}
