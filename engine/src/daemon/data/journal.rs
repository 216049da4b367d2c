//! The primary's durable record of which paths changed since its SECOND last received a
//! complete copy (the idea of DRBD's activity log): what a returning SECOND needs instead of
//! everything.
//!
//! Every operation is seen before it is sent and applied ([`Observer`]); the first change of
//! a path is appended to the root's file and made durable (`fdatasync`) before the operation
//! goes on, later changes of that path cost a set lookup. A record torn by a crash belongs to
//! an operation that was never applied. The journal restarts empty when a copy completes
//! (under its freeze: everything before it is on the peer). If a record cannot be written, or
//! a file cannot be read back, the journal says so and the next join copies everything.

use rfs_fuse::overlay::Observer;
use rfs_fuse::protocol::op::RelPath;
use rfs_fuse::sync::paths::{Changed, PathFollower};
use rfs_fuse::sync::tracker::Changes;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const ROOT_RECORD: u8 = 0;
const PATH_RECORD: u8 = 1;

struct RootJournal {
    path: PathBuf,
    file: Option<File>,
    follower: PathFollower,
    changes: Changes,
    /// Why the journal cannot be trusted (a full copy is needed).
    unusable: Option<String>,
}

/// One journal per replicated folder, in `<state dir>/rfs-journal/root-<index>`.
pub struct Journal {
    roots: Vec<Arc<Mutex<RootJournal>>>,
}

fn lock(root: &Mutex<RootJournal>) -> MutexGuard<'_, RootJournal> {
    root.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    /// Loads (or starts) the journals of `roots` folders. Never fails: a journal that cannot
    /// be read or written is marked unusable, and said so by [`Journal::changes`].
    pub fn open(state_dir: &Path, roots: usize) -> Journal {
        let dir = state_dir.join("rfs-journal");
        let roots = (0..roots)
            .map(|index| {
                let path = dir.join(format!("root-{index}"));
                let mut journal = RootJournal {
                    path: path.clone(),
                    file: None,
                    follower: PathFollower::default(),
                    changes: Changes::default(),
                    unusable: None,
                };
                let opened = std::fs::create_dir_all(&dir)
                    .and_then(|()| load(&path, &mut journal.changes))
                    .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
                match opened {
                    Ok(file) => journal.file = Some(file),
                    Err(e) => journal.unusable = Some(format!("{}: {e}", path.display())),
                }
                Arc::new(Mutex::new(journal))
            })
            .collect();
        Journal { roots }
    }

    /// What the journals of `roots` folders hold, without opening them for writing (for
    /// `hakit rfsdiff`, the daemon running or not).
    pub fn read(state_dir: &Path, roots: usize) -> Vec<Result<Changes, String>> {
        let dir = state_dir.join("rfs-journal");
        (0..roots)
            .map(|index| {
                let path = dir.join(format!("root-{index}"));
                let mut changes = Changes::default();
                load(&path, &mut changes)
                    .map(|()| changes)
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect()
    }

    /// What sees root `index`'s operations (see [`SwitchReplicator::observe`]).
    ///
    /// [`SwitchReplicator::observe`]: rfs_fuse::overlay::SwitchReplicator::observe
    pub fn observer(&self, index: usize) -> Option<Observer> {
        let root = Arc::clone(self.roots.get(index)?);
        Some(Arc::new(move |op| {
            let mut journal = lock(&root);
            journal.follower.follow(op);
            for changed in journal.follower.changed(op) {
                journal.record(changed);
            }
            journal.follower.closed(op);
        }))
    }

    /// What changed in root `index` since the last [`reset`](Self::reset); `Err(why)` when
    /// the journal cannot be trusted.
    pub fn changes(&self, index: usize) -> Result<Changes, String> {
        let root = self
            .roots
            .get(index)
            .ok_or_else(|| format!("no journal for folder {index}"))?;
        let journal = lock(root);
        match &journal.unusable {
            Some(why) => Err(why.clone()),
            None => Ok(journal.changes.clone()),
        }
    }

    /// Everything is on the peer: start afresh. Call with writes frozen.
    pub fn reset(&self) {
        for root in &self.roots {
            let mut journal = lock(root);
            let cleared = journal
                .file
                .as_ref()
                .map(|f| f.set_len(0).and_then(|()| f.sync_data()));
            journal.changes = Changes::default();
            journal.unusable = match cleared {
                Some(Ok(())) => None,
                Some(Err(e)) => Some(format!("{}: {e}", journal.path.display())),
                None => journal.unusable.take(),
            };
        }
    }
}

impl RootJournal {
    fn record(&mut self, changed: Changed) {
        let (kind, bytes) = match &changed {
            Changed::Root if self.changes.root => return,
            Changed::Path(p) if self.changes.paths.contains(p) => return,
            Changed::Root => (ROOT_RECORD, Vec::new()),
            Changed::Path(p) => (PATH_RECORD, p.to_bytes()),
        };
        self.changes.add(changed);
        if self.unusable.is_some() {
            return;
        }
        let mut record = vec![kind];
        record.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        record.extend_from_slice(&bytes);
        let written = match self.file.as_mut() {
            Some(file) => file.write_all(&record).and_then(|()| file.sync_data()),
            None => Err(io::Error::other("not open")),
        };
        if let Err(e) = written {
            self.unusable = Some(format!("{}: {e}", self.path.display()));
        }
    }
}

/// Reads the records of `path` (absent: none). A torn last record is ignored (its operation
/// never ran); anything else malformed is an error.
fn load(path: &Path, changes: &mut Changes) -> io::Result<()> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let bad = |what: &str| io::Error::other(format!("malformed journal: {what}"));
    let mut rest = &bytes[..];
    while let Some((&kind, after)) = rest.split_first() {
        let Some((len, after)) = after.split_first_chunk::<4>() else {
            break; // torn
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((body, after)) = after.split_at_checked(len) else {
            break; // torn
        };
        match kind {
            ROOT_RECORD => changes.root = true,
            PATH_RECORD => {
                let path = RelPath::new(body).map_err(|e| bad(&e.to_string()))?;
                changes.paths.insert(path);
            }
            other => return Err(bad(&format!("record kind {other}"))),
        }
        rest = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rfs_fuse::protocol::op::Op;

    fn p(s: &str) -> RelPath {
        RelPath::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn changes_survive_a_restart_and_a_torn_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = Journal::open(dir.path(), 1);
            let observe = journal.observer(0).unwrap();
            observe(&Op::Create {
                handle: 1,
                path: p("db/file"),
                mode: 0o644,
                owner: rfs_fuse::protocol::op::Owner { uid: 0, gid: 0 },
                exclusive: false,
            });
            observe(&Op::Write {
                handle: 1,
                offset: 0,
                data: Bytes::from_static(b"x"),
            });
            observe(&Op::Unlink { path: p("old") });
            observe(&Op::SetAttr {
                path: None,
                attr: Default::default(),
            });
        }
        let file = dir.path().join("rfs-journal/root-0");
        let len = std::fs::metadata(&file).unwrap().len();
        // A crash in the middle of appending one more record.
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[PATH_RECORD, 9, 0]).unwrap();
        drop(f);
        assert!(std::fs::metadata(&file).unwrap().len() > len);
        let journal = Journal::open(dir.path(), 1);
        let changes = journal.changes(0).unwrap();
        assert!(changes.root);
        assert_eq!(
            changes.paths.into_iter().collect::<Vec<_>>(),
            vec![p("db/file"), p("old")],
            "each path once; the write resolved to its file"
        );
        journal.reset();
        assert!(journal.changes(0).unwrap().is_empty());
        assert!(Journal::open(dir.path(), 1).changes(0).unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_journal_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rfs-journal")).unwrap();
        std::fs::write(dir.path().join("rfs-journal/root-0"), [7u8, 0, 0, 0, 0]).unwrap();
        let journal = Journal::open(dir.path(), 1);
        let why = journal.changes(0).unwrap_err();
        assert!(why.contains("malformed journal"), "{why}");
    }
}
