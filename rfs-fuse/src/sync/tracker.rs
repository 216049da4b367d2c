//! [`ChangeTracker`]: remembers which paths the application changed, so that a copy made
//! while it keeps writing can be completed by copying those paths again.
//!
//! A path is recorded when its operation *settles* (after the local apply), never when it is
//! sent: a copy pass that reads a file after taking the set either sees the change or finds
//! the path in the next set. Data operations name files by stream handle; the tracker keeps
//! each handle's current path (from `Open`/`Create`, moved by renames), seeded with the files
//! already open when tracking starts.

use super::paths::{Changed, PathFollower};
use super::zones::{FileChanges, ZoneSize};
use crate::overlay::replicate::{Pending, Replicator};
use crate::protocol::op::{Handle, Op, RelPath};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What changed since the last [`ChangeTracker::take`] (or since a journal's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Paths changed whole (each covers what is beneath it).
    pub paths: BTreeSet<RelPath>,
    /// Files changed in place, not covered by a whole path when recorded.
    pub files: BTreeMap<RelPath, FileChanges>,
    /// The root's own metadata (owner, mode, xattrs) changed.
    pub root: bool,
    /// The zones `files` counts in.
    pub zone: ZoneSize,
}

impl Changes {
    pub fn new(zone: ZoneSize) -> Changes {
        Changes {
            paths: BTreeSet::new(),
            files: BTreeMap::new(),
            root: false,
            zone,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.files.is_empty() && !self.root
    }

    pub fn len(&self) -> usize {
        self.paths.len() + self.files.len() + usize::from(self.root)
    }

    /// The whole paths not beneath another one of the set (copying or saving those covers
    /// all), parents first.
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

    /// The files changed in place that no whole path covers.
    pub fn in_place(&self) -> impl Iterator<Item = (&RelPath, &FileChanges)> {
        self.files.iter().filter(|(path, _)| !self.covered(path))
    }

    /// Adds everything of `other`.
    pub fn extend(&mut self, other: Changes) {
        for path in other.paths {
            self.add(Changed::Path(path));
        }
        self.root |= other.root;
        for (path, file) in other.files {
            self.in_file(path, |ours, zone| {
                ours.merge(zone, &file, other.zone);
                true
            });
        }
    }

    /// Records `changed`; whether it adds anything (a journal persists only what does).
    pub fn add(&mut self, changed: Changed) -> bool {
        match changed {
            Changed::Path(path) => self.whole(path),
            Changed::Data { path, start, end } => {
                self.in_file(path, |file, zone| file.write(zone, start, end))
            }
            Changed::Cut { path, len } => self.in_file(path, |file, _| file.cut(len)),
            Changed::Metadata(path) => self.in_file(path, |_, _| false),
            Changed::Root => !std::mem::replace(&mut self.root, true),
        }
    }

    /// `path` changed whole: what was recorded in place beneath it is covered.
    fn whole(&mut self, path: RelPath) -> bool {
        if self.paths.contains(&path) {
            return false;
        }
        let beneath: Vec<RelPath> = self
            .files
            .range(&path..)
            .map(|(p, _)| p)
            .take_while(|p| p.components().starts_with(path.components()))
            .cloned()
            .collect();
        for p in beneath {
            self.files.remove(&p);
        }
        self.paths.insert(path)
    }

    /// Applies `change` to the in-place record of `path`, created (metadata changed) unless
    /// a whole path covers it; whether anything was added.
    fn in_file(
        &mut self,
        path: RelPath,
        change: impl FnOnce(&mut FileChanges, ZoneSize) -> bool,
    ) -> bool {
        if let Some(file) = self.files.get_mut(&path) {
            return change(file, self.zone);
        }
        if self.covered(&path) {
            return false;
        }
        let mut file = FileChanges::default();
        change(&mut file, self.zone);
        self.files.insert(path, file);
        true
    }

    /// Whether `path` or one of its parents changed whole.
    fn covered(&self, path: &RelPath) -> bool {
        let parts = path.components();
        (1..=parts.len()).any(|n| {
            let prefix: Vec<&[u8]> = parts[..n].iter().map(|c| c.as_bytes()).collect();
            RelPath::new(&prefix.join(&b'/')).is_ok_and(|p| self.paths.contains(&p))
        })
    }
}

#[derive(Debug)]
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

impl ChangeTracker {
    /// `open`: the files open for writing when tracking starts (handle and current path),
    /// as [`OpenHandles::snapshot`](crate::overlay::OpenHandles::snapshot) gives them.
    pub fn new(
        inner: Arc<dyn Replicator>,
        open: Vec<(Handle, Option<RelPath>)>,
        zone: ZoneSize,
    ) -> ChangeTracker {
        ChangeTracker {
            inner,
            state: Arc::new(Mutex::new(State {
                paths: PathFollower::new(open),
                changes: Changes::new(zone),
            })),
        }
    }

    /// The changes recorded since the last call, and a fresh start.
    pub fn take(&self) -> Changes {
        let mut state = lock(&self.state);
        let zone = state.changes.zone;
        std::mem::replace(&mut state.changes, Changes::new(zone))
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
    use crate::protocol::op::SetAttr;
    use bytes::Bytes;

    fn p(s: &str) -> RelPath {
        RelPath::new(s.as_bytes()).unwrap()
    }

    const ZONE: u64 = 4096;

    fn tracker(open: Vec<(Handle, Option<RelPath>)>) -> ChangeTracker {
        ChangeTracker::new(Arc::new(NoReplication), open, ZoneSize::new(ZONE).unwrap())
    }

    fn shown(p: &RelPath) -> String {
        String::from_utf8_lossy(&p.to_bytes()).into_owned()
    }

    /// Every path named: whole ones, then those changed in place.
    fn paths(c: &Changes) -> Vec<String> {
        let in_place = c.in_place().map(|(p, _)| p);
        c.paths.iter().chain(in_place).map(shown).collect()
    }

    /// The byte ranges an in-place copy of `path` would send, the file `len` bytes long.
    fn ranges(c: &Changes, path: &str, len: u64) -> Vec<(u64, u64)> {
        c.in_place()
            .find(|(p, _)| **p == self::p(path))
            .map(|(_, f)| f.ranges(c.zone, len))
            .unwrap_or_else(|| panic!("{path} not changed in place: {c:?}"))
    }

    fn write(handle: Handle, offset: u64, len: usize) -> Op {
        Op::Write {
            handle,
            offset,
            data: Bytes::from(vec![1; len]),
        }
    }

    fn send(t: &ChangeTracker, op: Op) {
        t.send(op).wait().unwrap();
    }

    #[test]
    fn writes_are_recorded_under_the_files_current_path() {
        let t = tracker(vec![(1, Some(p("db/old")))]);
        let write = |handle| write(handle, 0, 1);
        t.send(write(1)).wait().unwrap();
        let changes = t.take();
        assert!(changes.paths.is_empty(), "in place, not whole");
        assert_eq!(paths(&changes), ["db/old"]);
        t.send(Op::Rename {
            from: p("db"),
            to: p("base"),
            flags: 0,
        })
        .wait()
        .unwrap();
        t.send(write(1)).wait().unwrap();
        assert_eq!(
            paths(&t.take()),
            ["base", "db"],
            "the write in base/old is covered by the renamed directory"
        );
        t.send(Op::Close { handle: 1 }).wait().unwrap();
        t.send(write(1)).wait().unwrap();
        assert!(t.take().is_empty(), "a closed handle names nothing");
    }

    #[test]
    fn a_change_counts_once_it_settles() {
        let t = tracker(vec![]);
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
        let t = tracker(vec![(1, Some(p("a/f"))), (2, Some(p("b/g"))), (3, None)]);
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

    #[test]
    fn writes_name_the_zones_they_touch_and_cuts_the_tail() {
        let t = tracker(vec![(1, Some(p("big")))]);
        send(&t, write(1, 10, 100));
        send(&t, write(1, 3 * ZONE - 1, 2));
        let changes = t.take();
        assert_eq!(
            ranges(&changes, "big", 100 * ZONE),
            [(0, ZONE), (2 * ZONE, 4 * ZONE)]
        );
        assert_eq!(
            ranges(&changes, "big", 3 * ZONE + 5),
            [(0, ZONE), (2 * ZONE, 3 * ZONE + 5)],
            "cut at the file's length now"
        );
        // Shrunk, then grown again: the old length is unknown, all from the cut travels.
        send(
            &t,
            Op::SetLen {
                handle: 1,
                len: 5 * ZONE + 1,
            },
        );
        send(
            &t,
            Op::SetLen {
                handle: 1,
                len: 9 * ZONE,
            },
        );
        send(&t, write(1, 6 * ZONE, 1));
        assert_eq!(
            ranges(&t.take(), "big", 9 * ZONE),
            [(5 * ZONE + 1, 9 * ZONE)]
        );
        send(
            &t,
            Op::SetAttr {
                path: Some(p("big")),
                attr: SetAttr {
                    size: Some(7),
                    ..SetAttr::default()
                },
            },
        );
        assert_eq!(ranges(&t.take(), "big", 10), [(7, 10)], "truncate(path)");
    }

    #[test]
    fn attribute_changes_name_metadata_only() {
        let t = tracker(vec![(1, Some(p("f")))]);
        send(
            &t,
            Op::SetAttr {
                path: Some(p("d")),
                attr: SetAttr {
                    mode: Some(0o700),
                    ..SetAttr::default()
                },
            },
        );
        send(
            &t,
            Op::SetXattr {
                path: Some(p("f")),
                name: "user.k".into(),
                value: Bytes::from_static(b"v"),
                flags: 0,
            },
        );
        send(
            &t,
            Op::Fallocate {
                handle: 1,
                mode: 0,
                offset: 0,
                len: 1 << 30,
            },
        );
        let changes = t.take();
        assert!(changes.paths.is_empty());
        assert_eq!(paths(&changes), ["d", "f"]);
        assert!(changes.in_place().all(|(_, f)| f.metadata_only()));
        assert!(
            ranges(&changes, "f", 1 << 30).is_empty(),
            "allocation changes no byte"
        );
        // A removed xattr cannot be copied as metadata: the path travels whole.
        send(
            &t,
            Op::RemoveXattr {
                path: Some(p("f")),
                name: "user.k".into(),
            },
        );
        assert_eq!(t.take().paths.len(), 1);
    }

    #[test]
    fn a_whole_path_covers_the_zones_beneath_it() {
        let t = tracker(vec![(1, Some(p("d/f"))), (2, Some(p("g")))]);
        send(&t, write(1, 0, 1));
        send(&t, write(2, 0, 1));
        send(
            &t,
            Op::Rename {
                from: p("d"),
                to: p("e"),
                flags: 0,
            },
        );
        send(&t, write(1, 5 * ZONE, 1));
        send(&t, Op::Unlink { path: p("g") });
        send(&t, write(2, 0, 1));
        let changes = t.take();
        assert_eq!(changes.files.len(), 0, "every in-place change is covered");
        assert_eq!(
            changes.top_paths().map(shown).collect::<Vec<_>>(),
            ["d", "e", "g"]
        );
        // A new file's writes are covered by its creation.
        send(
            &t,
            Op::Create {
                handle: 3,
                path: p("new"),
                mode: 0o644,
                owner: crate::protocol::op::Owner { uid: 0, gid: 0 },
                exclusive: true,
            },
        );
        send(&t, write(3, 0, 1));
        assert_eq!(paths(&t.take()), ["new"]);
    }

    #[test]
    fn extending_merges_zones_and_lets_whole_paths_cover_them() {
        let t = tracker(vec![(1, Some(p("a/f"))), (2, Some(p("b")))]);
        send(&t, write(1, 0, 1));
        send(&t, write(2, 0, 1));
        let mut first = t.take();
        send(&t, write(1, 2 * ZONE, 1));
        send(&t, Op::Unlink { path: p("a") });
        send(&t, write(2, 2 * ZONE, 1));
        first.extend(t.take());
        assert_eq!(paths(&first), ["a", "b"]);
        assert_eq!(
            ranges(&first, "b", 4 * ZONE),
            [(0, ZONE), (2 * ZONE, 3 * ZONE)]
        );
    }
}
