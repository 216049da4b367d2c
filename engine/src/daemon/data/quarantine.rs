//! Before a node whose data diverged from its peer's (split brain, `primforce`) receives the
//! peer's copy: every path its change journal names is copied, as it is, into
//! `<state dir>/quarantine/<time>/<folder index>/`, outside the replicated folders, and listed
//! in the module log. No write is discarded silently: what the winner's copy replaces can be
//! looked at, and merged back by the administrator.

use super::DataConfig;
use super::journal::Journal;
use crate::modlog::{ModuleLog, Source};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The paths saved, per folder, and where; `Err` (nothing will be overwritten) when the
/// journal cannot tell what changed or a copy fails.
pub(super) fn quarantine(cfg: &DataConfig, log: &ModuleLog) -> Result<String, String> {
    let journal = Journal::open(&cfg.state_dir, cfg.dirs.len(), cfg.zone_size);
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "-");
    let base = cfg.state_dir.join("quarantine").join(stamp);
    let mut saved = 0;
    for (index, dir) in cfg.dirs.iter().enumerate() {
        let changes = journal.changes(index).map_err(|why| {
            format!(
                "cannot tell which files of {} changed while this node served alone ({why}): \
                 copy what you need to keep out of it, then start the module again",
                dir.display()
            )
        })?;
        for path in changes
            .top_paths()
            .chain(changes.in_place().map(|(p, _)| p))
        {
            let rel = PathBuf::from(OsString::from_vec(path.to_bytes()));
            let source = dir.join(&rel);
            if std::fs::symlink_metadata(&source).is_err() {
                continue; // removed during the split: nothing to keep
            }
            let target = base.join(index.to_string()).join(&rel);
            copy_as_is(&source, &target)?;
            saved += 1;
            log.line(
                Source::Engine,
                &format!(
                    "quarantine: {} saved as {}",
                    source.display(),
                    target.display()
                ),
            );
        }
    }
    if saved == 0 {
        return Ok("no changed file to save".to_string());
    }
    journal.reset();
    Ok(format!(
        "{saved} changed path(s) saved in {}",
        base.display()
    ))
}

/// `cp -a`: content, modes, owners, times, xattrs, links as they are.
fn copy_as_is(source: &Path, target: &Path) -> Result<(), String> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(source)
        .arg(target)
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "copying {} to {}: cp {status}",
            source.display(),
            target.display()
        ))
    }
}
