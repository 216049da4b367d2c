//! The fd cache: one write descriptor per stream handle, from `Open`/`Create` to `Close`.
//!
//! Data operations name a handle rather than a path so that a file renamed while open needs
//! no lookup on the secondary. The cache is bounded because the peer chooses the handles: a
//! peer that never closes must run into an error, not exhaust the process's descriptors.
//! Note that the bound only protects if `RLIMIT_NOFILE` is above it plus the receiver's own
//! needs: the daemon must raise its soft limit (1024 by default) before receiving.

use super::error::{At, Fail};
use crate::protocol::op::Handle;
use nix::errno::Errno;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Open handles allowed by default.
pub const DEFAULT_HANDLE_LIMIT: usize = 65536;

#[derive(Debug)]
pub(crate) struct Handles {
    fds: HashMap<Handle, OwnedFd>,
    limit: usize,
}

impl Handles {
    pub fn new(limit: usize) -> Handles {
        Handles {
            fds: HashMap::new(),
            limit,
        }
    }

    pub fn len(&self) -> usize {
        self.fds.len()
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Check, before anything is opened or created, that `handle` could be registered: it
    /// must be free (reusing an open handle would silently drop a descriptor the stream still
    /// counts on) and the bound must not be reached.
    pub fn check_free(&self, handle: Handle) -> Result<(), Fail> {
        if self.fds.contains_key(&handle) {
            return Err(Fail::refused(
                "refused: the handle is already open",
                Errno::EBADF,
            ));
        }
        if self.fds.len() >= self.limit {
            return Err(Fail::refused(
                "refused: too many open handles",
                Errno::EMFILE,
            ));
        }
        Ok(())
    }

    /// Register a descriptor; [`Handles::check_free`] must have passed.
    pub fn insert(&mut self, handle: Handle, fd: OwnedFd) -> Result<(), Fail> {
        self.check_free(handle)?;
        match self.fds.entry(handle) {
            Entry::Vacant(slot) => {
                slot.insert(fd);
                Ok(())
            }
            Entry::Occupied(_) => Err(Fail::refused(
                "refused: the handle is already open",
                Errno::EBADF,
            )),
        }
    }

    pub fn get(&self, handle: Handle) -> Result<BorrowedFd<'_>, Fail> {
        self.fds
            .get(&handle)
            .map(|fd| fd.as_fd())
            .ok_or(Fail::refused("refused: unknown handle", Errno::EBADF))
    }

    /// Forget every handle, closing the descriptors (errors from `close` are not reported:
    /// the caller is about to discard what they were writing).
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Forget the handle and close its descriptor, reporting the error `close` returns.
    pub fn close(&mut self, handle: Handle) -> Result<(), Fail> {
        let fd = self
            .fds
            .remove(&handle)
            .ok_or(Fail::refused("refused: unknown handle", Errno::EBADF))?;
        nix::unistd::close(fd).at("closing")
    }
}
