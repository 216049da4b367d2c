//! Directory streams: opendir, readdir, readdirplus, releasedir, fsyncdir.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::{MutexGuard, PoisonError};

use fuser::{FileAttr, FileType};

use super::OverlayCore;
use crate::overlay::attr::{file_attr, kind};
use crate::overlay::error::FsError;
use crate::overlay::handles::{DirEntry, OpenDir};
use crate::overlay::inodes::Location;
use crate::overlay::replicate::Pending;
use crate::overlay::sys;
use crate::protocol::op::Op;

fn dir_type(t: nix::dir::Type) -> FileType {
    use nix::dir::Type;
    match t {
        Type::Fifo => FileType::NamedPipe,
        Type::CharacterDevice => FileType::CharDevice,
        Type::Directory => FileType::Directory,
        Type::BlockDevice => FileType::BlockDevice,
        Type::File => FileType::RegularFile,
        Type::Symlink => FileType::Symlink,
        Type::Socket => FileType::Socket,
    }
}

/// Read the whole directory through a fresh descriptor (its own offset).
fn snapshot(dir: &OpenDir) -> Result<Vec<DirEntry>, FsError> {
    let fd = sys::reopen(dir.fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut stream = nix::dir::Dir::from_fd(fd).map_err(|e| FsError::Sys {
        call: "fdopendir",
        errno: e as i32,
    })?;
    let mut entries = Vec::new();
    for entry in stream.iter() {
        let entry = entry.map_err(|e| FsError::Sys {
            call: "readdir",
            errno: e as i32,
        })?;
        let name = entry.file_name();
        let dots = matches!(name.to_bytes(), b"." | b"..");
        let kind = match entry.file_type() {
            Some(t) => dir_type(t),
            // Never resolve `..`: from the root it would climb onto the mount itself.
            None if dots => FileType::Directory,
            // DT_UNKNOWN: ask the inode (skip entries that vanished meanwhile).
            None => match sys::statat(dir.fd.as_fd(), name) {
                Ok(st) => kind(st.st_mode),
                Err(_) => continue,
            },
        };
        entries.push(DirEntry {
            name: OsStr::from_bytes(name.to_bytes()).to_os_string(),
            ino: entry.ino(),
            kind,
        });
    }
    Ok(entries)
}

fn is_dot(name: &OsStr) -> bool {
    name == "." || name == ".."
}

impl OverlayCore {
    pub(crate) fn opendir(&self, ino: u64) -> Result<u64, FsError> {
        let node = self.inodes.get(ino)?;
        let fd = sys::reopen(node.fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?;
        let id = self.handles.allocate();
        self.handles.insert_dir(
            id,
            OpenDir {
                fd,
                ino,
                entries: std::sync::Mutex::new(Vec::new()),
            },
        );
        Ok(id)
    }

    /// The entries from `offset` on (a fresh snapshot at offset 0, as `rewinddir` expects).
    fn entries_from<'a>(
        &self,
        dir: &'a OpenDir,
        offset: u64,
    ) -> Result<MutexGuard<'a, Vec<DirEntry>>, FsError> {
        let mut entries = dir.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if offset == 0 {
            *entries = snapshot(dir)?;
        }
        Ok(entries)
    }

    /// Feed entries to `add(ino, next_offset, kind, name)` until it reports a full buffer.
    pub(crate) fn readdir(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, FileType, &OsStr) -> bool,
    ) -> Result<(), FsError> {
        let dir = self.handles.dir(fh)?;
        let entries = self.entries_from(&dir, offset)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(start) {
            if add(e.ino, i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        Ok(())
    }

    /// Like `readdir`, with a lookup per entry (each one a kernel reference, undone if the
    /// buffer turns out to be full). `.` and `..` carry attributes but no reference.
    pub(crate) fn readdirplus(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&OsStr, u64, &FileAttr) -> bool,
    ) -> Result<(), FsError> {
        let dir = self.handles.dir(fh)?;
        let entries: Vec<DirEntry> = self.entries_from(&dir, offset)?.clone();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(start) {
            let next = i as u64 + 1;
            if is_dot(&e.name) {
                let st = sys::stat_fd(dir.fd.as_fd())?;
                if add(&e.name, next, &file_attr(e.ino, &st)) {
                    break;
                }
                continue;
            }
            let entry = match self.lookup(dir.ino, &e.name) {
                Ok(entry) => entry,
                Err(_) => continue, // removed since the snapshot
            };
            if add(&e.name, next, &entry.attr) {
                self.forget(entry.ino, 1);
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn releasedir(&self, fh: u64) -> Result<(), FsError> {
        self.handles.remove_dir(fh).map(drop)
    }

    pub(crate) fn fsyncdir(&self, fh: u64, datasync: bool) -> Result<(), FsError> {
        let dir = self.handles.dir(fh)?;
        let pending = if self.read_only {
            Pending::ready()
        } else {
            let _order = self.order_shared();
            match self.inodes.get(dir.ino)?.location {
                Location::Root => self.send(Op::FsyncDir { path: None }),
                Location::At(path) => self.send(Op::FsyncDir { path: Some(path) }),
                Location::Unlinked => Pending::ready(),
            }
        };
        let result = sys::fsync(dir.fd.as_fd(), datasync);
        self.settle("fsyncdir", pending, &result);
        result
    }
}
