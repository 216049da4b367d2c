//! The whole tree as the operations that rebuild it on an empty secondary: the simplest
//! correct first synchronisation (incremental resynchronisation sends only what changed).
//!
//! Directories come first (pre-order), their times last (post-order, once their entries
//! exist); regular files send only their data extents (`SEEK_DATA`/`SEEK_HOLE`), so holes stay
//! holes, then their final length; a second name of a multiply-linked file is a `Link`;
//! symlinks, FIFOs, sockets and devices are recreated as they are. Owner, mode, `user.*` and
//! `trusted.*` xattrs and atime/mtime follow each entry. The root's own metadata travels too
//! (path None): its owner, mode and xattrs first, its times at the very end. The walk reads
//! `root` by path:
//! pass the backing directory (e.g. `/proc/self/fd/<fd>/.` of the descriptor held under a
//! mount: the trailing `.` makes the directory, not the magic link, the root examined), never
//! a path that resolves through the overlay itself.

use super::tracker::Changes;
use super::zones::{FileChanges, ZoneSize};
use crate::compare::xattr::replicated_xattrs;
use crate::protocol::op::{Handle, Op, Owner, RelPath, SetAttr, Timestamp};
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Largest data chunk per `Write` (the protocol's limit).
pub const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FullCopyError<E: std::error::Error + 'static> {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: not representable as a replicated path: {reason}")]
    Path { path: PathBuf, reason: String },
    /// The consumer of the operations failed (e.g. the stream to the secondary broke).
    #[error("sending the full copy: {0}")]
    Emit(#[source] E),
}

/// What a full copy sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub directories: u64,
    pub files: u64,
    pub links: u64,
    pub others: u64,
    /// Data bytes sent (holes excluded).
    pub bytes: u64,
}

/// Walk `root` and hand every operation that rebuilds it to `emit`, in order. Nothing may
/// change `root` meanwhile: any read error fails the copy.
pub fn full_copy<E: std::error::Error + 'static>(
    root: &Path,
    mut emit: impl FnMut(Op) -> Result<(), E>,
) -> Result<CopyStats, FullCopyError<E>> {
    let mut copy = Copier::new(root, &mut emit, false);
    copy.root()?;
    Ok(copy.stats)
}

/// [`full_copy`] of a tree the application keeps changing, under a
/// [`ChangeTracker`](super::tracker::ChangeTracker): an entry that vanishes or changes type
/// while it is read is skipped (it is in the tracker's next changes), and a file read while
/// it is written may be torn (likewise copied again from the next changes).
pub fn live_copy<E: std::error::Error + 'static>(
    root: &Path,
    mut emit: impl FnMut(Op) -> Result<(), E>,
) -> Result<CopyStats, FullCopyError<E>> {
    let mut copy = Copier::new(root, &mut emit, true);
    copy.root()?;
    Ok(copy.stats)
}

/// Brings what `changes` names up to date on a peer that holds an earlier copy: each whole
/// path (a path beneath another one named is covered by it) is removed there, then copied
/// whole if it still exists here; a file changed in place gets its changed zones (see
/// [`Copier::in_place`]); the root's own metadata if it changed. Tolerant like [`live_copy`].
pub fn copy_changes<E: std::error::Error + 'static>(
    root: &Path,
    changes: &Changes,
    mut emit: impl FnMut(Op) -> Result<(), E>,
) -> Result<CopyStats, FullCopyError<E>> {
    let mut copy = Copier::new(root, &mut emit, true);
    if changes.root {
        copy.root_metadata()?;
    }
    for path in changes.top_paths() {
        copy.whole(path)?;
    }
    for (path, file) in changes.in_place() {
        let copied = copy.in_place(path, file, changes.zone);
        copy.tolerated(copied)?;
    }
    Ok(copy.stats)
}

fn components(path: &RelPath) -> Vec<Vec<u8>> {
    path.components()
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

pub(crate) struct Copier<'e, E> {
    root: PathBuf,
    emit: &'e mut dyn FnMut(Op) -> Result<(), E>,
    pub(crate) stats: CopyStats,
    /// (device, inode) of multiply-linked files already sent, and the path they were sent as.
    inodes: HashMap<(u64, u64), RelPath>,
    next_handle: Handle,
    /// Entries that vanish while being read are skipped (see [`live_copy`]).
    tolerant: bool,
}

/// An entry removed or replaced while it was being read.
pub(crate) fn vanished(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ESTALE)
    )
}

impl<'e, E: std::error::Error + 'static> Copier<'e, E> {
    pub(crate) fn new(
        root: &Path,
        emit: &'e mut dyn FnMut(Op) -> Result<(), E>,
        tolerant: bool,
    ) -> Copier<'e, E> {
        Copier {
            root: root.to_path_buf(),
            emit,
            stats: CopyStats::default(),
            inodes: HashMap::new(),
            next_handle: 1,
            tolerant,
        }
    }

    /// [`entry`](Self::entry), skipping one that vanished if the copy is tolerant.
    pub(crate) fn tolerant_entry(&mut self, rel: &[Vec<u8>]) -> Result<(), FullCopyError<E>> {
        let copied = self.entry(rel);
        self.tolerated(copied)
    }

    /// `copied`, an entry that vanished while being read forgiven if the copy is tolerant.
    fn tolerated(&self, copied: Result<(), FullCopyError<E>>) -> Result<(), FullCopyError<E>> {
        match copied {
            Err(FullCopyError::Read { source, .. }) if self.tolerant && vanished(&source) => Ok(()),
            other => other,
        }
    }

    pub(crate) fn send(&mut self, op: Op) -> Result<(), FullCopyError<E>> {
        (self.emit)(op).map_err(FullCopyError::Emit)
    }

    pub(crate) fn read_err(path: &Path) -> impl FnOnce(io::Error) -> FullCopyError<E> + '_ {
        move |source| FullCopyError::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The root's own owner, mode and xattrs, its tree, then its times (which creating the
    /// tree changed).
    fn root(&mut self) -> Result<(), FullCopyError<E>> {
        let meta = self.root_metadata()?;
        self.directory(&[])?;
        self.times(None, &meta)
    }

    /// The root's owner, mode and xattrs.
    fn root_metadata(&mut self) -> Result<fs::Metadata, FullCopyError<E>> {
        let full = self.root.clone();
        let meta = fs::symlink_metadata(&full).map_err(Self::read_err(&full))?;
        self.ownership(&full, None, &meta)?;
        Ok(meta)
    }

    /// The owner, mode and xattrs of an entry the peer already has.
    fn ownership(
        &mut self,
        full: &Path,
        path: Option<&RelPath>,
        meta: &fs::Metadata,
    ) -> Result<(), FullCopyError<E>> {
        // One SetAttr: the receiver applies the owner before the mode (chown clears set-ID).
        self.send(Op::SetAttr {
            path: path.cloned(),
            attr: SetAttr {
                mode: Some(meta.mode() & 0o7777),
                uid: Some(meta.uid()),
                gid: Some(meta.gid()),
                ..SetAttr::default()
            },
        })?;
        self.xattrs(full, path)
    }

    /// `path` removed on the peer, then copied whole if it exists here.
    fn whole(&mut self, path: &RelPath) -> Result<(), FullCopyError<E>> {
        self.send(Op::RemoveTree { path: path.clone() })?;
        self.tolerant_entry(&components(path))
    }

    /// A file or directory that kept its path since the peer's copy: a regular file gets the
    /// bytes of `file`'s ranges, its length and its metadata, a directory its metadata.
    /// Anything else (the path names another kind of entry now, or data changes reached
    /// something not a regular file) is copied whole. The peer's `Open` of the path must
    /// succeed: failing it fails the copy, as the peer then lacks what its copy should hold.
    /// A path removed or renamed since is in the tracker's next changes, whole.
    fn in_place(
        &mut self,
        path: &RelPath,
        file: &FileChanges,
        zone: ZoneSize,
    ) -> Result<(), FullCopyError<E>> {
        let full = self.full_path(&components(path));
        let meta = fs::symlink_metadata(&full).map_err(Self::read_err(&full))?;
        if meta.is_file() {
            self.stats.files += 1;
            self.zones(&full, path, &file.ranges(zone, meta.len()), meta.len())?;
        } else if meta.is_dir() && file.metadata_only() {
            self.stats.directories += 1;
        } else {
            return self.whole(path);
        }
        self.ownership(&full, Some(path), &meta)?;
        self.times(Some(path), &meta)
    }

    /// Byte `ranges` of the regular file at `full`, then its length `len`, to the peer's
    /// existing copy of `path`.
    fn zones(
        &mut self,
        full: &Path,
        path: &RelPath,
        ranges: &[(u64, u64)],
        len: u64,
    ) -> Result<(), FullCopyError<E>> {
        let file = File::open(full).map_err(Self::read_err(full))?;
        let path = path.clone();
        let open = |handle| Op::Open { handle, path };
        self.contents(&file, full, open, ranges, len)
    }

    /// The entries of directory `rel` (relative components), recursively, sorted by name so
    /// that two copies of one tree send the same stream.
    fn directory(&mut self, rel: &[Vec<u8>]) -> Result<(), FullCopyError<E>> {
        let dir = self.full_path(rel);
        let mut names: Vec<Vec<u8>> = fs::read_dir(&dir)
            .map_err(Self::read_err(&dir))?
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(Self::read_err(&dir))?;
        names.sort();
        for name in names {
            let mut child = rel.to_vec();
            child.push(name);
            self.tolerant_entry(&child)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &[Vec<u8>]) -> Result<(), FullCopyError<E>> {
        let full = self.full_path(rel);
        let meta = fs::symlink_metadata(&full).map_err(Self::read_err(&full))?;
        let path = rel_path(&full, rel)?;
        let owner = Owner {
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let mode = meta.mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_dir() {
            self.stats.directories += 1;
            self.send(Op::Mkdir {
                path: path.clone(),
                mode,
                owner,
            })?;
            self.xattrs(&full, Some(&path))?;
            self.directory(rel)?;
            // After the entries: creating them changed the directory's times.
            return self.times(Some(&path), &meta);
        }
        if kind.is_file() && meta.nlink() > 1 {
            if let Some(existing) = self.inodes.get(&(meta.dev(), meta.ino())) {
                self.stats.links += 1;
                let existing = existing.clone();
                return self.send(Op::Link {
                    existing,
                    new: path,
                });
            }
            self.inodes.insert((meta.dev(), meta.ino()), path.clone());
        }
        if kind.is_file() {
            self.stats.files += 1;
            self.file(&full, &path, mode, owner, meta.len())?;
        } else if kind.is_symlink() {
            self.stats.others += 1;
            let target = fs::read_link(&full).map_err(Self::read_err(&full))?;
            self.send(Op::Symlink {
                path: path.clone(),
                target: target.into_os_string(),
                owner,
            })?;
        } else if kind.is_fifo()
            || kind.is_socket()
            || kind.is_char_device()
            || kind.is_block_device()
        {
            self.stats.others += 1;
            self.send(Op::Mknod {
                path: path.clone(),
                mode: meta.mode(),
                rdev: meta.rdev(),
                owner,
            })?;
        }
        self.xattrs(&full, Some(&path))?;
        self.times(Some(&path), &meta)
    }

    fn file(
        &mut self,
        full: &Path,
        path: &RelPath,
        mode: u32,
        owner: Owner,
        len: u64,
    ) -> Result<(), FullCopyError<E>> {
        let file = File::open(full).map_err(Self::read_err(full))?;
        let extents = data_extents(&file, len).map_err(Self::read_err(full))?;
        let path = path.clone();
        let create = |handle| Op::Create {
            handle,
            path,
            mode,
            owner,
            exclusive: true,
        };
        self.contents(&file, full, create, &extents, len)
    }

    /// A handle for a file opened on the peer, unused by this copy so far.
    pub(crate) fn handle(&mut self) -> Handle {
        self.next_handle += 1;
        self.next_handle - 1
    }

    /// On the peer handle `open` makes: byte `ranges` of `file` (at `full`), then its
    /// length `len`; closed.
    fn contents(
        &mut self,
        file: &File,
        full: &Path,
        open: impl FnOnce(Handle) -> Op,
        ranges: &[(u64, u64)],
        len: u64,
    ) -> Result<(), FullCopyError<E>> {
        let handle = self.handle();
        self.send(open(handle))?;
        for &range in ranges {
            self.range(file, full, handle, range)?;
        }
        self.send(Op::SetLen { handle, len })?;
        self.send(Op::Close { handle })
    }

    /// Bytes `[start, end)` of `file` as `Write`s of at most [`CHUNK`] bytes on `handle`.
    fn range(
        &mut self,
        file: &File,
        full: &Path,
        handle: Handle,
        (start, end): (u64, u64),
    ) -> Result<(), FullCopyError<E>> {
        let mut offset = start;
        while offset < end {
            let want = usize::try_from(end - offset).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = vec![0u8; want];
            let got = file
                .read_at(&mut buf, offset)
                .map_err(Self::read_err(full))?;
            if got == 0 {
                break; // the file shrank meanwhile: the SetLen that follows gives the final size
            }
            buf.truncate(got);
            self.stats.bytes += got as u64;
            self.send(Op::Write {
                handle,
                offset,
                data: Bytes::from(buf),
            })?;
            offset += got as u64;
        }
        Ok(())
    }

    pub(crate) fn xattrs(
        &mut self,
        full: &Path,
        path: Option<&RelPath>,
    ) -> Result<(), FullCopyError<E>> {
        for (name, value) in replicated_xattrs(full).map_err(Self::read_err(full))? {
            self.send(Op::SetXattr {
                path: path.cloned(),
                name,
                value: Bytes::from(value),
                flags: 0,
            })?;
        }
        Ok(())
    }

    pub(crate) fn times(
        &mut self,
        path: Option<&RelPath>,
        meta: &fs::Metadata,
    ) -> Result<(), FullCopyError<E>> {
        let attr = SetAttr {
            atime: Some(timestamp(meta.atime(), meta.atime_nsec())),
            mtime: Some(timestamp(meta.mtime(), meta.mtime_nsec())),
            ..SetAttr::default()
        };
        self.send(Op::SetAttr {
            path: path.cloned(),
            attr,
        })
    }

    pub(crate) fn full_path(&self, rel: &[Vec<u8>]) -> PathBuf {
        let mut full = self.root.clone();
        for part in rel {
            full.push(std::ffi::OsStr::from_bytes(part));
        }
        full
    }
}

fn rel_path<E: std::error::Error + 'static>(
    full: &Path,
    rel: &[Vec<u8>],
) -> Result<RelPath, FullCopyError<E>> {
    RelPath::new(&rel.join(&b'/')).map_err(|e| FullCopyError::Path {
        path: full.to_path_buf(),
        reason: e.to_string(),
    })
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    }
}

/// The `[start, end)` byte ranges of `file` that hold data, holes left out. File systems
/// without `SEEK_DATA` report the whole file as data.
fn data_extents(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let seek = |offset: u64, whence: i32| -> io::Result<Option<u64>> {
        let offset = i64::try_from(offset).map_err(io::Error::other)?;
        // SAFETY: lseek only repositions the offset of `fd`, a descriptor `file` keeps open
        // for the duration of this call; it touches no memory of ours.
        let got = unsafe { libc::lseek(fd, offset, whence) };
        if got >= 0 {
            return Ok(Some(got.unsigned_abs()));
        }
        match io::Error::last_os_error() {
            // No more data after `offset`.
            e if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            e => Err(e),
        }
    };
    let mut extents = Vec::new();
    let mut at = 0;
    while at < len {
        let start = match seek(at, libc::SEEK_DATA) {
            Ok(Some(start)) => start,
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(vec![(0, len)]),
            Err(e) => return Err(e),
        };
        let end = seek(start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        if end > start {
            extents.push((start, end));
        }
        at = end.max(start + 1);
    }
    Ok(extents)
}
