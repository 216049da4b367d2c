//! Open files and directories.
//!
//! Each FUSE open gets its own number. For a file whose changes are replicated (opened for
//! writing, or created, while it has a path) that number is also its stream [`Handle`]: the
//! peer opened the same file under it (`Open`/`Create`) and keeps it until `Close`, so writes
//! through it need no path and survive renames and unlinks on both sides.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fuser::FileType;

use super::error::FsError;
use crate::protocol::op::Handle;

#[derive(Debug)]
pub(crate) struct OpenFile {
    /// A real descriptor on the backing file (never `O_APPEND`: the kernel gives offsets).
    pub fd: OwnedFd,
    pub ino: u64,
    /// The stream handle, when this open's changes are replicated.
    pub stream: Option<Handle>,
    /// Opened `O_SYNC` (`Some(false)`) or `O_DSYNC` (`Some(true)`): the stream's `Open`
    /// carries no flags, so each write is followed by a replicated fsync.
    pub sync: Option<bool>,
}

#[derive(Debug, Clone)]
pub(crate) struct DirEntry {
    pub name: OsString,
    /// `d_ino` as the backing file system reports it.
    pub ino: u64,
    pub kind: FileType,
}

#[derive(Debug)]
pub(crate) struct OpenDir {
    pub fd: OwnedFd,
    pub ino: u64,
    /// Snapshot taken at offset 0; offsets are indexes + 1 into it.
    pub entries: Mutex<Vec<DirEntry>>,
}

#[derive(Debug)]
pub(crate) struct Handles {
    next: AtomicU64,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<OpenDir>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handles {
    pub(crate) fn new() -> Handles {
        Handles {
            next: AtomicU64::new(1),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh number, never reused during the mount (stream handles must not be confused).
    pub(crate) fn allocate(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert_file(&self, id: u64, file: OpenFile) {
        lock(&self.files).insert(id, Arc::new(file));
    }

    pub(crate) fn file(&self, id: u64) -> Result<Arc<OpenFile>, FsError> {
        lock(&self.files)
            .get(&id)
            .cloned()
            .ok_or(FsError::UnknownHandle(id))
    }

    pub(crate) fn remove_file(&self, id: u64) -> Result<Arc<OpenFile>, FsError> {
        lock(&self.files)
            .remove(&id)
            .ok_or(FsError::UnknownHandle(id))
    }

    /// Any replicated open of inode `ino` (to carry a change that came without a handle).
    pub(crate) fn replicated_open_of(&self, ino: u64) -> Option<Arc<OpenFile>> {
        lock(&self.files)
            .values()
            .find(|f| f.ino == ino && f.stream.is_some())
            .cloned()
    }

    pub(crate) fn insert_dir(&self, id: u64, dir: OpenDir) {
        lock(&self.dirs).insert(id, Arc::new(dir));
    }

    pub(crate) fn dir(&self, id: u64) -> Result<Arc<OpenDir>, FsError> {
        lock(&self.dirs)
            .get(&id)
            .cloned()
            .ok_or(FsError::UnknownHandle(id))
    }

    pub(crate) fn remove_dir(&self, id: u64) -> Result<Arc<OpenDir>, FsError> {
        lock(&self.dirs)
            .remove(&id)
            .ok_or(FsError::UnknownHandle(id))
    }

    /// Every replicated open: (stream handle, inode).
    pub(crate) fn replicated(&self) -> Vec<(Handle, u64)> {
        lock(&self.files)
            .values()
            .filter_map(|f| f.stream.map(|h| (h, f.ino)))
            .collect()
    }

    /// Open files and directories, for diagnostics and tests.
    pub(crate) fn count(&self) -> (usize, usize) {
        (lock(&self.files).len(), lock(&self.dirs).len())
    }
}
