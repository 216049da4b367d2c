//! Names: lookup, creation of directories/nodes/symlinks/links, unlink, rmdir, rename.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::{Caller, Entry, OverlayCore};
use crate::overlay::error::FsError;
use crate::overlay::replicate::Pending;
use crate::overlay::sys;
use crate::protocol::op::{Op, Owner};

impl OverlayCore {
    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Result<Entry, FsError> {
        let _order = self.order_shared();
        let parent = self.inodes.get(parent)?;
        let path = parent.location.child(name)?;
        let cname = sys::c_name(name)?;
        self.remember_child(parent.fd.as_fd(), &cname, path)
    }

    pub(crate) fn forget(&self, ino: u64, nlookup: u64) {
        self.inodes.forget(ino, nlookup);
    }

    /// Owner of a new object, as the kernel would set it: the caller, with the group of a
    /// set-group-ID parent. Returns whether the parent is set-group-ID.
    pub(super) fn new_owner(
        &self,
        parent: BorrowedFd<'_>,
        caller: Caller,
    ) -> Result<(Owner, bool), FsError> {
        let st = sys::stat_fd(parent)?;
        let sgid = st.st_mode & libc::S_ISGID != 0;
        let gid = if sgid { st.st_gid } else { caller.gid };
        Ok((
            Owner {
                uid: caller.uid,
                gid,
            },
            sgid,
        ))
    }

    /// After creating `dir/name` as root: give it the owner and exact mode that were sent
    /// (the daemon's umask must not leak into replicated modes), then register it.
    fn finish_new(
        &self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        path: crate::protocol::op::RelPath,
        owner: Owner,
        mode: Option<u32>,
    ) -> Result<Entry, FsError> {
        let fd = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        // Owner first: a chown clears set-ID bits that the chmod then restores.
        sys::chown_fd(fd.as_fd(), Some(owner.uid), Some(owner.gid))?;
        if let Some(mode) = mode {
            sys::chmod_fd(fd.as_fd(), mode)?;
        }
        drop(fd);
        self.remember_child(dir, name, path)
    }

    pub(crate) fn mkdir(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Entry, FsError> {
        self.writable()?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let parent = self.inodes.get(parent)?;
            let path = parent.location.child(name)?;
            let cname = sys::c_name(name)?;
            let (owner, sgid) = self.new_owner(parent.fd.as_fd(), caller)?;
            // Directories inherit set-group-ID from their parent.
            let mode = (mode & !umask & 0o7777) | if sgid { libc::S_ISGID } else { 0 };
            let pending = self.send(Op::Mkdir {
                path: path.clone(),
                mode,
                owner,
            });
            let result = sys::mkdirat(parent.fd.as_fd(), &cname, mode)
                .and_then(|()| self.finish_new(parent.fd.as_fd(), &cname, path, owner, Some(mode)));
            (pending, result)
        };
        self.settle("mkdir", pending, &result);
        result
    }

    pub(crate) fn mknod(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<Entry, FsError> {
        self.writable()?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let parent = self.inodes.get(parent)?;
            let path = parent.location.child(name)?;
            let cname = sys::c_name(name)?;
            let (owner, _) = self.new_owner(parent.fd.as_fd(), caller)?;
            let perm = mode & !umask & 0o7777;
            let mode = (mode & libc::S_IFMT) | perm;
            let pending = self.send(Op::Mknod {
                path: path.clone(),
                mode,
                rdev: u64::from(rdev),
                owner,
            });
            let result = sys::mknodat(parent.fd.as_fd(), &cname, mode, u64::from(rdev))
                .and_then(|()| self.finish_new(parent.fd.as_fd(), &cname, path, owner, Some(perm)));
            (pending, result)
        };
        self.settle("mknod", pending, &result);
        result
    }

    pub(crate) fn symlink(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        target: &Path,
    ) -> Result<Entry, FsError> {
        self.writable()?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let parent = self.inodes.get(parent)?;
            let path = parent.location.child(name)?;
            let cname = sys::c_name(name)?;
            let ctarget = sys::c_name(target.as_os_str())?;
            let (owner, _) = self.new_owner(parent.fd.as_fd(), caller)?;
            let pending = self.send(Op::Symlink {
                path: path.clone(),
                target: target.as_os_str().to_os_string(),
                owner,
            });
            let result = sys::symlinkat(&ctarget, parent.fd.as_fd(), &cname)
                .and_then(|()| self.finish_new(parent.fd.as_fd(), &cname, path, owner, None));
            (pending, result)
        };
        self.settle("symlink", pending, &result);
        result
    }

    pub(crate) fn link(
        &self,
        ino: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<Entry, FsError> {
        self.writable()?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let node = self.inodes.get(ino)?;
            let parent = self.inodes.get(new_parent)?;
            let new = parent.location.child(new_name)?;
            let cname = sys::c_name(new_name)?;
            let pending = match node.location.rel() {
                Some(existing) => self.send(Op::Link {
                    existing: existing.clone(),
                    new: new.clone(),
                }),
                None => {
                    // Linking an object that has no current name (only possible through a
                    // descriptor): the stream cannot name the source.
                    log::warn!("rfs overlay: link of an object without a path is not replicated");
                    Pending::ready()
                }
            };
            let result = sys::link_fd(node.fd.as_fd(), parent.fd.as_fd(), &cname)
                .and_then(|()| self.remember_child(parent.fd.as_fd(), &cname, new));
            (pending, result)
        };
        self.settle("link", pending, &result);
        result
    }

    pub(crate) fn unlink(&self, parent: u64, name: &OsStr) -> Result<(), FsError> {
        self.remove(parent, name, false)
    }

    pub(crate) fn rmdir(&self, parent: u64, name: &OsStr) -> Result<(), FsError> {
        self.remove(parent, name, true)
    }

    fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Result<(), FsError> {
        self.writable()?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let parent = self.inodes.get(parent)?;
            let path = parent.location.child(name)?;
            let cname = sys::c_name(name)?;
            let (op, flags) = if dir {
                (Op::Rmdir { path: path.clone() }, libc::AT_REMOVEDIR)
            } else {
                (Op::Unlink { path: path.clone() }, 0)
            };
            let pending = self.send(op);
            let result = sys::unlinkat(parent.fd.as_fd(), &cname, flags);
            if result.is_ok() {
                self.inodes.unlinked(&path);
            }
            (pending, result)
        };
        self.settle(if dir { "rmdir" } else { "unlink" }, pending, &result);
        result
    }

    pub(crate) fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<(), FsError> {
        self.writable()?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let old_dir = self.inodes.get(parent)?;
            let new_dir = self.inodes.get(new_parent)?;
            let from = old_dir.location.child(name)?;
            let to = new_dir.location.child(new_name)?;
            let (cfrom, cto) = (sys::c_name(name)?, sys::c_name(new_name)?);
            // Renaming one hard link onto another of the same file changes nothing.
            let same = match (
                sys::statat(old_dir.fd.as_fd(), &cfrom),
                sys::statat(new_dir.fd.as_fd(), &cto),
            ) {
                (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
                _ => false,
            };
            let pending = self.send(Op::Rename {
                from: from.clone(),
                to: to.clone(),
                flags,
            });
            let result =
                sys::renameat2(old_dir.fd.as_fd(), &cfrom, new_dir.fd.as_fd(), &cto, flags);
            if result.is_ok() && !same {
                let exchange = flags & libc::RENAME_EXCHANGE != 0;
                self.inodes.renamed(&from, &to, exchange);
            }
            (pending, result)
        };
        self.settle("rename", pending, &result);
        result
    }
}
