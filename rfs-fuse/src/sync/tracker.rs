//! [`ChangeTracker`]: remembers which paths the application changed, so that a copy made
//! while it keeps writing can be completed by copying those paths again.
//!
//! A path is recorded when its operation *settles* (after the local apply), never when it is
//! sent: a copy pass that reads a file after taking the set either sees the change or finds
//! the path in the next set. Data operations name files by stream handle; the tracker keeps
//! each handle's current path (from `Open`/`Create`, moved by renames), seeded with the files
//! already open when tracking starts.

use crate::overlay::replicate::{Pending, Replicator};
use crate::protocol::op::{Handle, Op, RelPath};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What changed since the last [`ChangeTracker::take`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub paths: BTreeSet<RelPath>,
    /// The root's own metadata (owner, mode, xattrs) changed.
    pub root: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.root
    }

    pub fn len(&self) -> usize {
        self.paths.len() + usize::from(self.root)
    }

    /// Adds everything of `other`.
    pub fn extend(&mut self, other: Changes) {
        self.paths.extend(other.paths);
        self.root |= other.root;
    }
}

#[derive(Debug, Default)]
struct State {
    handles: HashMap<Handle, RelPath>,
    changes: Changes,
}

/// Forwards every operation to `inner` and records what it changes.
pub struct ChangeTracker {
    inner: Arc<dyn Replicator>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for ChangeTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeTracker")
            .field("changes", &lock(&self.state).changes.len())
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Replaces the `from` prefix of `path` by `to`, if `path` is `from` or beneath it.
fn moved(path: &RelPath, from: &RelPath, to: &RelPath) -> Option<RelPath> {
    let rest = path.components().strip_prefix(from.components())?;
    let mut bytes = to.to_bytes();
    for part in rest {
        bytes.push(b'/');
        bytes.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(part.as_os_str()));
    }
    RelPath::new(&bytes).ok()
}

impl ChangeTracker {
    /// `open`: the files open for writing when tracking starts (handle and current path),
    /// as [`OpenHandles::snapshot`](crate::overlay::OpenHandles::snapshot) gives them.
    pub fn new(inner: Arc<dyn Replicator>, open: Vec<(Handle, Option<RelPath>)>) -> ChangeTracker {
        let handles = open
            .into_iter()
            .filter_map(|(h, p)| p.map(|p| (h, p)))
            .collect();
        ChangeTracker {
            inner,
            state: Arc::new(Mutex::new(State {
                handles,
                changes: Changes::default(),
            })),
        }
    }

    /// The changes recorded since the last call, and a fresh start.
    pub fn take(&self) -> Changes {
        std::mem::take(&mut lock(&self.state).changes)
    }

    /// Keeps the handle table in step at send time (the overlay sends in apply order).
    fn follow_handles(state: &mut State, op: &Op) {
        match op {
            Op::Open { handle, path } | Op::Create { handle, path, .. } => {
                state.handles.insert(*handle, path.clone());
            }
            Op::Rename { from, to, flags } => {
                let exchange = flags & libc::RENAME_EXCHANGE != 0;
                for path in state.handles.values_mut() {
                    if let Some(new) = moved(path, from, to) {
                        *path = new;
                    } else if exchange && let Some(new) = moved(path, to, from) {
                        *path = new;
                    }
                }
            }
            _ => {}
        }
    }

    /// The paths an operation changes (looked up when it settles).
    fn changed(state: &mut State, op: &Op) {
        let changes = &mut state.changes;
        match op {
            Op::Create { path, .. }
            | Op::Mkdir { path, .. }
            | Op::Mknod { path, .. }
            | Op::Symlink { path, .. }
            | Op::Unlink { path }
            | Op::Rmdir { path }
            | Op::RemoveTree { path } => {
                changes.paths.insert(path.clone());
            }
            Op::Link { existing, new } => {
                changes.paths.insert(existing.clone());
                changes.paths.insert(new.clone());
            }
            Op::Rename { from, to, .. } => {
                changes.paths.insert(from.clone());
                changes.paths.insert(to.clone());
            }
            Op::SetAttr { path, .. } | Op::SetXattr { path, .. } | Op::RemoveXattr { path, .. } => {
                match path {
                    Some(path) => {
                        changes.paths.insert(path.clone());
                    }
                    None => changes.root = true,
                }
            }
            Op::Write { handle, .. } | Op::SetLen { handle, .. } | Op::Fallocate { handle, .. } => {
                if let Some(path) = state.handles.get(handle) {
                    changes.paths.insert(path.clone());
                }
            }
            Op::Close { handle } => {
                state.handles.remove(handle);
            }
            Op::EmptyRoot => changes.root = true,
            Op::Open { .. } | Op::Fsync { .. } | Op::FsyncDir { .. } => {}
        }
    }
}

impl Replicator for ChangeTracker {
    fn send(&self, op: Op) -> Pending {
        Self::follow_handles(&mut lock(&self.state), &op);
        let pending = self.inner.send(op.clone());
        let state = Arc::clone(&self.state);
        Pending::new(move |local| {
            let verdict = pending.settle(local);
            Self::changed(&mut lock(&state), &op);
            verdict
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::replicate::NoReplication;
    use bytes::Bytes;

    fn p(s: &str) -> RelPath {
        RelPath::new(s.as_bytes()).unwrap()
    }

    fn paths(c: &Changes) -> Vec<String> {
        c.paths
            .iter()
            .map(|p| String::from_utf8_lossy(&p.to_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn writes_are_recorded_under_the_files_current_path() {
        let t = ChangeTracker::new(Arc::new(NoReplication), vec![(1, Some(p("db/old")))]);
        let write = |handle| Op::Write {
            handle,
            offset: 0,
            data: Bytes::from_static(b"x"),
        };
        t.send(write(1)).wait().unwrap();
        assert_eq!(paths(&t.take()), ["db/old"]);
        t.send(Op::Rename {
            from: p("db"),
            to: p("base"),
            flags: 0,
        })
        .wait()
        .unwrap();
        t.send(write(1)).wait().unwrap();
        assert_eq!(paths(&t.take()), ["base", "base/old", "db"]);
        t.send(Op::Close { handle: 1 }).wait().unwrap();
        t.send(write(1)).wait().unwrap();
        assert!(t.take().is_empty(), "a closed handle names nothing");
    }

    #[test]
    fn a_change_counts_once_it_settles() {
        let t = ChangeTracker::new(Arc::new(NoReplication), vec![]);
        let pending = t.send(Op::Unlink { path: p("a") });
        assert!(t.take().is_empty(), "not applied yet");
        pending.wait().unwrap();
        assert_eq!(paths(&t.take()), ["a"]);
        t.send(Op::SetAttr {
            path: None,
            attr: Default::default(),
        })
        .wait()
        .unwrap();
        assert!(t.take().root);
    }

    #[test]
    fn exchange_swaps_the_handles_paths() {
        let t = ChangeTracker::new(
            Arc::new(NoReplication),
            vec![(1, Some(p("a/f"))), (2, Some(p("b/g"))), (3, None)],
        );
        t.send(Op::Rename {
            from: p("a"),
            to: p("b"),
            flags: libc::RENAME_EXCHANGE,
        })
        .wait()
        .unwrap();
        t.take();
        for handle in [1, 2, 3] {
            t.send(Op::SetLen { handle, len: 0 }).wait().unwrap();
        }
        assert_eq!(paths(&t.take()), ["a/g", "b/f"]);
    }
}
