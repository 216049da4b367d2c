//! The persisted `NodeRecord` of a module: `<state_dir>/record.json`, replaced atomically
//! and durably (write, fsync, rename, fsync the directory) so a crash leaves either the old
//! or the new record, never a torn one.

use crate::mirror::plan::NodeRecord;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: unreadable record ({source}); if this node's data is known good, move the file away and start with `prim` or `primforce`"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join("record.json")
}

/// The record, or the default (no history) when the module never ran here.
pub fn load(state_dir: &Path) -> Result<NodeRecord, RecordError> {
    let path = record_path(state_dir);
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NodeRecord::default()),
        Err(source) => Err(RecordError::Io { path, source }),
    }
}

pub fn save(state_dir: &Path, record: &NodeRecord) -> Result<(), RecordError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Io { path, source }
    };
    fs::create_dir_all(state_dir).map_err(io(state_dir))?;
    let path = record_path(state_dir);
    let tmp = state_dir.join("record.json.tmp");
    let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| RecordError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    bytes.push(b'\n');
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(state_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::data::{Generation, LastRole};

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), NodeRecord::default());
        let mut r = NodeRecord {
            started: true,
            ..NodeRecord::default()
        };
        r.data.generation = Generation {
            counter: 3,
            tag: 77,
        };
        r.data.last_role = LastRole::Alone;
        save(dir.path(), &r).unwrap();
        assert_eq!(load(dir.path()).unwrap(), r);
    }

    #[test]
    fn corrupt_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(record_path(dir.path()), b"{ not json").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("record.json") && e.contains("primforce"), "{e}");
    }
}
