//! [`walk`]: listing a replica through descriptors, beneath its root: symlinks are never
//! followed, mount points inside it are left out (they are not part of the replica), and an
//! entry that vanishes while the application writes is simply left out too.

use super::hash::{hash_files, hash_in_order};
use super::{Entry, Hash, ManifestError};
use crate::compare::FileKind;
use crate::compare::xattr::replicated_xattrs;
use crate::protocol::manifest::MAX_XATTRS;
use crate::protocol::op::{RelPath, Timestamp};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2, readlinkat};
use nix::sys::stat::{FileStat, SFlag, fstat, fstatat};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Every entry beneath the directory open as `root` (itself included, with path `None`),
/// sorted by path, regular files hashed in blocks of `block_size` bytes by up to `workers`
/// threads. The size of a file is the size read, which a write meanwhile may have changed.
pub fn walk(root: BorrowedFd<'_>, block_size: u32, workers: usize) -> Result<Vec<Entry>> {
    let block = usize::try_from(block_size).unwrap_or(usize::MAX).max(1);
    hash_files(root, walk_metadata(root)?, block, workers)
}

/// [`walk`], each entry handed to `emit` as soon as it is complete (in order), so that a
/// listing can leave while the rest is read; `emit` returns `false` to stop.
pub fn walk_each(
    root: BorrowedFd<'_>,
    block_size: u32,
    workers: usize,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<()> {
    let block = usize::try_from(block_size).unwrap_or(usize::MAX).max(1);
    hash_in_order(root, walk_metadata(root)?, block, workers, emit)
}

/// [`walk`] without reading files: no block hashes, sizes as the metadata says.
pub fn walk_metadata(root: BorrowedFd<'_>) -> Result<Vec<Entry>> {
    let mut walker = Walker {
        root,
        device: 0,
        entries: Vec::new(),
    };
    walker.run()?;
    walker.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(walker.entries)
}

struct Walker<'r> {
    root: BorrowedFd<'r>,
    /// The root's device: a directory on another one is a mount point, not entered.
    device: u64,
    entries: Vec<Entry>,
}

pub(super) type Result<T> = std::result::Result<T, ManifestError>;

pub(super) fn shown(path: Option<&RelPath>) -> String {
    path.map_or_else(
        || ".".to_string(),
        |p| String::from_utf8_lossy(&p.to_bytes()).into_owned(),
    )
}

pub(super) fn io_error(
    path: Option<&RelPath>,
    doing: &'static str,
) -> impl FnOnce(Errno) -> ManifestError {
    let path = shown(path);
    move |errno| ManifestError::Io {
        path,
        doing,
        source: io::Error::from(errno),
    }
}

fn child(parent: Option<&RelPath>, name: &OsStr) -> Result<RelPath> {
    let mut bytes = parent.map(RelPath::to_bytes).unwrap_or_default();
    if !bytes.is_empty() {
        bytes.push(b'/');
    }
    bytes.extend_from_slice(name.as_bytes());
    RelPath::new(&bytes).map_err(|source| ManifestError::Path {
        path: String::from_utf8_lossy(&bytes).into_owned(),
        source,
    })
}

fn kind(stat: &FileStat) -> FileKind {
    match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => FileKind::Directory,
        SFlag::S_IFLNK => FileKind::Symlink,
        SFlag::S_IFCHR => FileKind::CharDevice,
        SFlag::S_IFBLK => FileKind::BlockDevice,
        SFlag::S_IFIFO => FileKind::Fifo,
        SFlag::S_IFSOCK => FileKind::Socket,
        _ => FileKind::Regular,
    }
}

/// The metadata part of an entry.
fn entry(path: Option<RelPath>, stat: &FileStat) -> Entry {
    let kind = kind(stat);
    let is_device = matches!(kind, FileKind::CharDevice | FileKind::BlockDevice);
    Entry {
        path,
        kind,
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid,
        gid: stat.st_gid,
        size: u64::try_from(stat.st_size).unwrap_or_default(),
        mtime: Timestamp {
            sec: stat.st_mtime,
            nsec: u32::try_from(stat.st_mtime_nsec).unwrap_or_default(),
        },
        nlink: stat.st_nlink,
        rdev: if is_device { stat.st_rdev } else { 0 },
        target: None,
        xattrs: Vec::new(),
        blocks: Vec::new(),
    }
}

/// The replicated xattrs of `name` in `dir` (`.` for `dir` itself), values hashed. Read by a
/// path through the directory's descriptor, the final component not followed.
fn xattr_hashes(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: Option<&RelPath>,
) -> Result<Vec<(OsString, Hash)>> {
    let mut through = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    through.push(name);
    let values = replicated_xattrs(&through).map_err(|source| ManifestError::Io {
        path: shown(path),
        doing: "reading xattrs",
        source,
    })?;
    if values.len() > MAX_XATTRS {
        return Err(ManifestError::TooManyXattrs {
            path: shown(path),
            count: values.len(),
            max: MAX_XATTRS,
        });
    }
    Ok(values
        .into_iter()
        .map(|(name, value)| (name, *blake3::hash(&value).as_bytes()))
        .collect())
}

/// The entry at `path` beneath the root (the root itself for `None`), opened with `flags`,
/// never through a symlink or a mount point.
pub(super) fn open_beneath(
    root: BorrowedFd<'_>,
    path: Option<&RelPath>,
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    let how = OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_XDEV
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    let bytes = path.map_or_else(|| b".".to_vec(), RelPath::to_bytes);
    openat2(root, bytes.as_slice(), how)
}

/// Entry names of a directory, `.` and `..` left out, sorted bytewise.
fn names(dir: OwnedFd) -> nix::Result<Vec<OsString>> {
    let mut dir = Dir::from_fd(dir)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsString::from(OsStr::from_bytes(&name)));
        }
    }
    names.sort();
    Ok(names)
}

/// Gone since it was listed: the application removed or renamed it.
pub(super) fn vanished(errno: Errno) -> bool {
    matches!(errno, Errno::ENOENT | Errno::ENOTDIR)
}

impl Walker<'_> {
    fn run(&mut self) -> Result<()> {
        let stat = fstat(self.root).map_err(io_error(None, "examining the directory"))?;
        self.device = stat.st_dev;
        let mut root = entry(None, &stat);
        root.xattrs = xattr_hashes(self.root, OsStr::new("."), None)?;
        self.entries.push(root);
        let mut pending = vec![None];
        while let Some(dir) = pending.pop() {
            pending.extend(self.directory(dir)?);
        }
        Ok(())
    }

    /// Lists one directory; returns its subdirectories to enter.
    fn directory(&mut self, path: Option<RelPath>) -> Result<Vec<Option<RelPath>>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = match open_beneath(self.root, path.as_ref(), flags) {
            Ok(dir) => dir,
            Err(errno) if vanished(errno) => return Ok(Vec::new()),
            Err(errno) => return Err(io_error(path.as_ref(), "opening the directory")(errno)),
        };
        let listing = dir.try_clone().map_err(|source| ManifestError::Io {
            path: shown(path.as_ref()),
            doing: "listing the directory",
            source,
        })?;
        let names = match names(listing) {
            Ok(names) => names,
            Err(errno) if vanished(errno) => return Ok(Vec::new()),
            Err(errno) => return Err(io_error(path.as_ref(), "listing the directory")(errno)),
        };
        let mut subdirs = Vec::new();
        for name in names {
            let child = child(path.as_ref(), &name)?;
            if let Some(entry) = self.member(dir.as_fd(), &name, child)? {
                let enter = entry.kind == FileKind::Directory;
                let path = entry.path.clone();
                self.entries.push(entry);
                if enter {
                    subdirs.push(path);
                }
            }
        }
        Ok(subdirs)
    }

    /// The entry `name` of `dir`; `None` if it vanished or is a mount point.
    fn member(&self, dir: BorrowedFd<'_>, name: &OsStr, path: RelPath) -> Result<Option<Entry>> {
        let stat = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(errno) if vanished(errno) => return Ok(None),
            Err(errno) => return Err(io_error(Some(&path), "examining")(errno)),
        };
        if stat.st_dev != self.device {
            // A mount point inside the replicated directory: not part of the replica.
            return Ok(None);
        }
        let mut entry = entry(Some(path), &stat);
        let at = entry.path.clone();
        entry.xattrs = match xattr_hashes(dir, name, at.as_ref()) {
            Err(ManifestError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            other => other?,
        };
        if entry.kind == FileKind::Symlink {
            entry.target = match readlinkat(dir, name) {
                Ok(target) => Some(target),
                Err(errno) if vanished(errno) => return Ok(None),
                Err(errno) => return Err(io_error(at.as_ref(), "reading the symlink")(errno)),
            };
        }
        Ok(Some(entry))
    }
}
