//! [`Receiver`]: applies the ordered stream of operations to the secondary's replica.

use super::attrs;
use super::beneath::Root;
use super::empty::{empty_root, remove_tree};
use super::error::{ApplyError, At, Fail, describe};
use super::handles::{DEFAULT_HANDLE_LIMIT, Handles};
use super::namespace;
use super::object::{Object, check_procfs};
use crate::protocol::op::{Handle, Op, Owner, RelPath};
use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, OFlag, fallocate, openat};
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fdatasync, fsync, ftruncate, unlinkat};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The secondary's receiver for one replicated directory.
///
/// Operations are applied in stream order by one caller (`&mut self`). Each either succeeds
/// or returns an [`ApplyError`] carrying the errno to compare with the primary's; a failed
/// operation leaves nothing half-done where that is cheap to ensure (a file created before
/// its owner could be set is removed again; a handle is checked before a file is created).
/// Nothing outside the root is ever touched: see the module documentation.
#[derive(Debug)]
pub struct Receiver {
    root: Root,
    handles: Handles,
}

impl Receiver {
    /// Open the replica at `root` (`O_PATH | O_DIRECTORY`). On a secondary whose directory is
    /// covered by a FUSE mount, open it before mounting, or use [`Receiver::from_fd`].
    pub fn open(root: &Path) -> Result<Receiver, ApplyError> {
        let name = || format!("open replicated root {}", root.display());
        check_procfs().map_err(|f| ApplyError::new(name(), f))?;
        let root = Root::open(root).map_err(|f| ApplyError::new(name(), f))?;
        Ok(Receiver::with_root(root))
    }

    /// Adopt a directory descriptor opened by the caller.
    pub fn from_fd(fd: OwnedFd) -> Result<Receiver, ApplyError> {
        let name = || "open replicated root from a descriptor".to_string();
        check_procfs().map_err(|f| ApplyError::new(name(), f))?;
        let root = Root::from_fd(fd).map_err(|f| ApplyError::new(name(), f))?;
        Ok(Receiver::with_root(root))
    }

    fn with_root(root: Root) -> Receiver {
        Receiver {
            root,
            handles: Handles::new(DEFAULT_HANDLE_LIMIT),
        }
    }

    /// Change the bound on open handles (default [`DEFAULT_HANDLE_LIMIT`]).
    pub fn with_handle_limit(mut self, limit: usize) -> Receiver {
        self.handles.set_limit(limit);
        self
    }

    /// Close every stream handle (a new stream starts: its handles mean other files).
    pub fn close_handles(&mut self) {
        self.handles.clear();
    }

    /// How many stream handles are open.
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    /// Apply one operation.
    pub fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
        self.dispatch(op)
            .map_err(|fail| ApplyError::new(describe(op), fail))
    }

    fn dispatch(&mut self, op: &Op) -> Result<(), Fail> {
        let root = &self.root;
        match op {
            Op::Open { handle, path } => self.open_existing(*handle, path),
            Op::Create {
                handle,
                path,
                mode,
                owner,
                exclusive,
            } => self.create(*handle, path, *mode, *owner, *exclusive),
            Op::Write {
                handle,
                offset,
                data,
            } => write_all(self.handles.get(*handle)?, *offset, data),
            Op::SetLen { handle, len } => {
                ftruncate(self.handles.get(*handle)?, offset(*len)?).at("truncating")
            }
            Op::Fallocate {
                handle,
                mode,
                offset: start,
                len,
            } => fallocate(
                self.handles.get(*handle)?,
                FallocateFlags::from_bits_retain(*mode),
                offset(*start)?,
                offset(*len)?,
            )
            .at("allocating"),
            Op::Fsync { handle, datasync } => {
                let fd = self.handles.get(*handle)?;
                if *datasync {
                    fdatasync(fd).at("syncing data")
                } else {
                    fsync(fd).at("syncing")
                }
            }
            Op::Close { handle } => self.handles.close(*handle),
            Op::Mkdir { path, mode, owner } => namespace::mkdir(root, path, *mode, *owner),
            Op::Mknod {
                path,
                mode,
                rdev,
                owner,
            } => namespace::mknod(root, path, *mode, *rdev, *owner),
            Op::Symlink {
                path,
                target,
                owner,
            } => namespace::symlink(root, path, target, *owner),
            Op::Link { existing, new } => namespace::link(root, existing, new),
            Op::Unlink { path } => namespace::unlink(root, path, UnlinkatFlags::NoRemoveDir),
            Op::Rmdir { path } => namespace::unlink(root, path, UnlinkatFlags::RemoveDir),
            Op::Rename { from, to, flags } => namespace::rename(root, from, to, *flags),
            Op::SetAttr { path, attr } => attrs::set_attr(root, path.as_ref(), attr),
            Op::SetXattr {
                path,
                name,
                value,
                flags,
            } => attrs::set_xattr(root, path.as_ref(), name, value, *flags),
            Op::RemoveXattr { path, name } => attrs::remove_xattr(root, path.as_ref(), name),
            Op::FsyncDir { path } => {
                let dir = root.open_dir(path.as_ref())?;
                fsync(dir).at("syncing the directory")
            }
            Op::EmptyRoot => {
                self.handles.clear();
                empty_root(root)
            }
            Op::RemoveTree { path } => remove_tree(root, path),
        }
    }

    fn open_existing(&mut self, handle: Handle, path: &RelPath) -> Result<(), Fail> {
        self.handles.check_free(handle)?;
        let at = self.root.locate(path)?;
        let fd = Object::open(&at)?.reopen_for_write()?;
        self.handles.insert(handle, fd)
    }

    /// Create with `O_EXCL` always, so that the final component is never followed and never
    /// a non-regular file; a non-exclusive create of an existing name then opens it as
    /// [`Op::Open`] would (mode and owner untouched, as `open(O_CREAT)` leaves them).
    fn create(
        &mut self,
        handle: Handle,
        path: &RelPath,
        mode: u32,
        owner: Owner,
        exclusive: bool,
    ) -> Result<(), Fail> {
        self.handles.check_free(handle)?;
        let at = self.root.locate(path)?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(&at.dir, at.name, flags, perm(mode)) {
            Ok(fd) => {
                if let Err(fail) = own_and_chmod(&fd, owner, mode) {
                    // Best effort: the error reported is the one that matters.
                    let _ = unlinkat(&at.dir, at.name, UnlinkatFlags::NoRemoveDir);
                    return Err(fail);
                }
                fd
            }
            Err(Errno::EEXIST) if !exclusive => Object::open(&at)?.reopen_for_write()?,
            Err(errno) => return Err(errno).at("creating the file"),
        };
        self.handles.insert(handle, fd)
    }
}

/// Permission bits of a wire mode (type bits dropped).
pub(super) fn perm(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o7777)
}

/// Give a new object its owner, then its exact mode. In that order: `chown` clears the
/// set-user-ID and set-group-ID bits of non-directories, and the umask has trimmed the mode
/// given at creation.
pub(super) fn own_and_chmod(fd: &OwnedFd, owner: Owner, mode: u32) -> Result<(), Fail> {
    fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .at("setting the owner")?;
    fchmod(fd, perm(mode)).at("setting the mode")
}

/// A wire offset or length as `off_t`.
fn offset(value: u64) -> Result<i64, Fail> {
    i64::try_from(value).map_err(|_| {
        Fail::refused(
            "refused: offset or length beyond the largest file offset",
            Errno::EFBIG,
        )
    })
}

fn write_all(fd: impl AsFd, start: u64, data: &[u8]) -> Result<(), Fail> {
    let mut done = 0;
    while done < data.len() {
        let at = offset(start.saturating_add(done as u64))?;
        match nix::sys::uio::pwrite(&fd, &data[done..], at) {
            Ok(0) => return Err(Errno::EIO).at("writing: no byte was accepted"),
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno).at("writing"),
        }
    }
    Ok(())
}
