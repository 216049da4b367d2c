//! The `fuser` adapter: one thin method per FUSE request, calling [`OverlayCore`] and
//! turning its `Result` into a reply. No file system logic lives here (mountpoint-s3's
//! split), so the core can be read and reasoned about without FUSE's reply types.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::attr::{TTL, timestamp};
use std::sync::Arc;

use super::core::{AttrChanges, Caller, OverlayCore, XattrReply};
use super::error::FsError;
use super::sys::SetTime;

/// Largest write request: `fs.fuse.max_pages_limit` (256 pages) caps it at 1 MiB anyway, and
/// 128 KiB requests are clearly slower (PLATFORM.md).
const MAX_WRITE: u32 = 1 << 20;

/// The file system served on the mount: the core plus FUSE plumbing.
#[derive(Debug)]
pub(crate) struct Overlay {
    core: Arc<OverlayCore>,
}

impl Overlay {
    pub(crate) fn new(core: Arc<OverlayCore>) -> Overlay {
        Overlay { core }
    }
}

/// Reply with the error's errno; unexpected failures are logged (ENOENT & co. are routine).
macro_rules! fail {
    ($reply:expr, $op:literal, $err:expr) => {{
        let err: FsError = $err;
        match err {
            FsError::Sys { .. } | FsError::NotImplemented | FsError::ReadOnly => {
                log::trace!("rfs overlay: {} failed: {}", $op, err)
            }
            _ => log::warn!("rfs overlay: {} failed: {}", $op, err),
        }
        $reply.error(Errno::from_i32(err.errno()))
    }};
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(t) => {
            let ts = timestamp(t);
            SetTime::At {
                sec: ts.sec,
                nsec: ts.nsec,
            }
        }
    })
}

impl Filesystem for Overlay {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        if let Err(nearest) = config.set_max_write(MAX_WRITE) {
            let _ = config.set_max_write(nearest);
        }
        // READDIRPLUS saves a lookup per entry; PARALLEL_DIROPS lets lookups in one
        // directory run concurrently (the core's ordering lock keeps them consistent).
        // Deliberately not requested: WRITEBACK_CACHE (hurts fsync-heavy work, and writes
        // would reach the daemon late), PASSTHROUGH (not in this version), ATOMIC_O_TRUNC
        // (truncation arrives as a setattr, which is replicated), POSIX locks (kept local).
        let wanted = InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_PARALLEL_DIROPS;
        let _ = config.add_capabilities(wanted & config.capabilities());
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.core.lookup(parent.0, name) {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(0)),
            Err(e) => fail!(reply, "lookup", e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.core.getattr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => fail!(reply, "getattr", e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let changes = AttrChanges {
            mode,
            uid,
            gid,
            size,
            atime: set_time(atime),
            mtime: set_time(mtime),
        };
        match self.core.setattr(ino.0, changes, fh.map(|f| f.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => fail!(reply, "setattr", e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.core.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => fail!(reply, "readlink", e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        match self
            .core
            .mknod(caller(req), parent.0, name, mode, umask, rdev)
        {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(0)),
            Err(e) => fail!(reply, "mknod", e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.core.mkdir(caller(req), parent.0, name, mode, umask) {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(0)),
            Err(e) => fail!(reply, "mkdir", e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.core.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "unlink", e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.core.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "rmdir", e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        match self.core.symlink(caller(req), parent.0, link_name, target) {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(0)),
            Err(e) => fail!(reply, "symlink", e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self
            .core
            .rename(parent.0, name, newparent.0, newname, flags.bits())
        {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "rename", e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        match self.core.link(ino.0, newparent.0, newname) {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(0)),
            Err(e) => fail!(reply, "link", e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.core.open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => fail!(reply, "open", e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.core.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => fail!(reply, "read", e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.core.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => fail!(reply, "write", e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.core.flush(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "flush", e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.core.release(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "release", e),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.core.fsync(fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "fsync", e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.core.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => fail!(reply, "opendir", e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.core.readdir(fh.0, offset, |ino, next, kind, name| {
            reply.add(INodeNo(ino), next, kind, name)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "readdir", e),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self.core.readdirplus(fh.0, offset, |name, next, attr| {
            reply.add(attr.ino, next, name, &TTL, attr, Generation(0))
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "readdirplus", e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        match self.core.releasedir(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "releasedir", e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.core.fsyncdir(fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "fsyncdir", e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.core.statfs() {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                u32::try_from(st.f_bsize).unwrap_or(4096),
                u32::try_from(st.f_namelen).unwrap_or(255),
                u32::try_from(st.f_frsize).unwrap_or(4096),
            ),
            Err(e) => fail!(reply, "statfs", e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match self.core.setxattr(ino.0, name, value, flags) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "setxattr", e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.core.getxattr(ino.0, name, size) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(d)) => reply.data(&d),
            Err(e) => fail!(reply, "getxattr", e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.core.listxattr(ino.0, size) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(d)) => reply.data(&d),
            Err(e) => fail!(reply, "listxattr", e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.core.removexattr(ino.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "removexattr", e),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.core.access(caller(req), ino.0, mask.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "access", e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self
            .core
            .create(caller(req), parent.0, name, mode, umask, flags)
        {
            Ok((e, fh)) => reply.created(
                &TTL,
                &e.attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => fail!(reply, "create", e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.core.fallocate(fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => fail!(reply, "fallocate", e),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.core.lseek(fh.0, offset, whence) {
            Ok(off) => reply.offset(off),
            Err(e) => fail!(reply, "lseek", e),
        }
    }

    /// ENOSYS on purpose: the kernel then remembers that this file system has no
    /// copy_file_range and copies through ordinary reads and writes, which are replicated as
    /// `Write` operations. A server-side copy would need an `Op` of its own.
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        fail!(reply, "copy_file_range", FsError::NotImplemented)
    }
}
