//! The inode table: what each FUSE inode number stands for.
//!
//! Every inode the kernel knows is held by an `O_PATH|O_NOFOLLOW` descriptor on the backing
//! object plus its current path relative to the replicated root. The descriptor is what local
//! operations use (it survives renames and unlinks: an open-but-unlinked file keeps working);
//! the path is what replicated operations name. Paths are kept current on rename, including
//! every descendant of a renamed directory, and dropped on unlink/rmdir.
//!
//! Inode numbers are the backing `st_ino` (so `stat` through the mount shows the real inode
//! numbers: in place, nothing moved), except for the root (always 1 in FUSE) and objects on
//! another device below the root, which get synthetic numbers. Holding the descriptor pins the
//! backing inode, so its number cannot be reused while the kernel may still name it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::error::FsError;
use super::sys;
use crate::protocol::op::{PathError, RelPath};

/// The FUSE root inode.
pub(crate) const ROOT: u64 = 1;
/// Synthetic numbers for objects whose `st_ino` cannot be used directly (other devices).
const SYNTHETIC_BASE: u64 = 1 << 63;

/// Where an object currently is, relative to the replicated root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Root,
    At(RelPath),
    /// Removed from the namespace (unlinked, or replaced by a rename) but still referenced.
    Unlinked,
}

impl Location {
    /// The path of `name` inside this directory.
    pub(crate) fn child(&self, name: &OsStr) -> Result<RelPath, FsError> {
        check_name(name)?;
        let mut bytes = match self {
            Location::Root => Vec::new(),
            Location::At(path) => {
                let mut b = path.to_bytes();
                b.push(b'/');
                b
            }
            // A directory removed from the namespace cannot hold new entries: what the
            // backing file system would answer too.
            Location::Unlinked => {
                return Err(FsError::Sys {
                    call: "lookup in removed directory",
                    errno: libc::ENOENT,
                });
            }
        };
        bytes.extend_from_slice(name.as_bytes());
        RelPath::new(&bytes).map_err(path_error)
    }

    /// How ops that accept the root name this object: `Some(None)` for the root,
    /// `Some(Some(path))` for a path, `None` for an unlinked object: it needs no
    /// replication, the peer only reaches it through stream handles and it vanishes on close.
    pub(crate) fn target(&self) -> Option<Option<RelPath>> {
        match self {
            Location::Root => Some(None),
            Location::At(path) => Some(Some(path.clone())),
            Location::Unlinked => None,
        }
    }

    /// `None` for the root and for unlinked objects.
    pub(crate) fn rel(&self) -> Option<&RelPath> {
        match self {
            Location::At(path) => Some(path),
            _ => None,
        }
    }
}

/// Refuse names the daemon must never resolve: `..` would climb from a backing descriptor
/// onto the mount itself.
pub(crate) fn check_name(name: &OsStr) -> Result<(), FsError> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(FsError::InvalidName);
    }
    Ok(())
}

fn path_error(e: PathError) -> FsError {
    match e {
        PathError::TooLong(_) => FsError::PathTooLong,
        _ => FsError::InvalidName,
    }
}

/// What an inode stands for, as handed to a request.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub fd: Arc<OwnedFd>,
    pub location: Location,
}

#[derive(Debug)]
struct Entry {
    fd: Arc<OwnedFd>,
    key: (u64, u64),
    location: Location,
    /// Kernel references (lookups not yet forgotten).
    lookups: u64,
}

#[derive(Debug)]
struct Inner {
    nodes: HashMap<u64, Entry>,
    keys: HashMap<(u64, u64), u64>,
    next_synthetic: u64,
}

#[derive(Debug)]
pub(crate) struct InodeTable {
    root_dev: u64,
    root_fd: Arc<OwnedFd>,
    inner: Mutex<Inner>,
}

fn key_of(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl InodeTable {
    /// A table whose root is the directory held by `root` (opened before the mount).
    pub(crate) fn new(root: OwnedFd) -> Result<InodeTable, FsError> {
        let st = sys::stat_fd(std::os::fd::AsFd::as_fd(&root))?;
        let root = Arc::new(root);
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Entry {
                fd: root.clone(),
                key: key_of(&st),
                location: Location::Root,
                lookups: 1,
            },
        );
        let mut keys = HashMap::new();
        keys.insert(key_of(&st), ROOT);
        Ok(InodeTable {
            root_dev: st.st_dev,
            root_fd: root,
            inner: Mutex::new(Inner {
                nodes,
                keys,
                next_synthetic: SYNTHETIC_BASE,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn root_fd(&self) -> &Arc<OwnedFd> {
        &self.root_fd
    }

    pub(crate) fn get(&self, ino: u64) -> Result<Node, FsError> {
        let inner = self.lock();
        let entry = inner.nodes.get(&ino).ok_or(FsError::UnknownInode(ino))?;
        Ok(Node {
            fd: entry.fd.clone(),
            location: entry.location.clone(),
        })
    }

    /// Register a looked-up (or created) object: one more kernel reference. `fd` is an
    /// `O_PATH` descriptor on it; if the object is already known the existing descriptor is
    /// kept and its path refreshed (any name just resolved is a valid current path; with hard
    /// links, the last one used wins).
    pub(crate) fn remember(&self, fd: OwnedFd, st: &libc::stat, location: Location) -> u64 {
        let key = key_of(st);
        let mut inner = self.lock();
        if let Some(&ino) = inner.keys.get(&key)
            && let Some(entry) = inner.nodes.get_mut(&ino)
        {
            entry.lookups += 1;
            if ino != ROOT && location != Location::Unlinked {
                entry.location = location;
            }
            return ino;
        }
        let ino = if st.st_dev == self.root_dev
            && st.st_ino != ROOT
            && st.st_ino != 0
            && st.st_ino < SYNTHETIC_BASE
        {
            st.st_ino
        } else {
            let n = inner.next_synthetic;
            inner.next_synthetic += 1;
            n
        };
        inner.keys.insert(key, ino);
        inner.nodes.insert(
            ino,
            Entry {
                fd: Arc::new(fd),
                key,
                location,
                lookups: 1,
            },
        );
        ino
    }

    /// The kernel dropped `n` references; the entry (and its descriptor) goes with the last.
    pub(crate) fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let mut inner = self.lock();
        let gone = match inner.nodes.get_mut(&ino) {
            Some(entry) => {
                entry.lookups = entry.lookups.saturating_sub(n);
                (entry.lookups == 0).then_some(entry.key)
            }
            None => None,
        };
        if let Some(key) = gone {
            inner.nodes.remove(&ino);
            inner.keys.remove(&key);
        }
    }

    /// `path` (and anything below it) was removed from the namespace.
    pub(crate) fn unlinked(&self, path: &RelPath) {
        let mut inner = self.lock();
        for entry in inner.nodes.values_mut() {
            if let Location::At(p) = &entry.location
                && strip_prefix(p, path).is_some()
            {
                entry.location = Location::Unlinked;
            }
        }
    }

    /// `from` was renamed to `to` (swapped with it when `exchange`): move every path at or
    /// below `from`; whatever was at `to` is gone (or moved to `from` on exchange).
    pub(crate) fn renamed(&self, from: &RelPath, to: &RelPath, exchange: bool) {
        let mut inner = self.lock();
        for entry in inner.nodes.values_mut() {
            let Location::At(p) = &entry.location else {
                continue;
            };
            entry.location = if let Some(rest) = strip_prefix(p, from) {
                rebase(to, rest)
            } else if let Some(rest) = strip_prefix(p, to) {
                if exchange {
                    rebase(from, rest)
                } else {
                    Location::Unlinked
                }
            } else {
                continue;
            };
        }
    }

    /// Number of inodes currently known (root included), for tests and diagnostics.
    pub(crate) fn len(&self) -> usize {
        self.lock().nodes.len()
    }
}

/// The components of `path` after `prefix`, if `prefix` is `path` or one of its ancestors.
fn strip_prefix<'a>(path: &'a RelPath, prefix: &RelPath) -> Option<&'a [std::ffi::OsString]> {
    let (p, pre) = (path.components(), prefix.components());
    (p.len() >= pre.len() && p[..pre.len()] == *pre).then(|| &p[pre.len()..])
}

fn rebase(base: &RelPath, rest: &[std::ffi::OsString]) -> Location {
    let mut bytes = base.to_bytes();
    for c in rest {
        bytes.push(b'/');
        bytes.extend_from_slice(c.as_bytes());
    }
    // Only a path grown past the stream's limit can fail here; such an object can no longer
    // be named in the stream, so treat it as out of the namespace rather than guess.
    RelPath::new(&bytes).map_or(Location::Unlinked, Location::At)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn rel(s: &str) -> RelPath {
        RelPath::new(s.as_bytes()).unwrap()
    }

    fn table_with(dir: &std::path::Path, names: &[&str]) -> (InodeTable, Vec<u64>) {
        let root = OwnedFd::from(std::fs::File::open(dir).unwrap());
        let table = InodeTable::new(root).unwrap();
        let mut inos = Vec::new();
        for name in names {
            let c = std::ffi::CString::new(*name).unwrap();
            let fd = sys::openat(
                table.root_fd().as_fd(),
                &c,
                libc::O_PATH | libc::O_NOFOLLOW,
                0,
            )
            .unwrap();
            let st = sys::stat_fd(fd.as_fd()).unwrap();
            inos.push(table.remember(fd, &st, Location::At(rel(name))));
        }
        (table, inos)
    }

    #[test]
    fn rename_moves_descendants_and_unlink_detaches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("d/sub/f"), b"x").unwrap();
        std::fs::write(dir.path().join("g"), b"y").unwrap();
        let (table, inos) = table_with(dir.path(), &["d", "d/sub", "d/sub/f", "g"]);

        table.renamed(&rel("d"), &rel("e"), false);
        assert_eq!(
            table.get(inos[2]).unwrap().location,
            Location::At(rel("e/sub/f"))
        );
        assert_eq!(table.get(inos[0]).unwrap().location, Location::At(rel("e")));

        table.renamed(&rel("e/sub/f"), &rel("g"), true);
        assert_eq!(table.get(inos[2]).unwrap().location, Location::At(rel("g")));
        assert_eq!(
            table.get(inos[3]).unwrap().location,
            Location::At(rel("e/sub/f"))
        );

        table.renamed(&rel("g"), &rel("e/sub/f"), false);
        assert_eq!(table.get(inos[3]).unwrap().location, Location::Unlinked);

        table.unlinked(&rel("e/sub/f"));
        assert_eq!(table.get(inos[2]).unwrap().location, Location::Unlinked);
        // The prefix test is per component: "e" must not match "ee".
        assert!(strip_prefix(&rel("ee/x"), &rel("e")).is_none());
    }

    #[test]
    fn lookups_are_counted_and_forget_releases() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let (table, inos) = table_with(dir.path(), &["f", "f"]);
        assert_eq!(inos[0], inos[1]);
        assert_eq!(table.len(), 2);
        table.forget(inos[0], 1);
        assert!(table.get(inos[0]).is_ok());
        table.forget(inos[0], 1);
        assert_eq!(
            table.get(inos[0]).unwrap_err(),
            FsError::UnknownInode(inos[0])
        );
        table.forget(ROOT, 100);
        assert!(table.get(ROOT).is_ok());
    }

    #[test]
    fn names_that_would_escape_are_refused() {
        for bad in ["", ".", "..", "a/b"] {
            assert_eq!(
                Location::Root.child(OsStr::new(bad)),
                Err(FsError::InvalidName),
                "{bad:?}"
            );
        }
        assert_eq!(
            Location::At(rel("a")).child(OsStr::new("b")).unwrap(),
            rel("a/b")
        );
        assert!(Location::Unlinked.child(OsStr::new("b")).is_err());
    }
}
