//! The overlay's file system logic, independent of `fuser`'s reply types (mountpoint-s3
//! style): every method returns a `Result` with an [`FsError`], which the adapter in `fs.rs`
//! turns into a reply.
//!
//! ## How a mutating request is served
//! 1. build the [`Op`] (paths resolved from the inode table),
//! 2. `send` it to the [`Replicator`] — the frame is on its way,
//! 3. apply it locally, relative to backing descriptors,
//! 4. release the ordering lock, then wait for the peer's verdict,
//! 5. reply with the **local** result (a replication failure is logged, never returned).
//!
//! Steps 1–3 run under the *ordering lock* so that the stream carries operations in the
//! order they were applied locally: namespace and metadata operations take it exclusively,
//! lookups and opens (whose paths must not move while they are resolved and sent) take it
//! shared. Data operations on one inode are ordered by a per-inode stripe lock (the kernel
//! already serialises writes to one inode; the stripe also covers write-back paths). The
//! wait happens outside every lock, so concurrent writers overlap their round trips.

mod attrs;
mod data;
mod dirs;
mod namespace;
mod xattr;

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fuser::FileAttr;

pub(crate) use attrs::AttrChanges;
pub(crate) use xattr::XattrReply;

use super::attr::file_attr;
use super::error::FsError;
use super::handles::Handles;
use super::inodes::{InodeTable, Location};
use super::replicate::{LocalOutcome, Pending, Replicator};
use super::sys;
use crate::protocol::op::{Handle, Op, RelPath};

const STRIPES: usize = 64;

/// A directory entry handed to the kernel.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub ino: u64,
    pub attr: FileAttr,
}

/// Who made a request: owner of what it creates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    pub uid: u32,
    pub gid: u32,
}

pub(crate) struct OverlayCore {
    inodes: InodeTable,
    handles: Handles,
    replicator: Arc<dyn Replicator>,
    read_only: bool,
    order: RwLock<()>,
    stripes: Box<[Mutex<()>]>,
}

impl std::fmt::Debug for OverlayCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayCore")
            .field("read_only", &self.read_only)
            .field("inodes", &self.inodes.len())
            .field("open", &self.handles.count())
            .finish_non_exhaustive()
    }
}

impl OverlayCore {
    /// Serve the directory held by `root` (opened before the mount covered it).
    pub(crate) fn new(
        root: OwnedFd,
        replicator: Arc<dyn Replicator>,
        read_only: bool,
    ) -> Result<OverlayCore, FsError> {
        Ok(OverlayCore {
            inodes: InodeTable::new(root)?,
            handles: Handles::new(),
            replicator,
            read_only,
            order: RwLock::new(()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// The files open for writing whose changes travel under a stream handle, with where
    /// each is now (`None`: unlinked while open). Consistent when no operation is between
    /// its send and its verdict (the replicator frozen): never takes the ordering lock, which
    /// an operation waiting in a frozen `send` holds.
    pub(crate) fn stream_handles(&self) -> Vec<(Handle, Option<RelPath>)> {
        self.handles
            .replicated()
            .into_iter()
            .map(|(handle, ino)| {
                let path = self
                    .inodes
                    .get(ino)
                    .ok()
                    .and_then(|node| node.location.rel().cloned());
                (handle, path)
            })
            .collect()
    }

    fn writable(&self) -> Result<(), FsError> {
        if self.read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn order_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.order.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn order_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.order.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn stripe(&self, ino: u64) -> MutexGuard<'_, ()> {
        let i = (ino % STRIPES as u64) as usize;
        self.stripes[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, op: Op) -> Pending {
        self.replicator.send(op)
    }

    /// Collect the peer's verdict. Never fails the request: see `replicate.rs`.
    fn settle<T>(&self, what: &'static str, pending: Pending, result: &Result<T, FsError>) {
        let local = match result {
            Ok(_) => LocalOutcome::Applied,
            Err(e) => LocalOutcome::Failed(e.errno()),
        };
        if let Err(e) = pending.settle(local) {
            log::warn!("rfs overlay: {what}: replication not confirmed: {e}");
        }
    }

    /// Register `dir/name` (just looked up or created) as a kernel reference.
    fn remember_child(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        path: RelPath,
    ) -> Result<Entry, FsError> {
        let fd = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let st = sys::stat_fd(fd.as_fd())?;
        let ino = self.inodes.remember(fd, &st, Location::At(path));
        Ok(Entry {
            ino,
            attr: file_attr(ino, &st),
        })
    }
}
