//! File data: open, create, read, write, flush, release, fsync, fallocate, lseek.
//!
//! No passthrough in this version: every read and write goes through a descriptor held by the
//! daemon. Writable opens could never be passed through anyway (writes would bypass
//! replication); read-only passthrough comes later, with a per-inode open policy (ETXTBSY
//! rules in PLATFORM.md).

use std::ffi::OsStr;
use std::os::fd::AsFd;

use bytes::Bytes;

use super::{Caller, Entry, OverlayCore};
use crate::overlay::error::FsError;
use crate::overlay::handles::OpenFile;
use crate::overlay::replicate::Pending;
use crate::overlay::sys;
use crate::protocol::op::{Op, RelPath};

/// Flags for the daemon's own descriptor. Writers get `O_RDWR` (kernel-initiated reads of a
/// written page must not fail with EBADF). Stripped: creation flags (already handled),
/// `O_APPEND` (the kernel computes the offset and the stream carries it: appending locally
/// could land elsewhere), `O_DIRECT` (the daemon's buffers are not aligned), `O_NOFOLLOW`
/// (the `/proc/self/fd` reopen is itself a link).
fn local_flags(flags: i32, writer: bool) -> i32 {
    let stripped = libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_DIRECT
        | libc::O_NOFOLLOW
        | libc::O_PATH
        | libc::O_TMPFILE
        | libc::O_DIRECTORY;
    (flags & !stripped) | if writer { libc::O_RDWR } else { libc::O_RDONLY }
}

/// `O_SYNC` → full fsync after each write, `O_DSYNC` → data sync; `None` otherwise.
fn sync_mode(flags: i32) -> Option<bool> {
    if flags & libc::O_SYNC == libc::O_SYNC {
        Some(false)
    } else if flags & libc::O_DSYNC != 0 {
        Some(true)
    } else {
        None
    }
}

fn is_writer(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

impl OverlayCore {
    pub(crate) fn open(&self, ino: u64, flags: i32) -> Result<u64, FsError> {
        let writer = is_writer(flags);
        if writer {
            self.writable()?;
        }
        let local = local_flags(flags, writer);
        let id = self.handles.allocate();
        // The file is opened locally first: `Open` changes nothing on the peer's disk, so
        // nothing is sent for an open that fails.
        let (pending, stream, fd) = {
            let _order = self.order_shared();
            let node = self.inodes.get(ino)?;
            let fd = sys::reopen(node.fd.as_fd(), local)?;
            match (writer, node.location.rel()) {
                (true, Some(path)) => {
                    let pending = self.send(Op::Open {
                        handle: id,
                        path: path.clone(),
                    });
                    (pending, Some(id), fd)
                }
                // Readers are not replicated; a writer on an unlinked file has nothing to
                // reach on the peer (it only exists there through handles already open).
                _ => (Pending::ready(), None, fd),
            }
        };
        self.handles.insert_file(
            id,
            OpenFile {
                fd,
                ino,
                stream,
                sync: sync_mode(flags),
            },
        );
        self.settle("open", pending, &Ok::<(), FsError>(()));
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(Entry, u64), FsError> {
        self.writable()?;
        let exclusive = flags & libc::O_EXCL != 0;
        let local = local_flags(flags, true);
        let id = self.handles.allocate();
        let (pending, result) = {
            let _order = self.order_exclusive();
            let parent = self.inodes.get(parent)?;
            let path = parent.location.child(name)?;
            let cname = sys::c_name(name)?;
            let (owner, _) = self.new_owner(parent.fd.as_fd(), caller)?;
            let perm = mode & !umask & 0o7777;
            let pending = self.send(Op::Create {
                handle: id,
                path: path.clone(),
                mode: perm,
                owner,
                exclusive,
            });
            let result = self.create_local(&parent.fd, &cname, path, owner, perm, local, exclusive);
            (pending, result)
        };
        // The handle is registered before the verdict is collected: once the operation has
        // settled, a new stream adopting the open files must find it.
        let result = result.map(|(entry, fd)| {
            self.handles.insert_file(
                id,
                OpenFile {
                    fd,
                    ino: entry.ino,
                    stream: Some(id),
                    sync: sync_mode(flags),
                },
            );
            entry
        });
        self.settle("create", pending, &result);
        match result {
            Ok(entry) => Ok((entry, id)),
            Err(e) => {
                // The peer may hold the handle open: release it.
                let close = self.send(Op::Close { handle: id });
                self.settle("close after failed create", close, &Ok::<(), FsError>(()));
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_local(
        &self,
        parent: &std::os::fd::OwnedFd,
        name: &std::ffi::CStr,
        path: RelPath,
        owner: crate::protocol::op::Owner,
        perm: u32,
        local: i32,
        exclusive: bool,
    ) -> Result<(Entry, std::os::fd::OwnedFd), FsError> {
        let dir = parent.as_fd();
        let created = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = match sys::openat(dir, name, local | created, perm) {
            Ok(fd) => {
                sys::chown_fd(fd.as_fd(), Some(owner.uid), Some(owner.gid))?;
                sys::chmod_fd(fd.as_fd(), perm)?;
                fd
            }
            // Lost a race with another creator and the caller did not ask for O_EXCL: open
            // the existing file, as open(2) would.
            Err(e) if e.errno() == libc::EEXIST && !exclusive => {
                sys::openat(dir, name, local | libc::O_NOFOLLOW, 0)?
            }
            Err(e) => return Err(e),
        };
        let entry = self.remember_child(dir, name, path)?;
        Ok((entry, fd))
    }

    pub(crate) fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, FsError> {
        let file = self.handles.file(fh)?;
        sys::pread_full(file.fd.as_fd(), size as usize, offset)
    }

    pub(crate) fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        self.writable()?;
        let file = self.handles.file(fh)?;
        let written = u32::try_from(data.len()).map_err(|_| FsError::Sys {
            call: "write",
            errno: libc::EINVAL,
        })?;
        let Some(handle) = file.stream else {
            sys::pwrite_all(file.fd.as_fd(), data, offset)?;
            return Ok(written);
        };
        let (pendings, result) = {
            let _stripe = self.stripe(file.ino);
            let mut pendings = vec![self.send(Op::Write {
                handle,
                offset,
                data: Bytes::copy_from_slice(data),
            })];
            let result = sys::pwrite_all(file.fd.as_fd(), data, offset);
            if let Some(datasync) = file.sync {
                pendings.push(self.send(Op::Fsync { handle, datasync }));
            }
            (pendings, result)
        };
        for pending in pendings {
            self.settle("write", pending, &result);
        }
        result.map(|()| written)
    }

    /// Called on every `close()` of a descriptor; nothing is buffered in the daemon.
    pub(crate) fn flush(&self, fh: u64) -> Result<(), FsError> {
        self.handles.file(fh).map(drop)
    }

    pub(crate) fn release(&self, fh: u64) -> Result<(), FsError> {
        let file = self.handles.remove_file(fh)?;
        let pending = match file.stream {
            Some(handle) => self.send(Op::Close { handle }),
            None => Pending::ready(),
        };
        drop(file);
        self.settle("close", pending, &Ok::<(), FsError>(()));
        Ok(())
    }

    /// Durable on both sides before returning. An fsync through a read-only open names the
    /// file through a short-lived stream handle (`Open`, `Fsync`, `Close`).
    pub(crate) fn fsync(&self, fh: u64, datasync: bool) -> Result<(), FsError> {
        let file = self.handles.file(fh)?;
        let pendings = match file.stream {
            Some(handle) => vec![self.send(Op::Fsync { handle, datasync })],
            None if !self.read_only => {
                let _order = self.order_shared();
                match self
                    .inodes
                    .get(file.ino)
                    .ok()
                    .and_then(|n| n.location.rel().cloned())
                {
                    Some(path) => {
                        let handle = self.handles.allocate();
                        vec![
                            self.send(Op::Open { handle, path }),
                            self.send(Op::Fsync { handle, datasync }),
                            self.send(Op::Close { handle }),
                        ]
                    }
                    None => Vec::new(),
                }
            }
            None => Vec::new(),
        };
        let result = sys::fsync(file.fd.as_fd(), datasync);
        for pending in pendings {
            self.settle("fsync", pending, &result);
        }
        result
    }

    pub(crate) fn fallocate(
        &self,
        fh: u64,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Result<(), FsError> {
        self.writable()?;
        let file = self.handles.file(fh)?;
        let Some(handle) = file.stream else {
            return sys::fallocate(file.fd.as_fd(), mode, offset, len);
        };
        let (pending, result) = {
            let _stripe = self.stripe(file.ino);
            let pending = self.send(Op::Fallocate {
                handle,
                mode,
                offset,
                len,
            });
            (pending, sys::fallocate(file.fd.as_fd(), mode, offset, len))
        };
        self.settle("fallocate", pending, &result);
        result
    }

    /// `SEEK_DATA`/`SEEK_HOLE` answered by the backing file (the kernel handles the others).
    pub(crate) fn lseek(&self, fh: u64, offset: i64, whence: i32) -> Result<i64, FsError> {
        let file = self.handles.file(fh)?;
        sys::lseek(file.fd.as_fd(), offset, whence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_descriptor_flags() {
        let f = local_flags(
            libc::O_WRONLY | libc::O_APPEND | libc::O_TRUNC | libc::O_SYNC,
            true,
        );
        assert_eq!(f & libc::O_ACCMODE, libc::O_RDWR);
        assert_eq!(f & (libc::O_APPEND | libc::O_TRUNC), 0);
        assert_eq!(f & libc::O_SYNC, libc::O_SYNC);
        assert_eq!(
            local_flags(libc::O_RDONLY | libc::O_NOFOLLOW, false) & libc::O_NOFOLLOW,
            0
        );
        assert_eq!(sync_mode(libc::O_SYNC), Some(false));
        assert_eq!(sync_mode(libc::O_DSYNC), Some(true));
        assert_eq!(sync_mode(0), None);
    }
}
