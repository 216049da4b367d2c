//! [`compare_copy`]: bringing a peer that holds some copy of the tree (an old primary, a
//! SECOND whose journal cannot be trusted) up to date by comparing its manifest with ours
//! instead of emptying it: entries equal in type, size, mode, owner, mtime, xattrs and every
//! block hash are left alone; a regular file on both sides gets only the blocks whose hashes
//! differ from the peer's (then its length and attributes); anything else that differs is
//! removed and copied whole as [`live_copy`](super::full_copy::live_copy) would; what only the
//! peer holds is removed. Our side is listed without reading files: a file is read, and its
//! blocks hashed, only where the peer holds a file at the same path.
//!
//! Tolerant like `live_copy`: meant to run under a
//! [`ChangeTracker`](super::tracker::ChangeTracker), whose next changes cover whatever the
//! application changes meanwhile. A file with several names is always copied whole, so that
//! its names are linked on the peer as here.

use super::full_copy::CHUNK;
use super::full_copy::{Copier, CopyStats, FullCopyError, vanished};
use super::manifest::{Entry, beneath, paired, read_block, walk_metadata};
use crate::compare::FileKind;
use crate::protocol::op::{Op, RelPath, SetAttr};
use bytes::Bytes;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Sends to `emit` what turns the peer's tree, described by `theirs` (its manifest with
/// blocks of `block_size` bytes), into the tree under `root` (a backing directory, as for
/// `live_copy`).
pub fn compare_copy<E: std::error::Error + 'static>(
    root: &Path,
    theirs: &[Entry],
    block_size: u32,
    mut emit: impl FnMut(Op) -> Result<(), E>,
) -> Result<CopyStats, FullCopyError<E>> {
    let ours = our_entries(root)?;
    let mut sync = Sync {
        copy: Copier::new(root, &mut emit, true),
        block: vec![0; usize::try_from(block_size).unwrap_or(CHUNK).max(1)],
        directories: Vec::new(),
    };
    let mut covered: Option<RelPath> = None;
    for pair in paired(&ours, theirs) {
        let path = match pair {
            (Some(e), _) | (None, Some(e)) => e.path.clone(),
            (None, None) => continue,
        };
        if beneath(path.as_ref(), covered.as_ref()) {
            continue;
        }
        if sync.pair(pair)? {
            covered = path;
        }
    }
    sync.directory_times()?;
    Ok(sync.copy.stats)
}

/// Our entries, files not read.
fn our_entries<E: std::error::Error + 'static>(
    root: &Path,
) -> Result<Vec<Entry>, FullCopyError<E>> {
    let read = |source| FullCopyError::Read {
        path: root.to_path_buf(),
        source,
    };
    let dir = File::open(root).map_err(read)?;
    walk_metadata(dir.as_fd()).map_err(|e| read(io::Error::other(e)))
}

struct Sync<'e, E> {
    copy: Copier<'e, E>,
    /// One block of file data, the size of the peer's manifest blocks.
    block: Vec<u8>,
    /// Directories present on both sides, whose times are set once their entries are.
    directories: Vec<Option<RelPath>>,
}

/// The path's components as the copier takes them.
fn components(path: &RelPath) -> Vec<Vec<u8>> {
    path.components()
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

fn same_owner_and_mode(ours: &Entry, theirs: &Entry) -> bool {
    (ours.mode, ours.uid, ours.gid) == (theirs.mode, theirs.uid, theirs.gid)
}

/// Can only be replaced, not updated in place: another type, another symlink target or
/// device, or a file with several names (copied whole so that its names are linked).
fn replaced(ours: &Entry, theirs: &Entry) -> bool {
    ours.kind != theirs.kind
        || ours.target != theirs.target
        || ours.rdev != theirs.rdev
        || (ours.kind == FileKind::Regular && (ours.nlink > 1 || theirs.nlink > 1))
}

impl<E: std::error::Error + 'static> Sync<'_, E> {
    /// Handles one path; true if what lies beneath it was dealt with too.
    fn pair(&mut self, pair: (Option<&Entry>, Option<&Entry>)) -> Result<bool, FullCopyError<E>> {
        match pair {
            (None, Some(theirs)) => {
                if let Some(path) = &theirs.path {
                    self.copy.send(Op::RemoveTree { path: path.clone() })?;
                }
                Ok(true)
            }
            (Some(ours), None) => self.whole(ours),
            (Some(ours), Some(theirs)) if ours.path.is_some() && replaced(ours, theirs) => {
                self.whole(ours)
            }
            (Some(ours), Some(theirs)) => {
                self.update(ours, theirs)?;
                Ok(false)
            }
            (None, None) => Ok(false),
        }
    }

    /// Removes the peer's entry at this path and copies ours whole.
    fn whole(&mut self, ours: &Entry) -> Result<bool, FullCopyError<E>> {
        let Some(path) = &ours.path else {
            return Ok(false);
        };
        self.copy.send(Op::RemoveTree { path: path.clone() })?;
        self.copy.tolerant_entry(&components(path))?;
        Ok(true)
    }

    /// Same type on both sides: only what differs.
    fn update(&mut self, ours: &Entry, theirs: &Entry) -> Result<(), FullCopyError<E>> {
        if ours.kind == FileKind::Directory {
            self.directories.push(ours.path.clone());
        }
        let full = self.full_path(ours.path.as_ref());
        let mut changed = false;
        if ours.kind == FileKind::Regular {
            changed = self.content(&full, ours, theirs)?;
        }
        if !same_owner_and_mode(ours, theirs) {
            changed = true;
            // One SetAttr: the receiver applies the owner before the mode (chown clears set-ID).
            self.copy.send(Op::SetAttr {
                path: ours.path.clone(),
                attr: SetAttr {
                    mode: Some(ours.mode),
                    uid: Some(ours.uid),
                    gid: Some(ours.gid),
                    ..SetAttr::default()
                },
            })?;
        }
        if ours.xattrs != theirs.xattrs {
            changed = true;
            self.xattrs(&full, ours, theirs)?;
        }
        if ours.kind != FileKind::Directory && (changed || ours.mtime != theirs.mtime) {
            self.times(ours.path.as_ref(), &full)?;
        }
        Ok(())
    }

    fn full_path(&self, path: Option<&RelPath>) -> PathBuf {
        self.copy
            .full_path(&path.map(components).unwrap_or_default())
    }

    /// Our xattrs set on the peer, and those only the peer has removed.
    fn xattrs(
        &mut self,
        full: &Path,
        ours: &Entry,
        theirs: &Entry,
    ) -> Result<(), FullCopyError<E>> {
        for (name, _) in &theirs.xattrs {
            if !ours.xattrs.iter().any(|(n, _)| n == name) {
                self.copy.send(Op::RemoveXattr {
                    path: ours.path.clone(),
                    name: name.clone(),
                })?;
            }
        }
        self.tolerant(|copy| copy.xattrs(full, ours.path.as_ref()))
    }

    /// The entry's times as they are now (it may have been written since the walk).
    fn times(&mut self, path: Option<&RelPath>, full: &Path) -> Result<(), FullCopyError<E>> {
        match fs::symlink_metadata(full) {
            Ok(meta) => self.copy.times(path, &meta),
            Err(e) if vanished(&e) => Ok(()),
            Err(source) => Err(FullCopyError::Read {
                path: full.to_path_buf(),
                source,
            }),
        }
    }

    /// Our file read block by block, each block whose hash differs from the peer's written
    /// to it, then the length if it differs; whether anything was sent.
    fn content(
        &mut self,
        full: &Path,
        ours: &Entry,
        theirs: &Entry,
    ) -> Result<bool, FullCopyError<E>> {
        let Some(path) = &ours.path else {
            return Ok(false);
        };
        let mut file = match File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(full)
        {
            Ok(file) => file,
            Err(e) if vanished(&e) => return Ok(false),
            Err(source) => {
                return Err(FullCopyError::Read {
                    path: full.to_path_buf(),
                    source,
                });
            }
        };
        let mut opened = None;
        let (mut index, mut size) = (0, 0u64);
        loop {
            let filled =
                read_block(&mut file, &mut self.block).map_err(Copier::<E>::read_err(full))?;
            let data = self.block.get(..filled).unwrap_or_default();
            if filled > 0 && theirs.blocks.get(index) != Some(blake3::hash(data).as_bytes()) {
                let handle = self.open(&mut opened, path)?;
                self.write(handle, size, filled)?;
            }
            size += filled as u64;
            index += 1;
            if filled < self.block.len() {
                break;
            }
        }
        if size != theirs.size {
            let handle = self.open(&mut opened, path)?;
            self.copy.send(Op::SetLen { handle, len: size })?;
        }
        let Some(handle) = opened else {
            return Ok(false);
        };
        self.copy.stats.files += 1;
        self.copy.send(Op::Close { handle }).map(|()| true)
    }

    /// The handle of the file opened on the peer, opening it the first time.
    fn open(&mut self, opened: &mut Option<u64>, path: &RelPath) -> Result<u64, FullCopyError<E>> {
        if let Some(handle) = opened {
            return Ok(*handle);
        }
        let handle = self.copy.handle();
        self.copy.send(Op::Open {
            handle,
            path: path.clone(),
        })?;
        *opened = Some(handle);
        Ok(handle)
    }

    /// The first `len` bytes of the block buffer, written at `offset` in pieces the protocol
    /// accepts.
    fn write(&mut self, handle: u64, offset: u64, len: usize) -> Result<(), FullCopyError<E>> {
        let data = self.block.get(..len).unwrap_or_default();
        let pieces: Vec<(u64, Bytes)> = data
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, piece)| (offset + (i * CHUNK) as u64, Bytes::copy_from_slice(piece)))
            .collect();
        for (at, data) in pieces {
            self.copy.stats.bytes += data.len() as u64;
            self.copy.send(Op::Write {
                handle,
                offset: at,
                data,
            })?;
        }
        Ok(())
    }

    /// Directories' times once their entries are in place, deepest first.
    fn directory_times(&mut self) -> Result<(), FullCopyError<E>> {
        for path in std::mem::take(&mut self.directories).iter().rev() {
            let full = self.full_path(path.as_ref());
            self.times(path.as_ref(), &full)?;
        }
        Ok(())
    }

    /// Runs `step`, ignoring an entry that vanished meanwhile.
    fn tolerant(
        &mut self,
        step: impl FnOnce(&mut Copier<'_, E>) -> Result<(), FullCopyError<E>>,
    ) -> Result<(), FullCopyError<E>> {
        match step(&mut self.copy) {
            Err(FullCopyError::Read { source, .. }) if vanished(&source) => Ok(()),
            other => other,
        }
    }
}
