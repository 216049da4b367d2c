//! [`ChangeTracker`]: remembers which paths the application changed, so that a copy made
//! while it keeps writing can be completed by copying those paths again.
//!
//! A path is recorded when its operation *settles* (after the local apply), never when it is
//! sent: a copy pass that reads a file after taking the set either sees the change or finds
//! the path in the next set. Data operations name files by stream handle; the tracker keeps
//! each handle's current path (from `Open`/`Create`, moved by renames), seeded with the files
//! already open when tracking starts.

use super::paths::{Changed, PathFollower};
use crate::overlay::replicate::{Pending, Replicator};
use crate::protocol::op::{Handle, Op, RelPath};
use std::collections::BTreeSet;
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

    /// The paths not beneath another one of the set (copying or saving those covers all),
    /// parents first.
    pub fn top_paths(&self) -> impl Iterator<Item = &RelPath> {
        let mut covered: Option<&RelPath> = None;
        self.paths.iter().filter(move |path| {
            if covered.is_some_and(|c| path.components().starts_with(c.components())) {
                return false;
            }
            covered = Some(path);
            true
        })
    }

    /// Adds everything of `other`.
    pub fn extend(&mut self, other: Changes) {
        self.paths.extend(other.paths);
        self.root |= other.root;
    }
}

#[derive(Debug, Default)]
struct State {
    paths: PathFollower,
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

impl Changes {
    pub fn add(&mut self, changed: Changed) {
        match changed {
            Changed::Path(path) => {
                self.paths.insert(path);
            }
            Changed::Root => self.root = true,
        }
    }
}

impl ChangeTracker {
    /// `open`: the files open for writing when tracking starts (handle and current path),
    /// as [`OpenHandles::snapshot`](crate::overlay::OpenHandles::snapshot) gives them.
    pub fn new(inner: Arc<dyn Replicator>, open: Vec<(Handle, Option<RelPath>)>) -> ChangeTracker {
        ChangeTracker {
            inner,
            state: Arc::new(Mutex::new(State {
                paths: PathFollower::new(open),
                changes: Changes::default(),
            })),
        }
    }

    /// The changes recorded since the last call, and a fresh start.
    pub fn take(&self) -> Changes {
        std::mem::take(&mut lock(&self.state).changes)
    }
}

impl Replicator for ChangeTracker {
    fn send(&self, op: Op) -> Pending {
        lock(&self.state).paths.follow(&op);
        let pending = self.inner.send(op.clone());
        let state = Arc::clone(&self.state);
        Pending::new(move |local| {
            let verdict = pending.settle(local);
            let mut state = lock(&state);
            for changed in state.paths.changed(&op) {
                state.changes.add(changed);
            }
            state.paths.closed(&op);
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
