//! [`walk`]: listing a replica through descriptors, beneath its root: symlinks are never
//! followed, mount points inside it are left out (they are not part of the replica), and an
//! entry that vanishes while the application writes is simply left out too.

use super::{Entry, Hash, ManifestError};
use crate::compare::FileKind;
use crate::compare::xattr::replicated_xattrs;
use crate::protocol::manifest::MAX_XATTRS;
use crate::protocol::op::{RelPath, Timestamp};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Every entry beneath the directory open as `root` (itself included, with path `None`),
/// sorted by path, regular files hashed in blocks of `block_size` bytes.
pub fn walk(root: BorrowedFd<'_>, block_size: u32) -> Result<Vec<Entry>> {
    let size = usize::try_from(block_size).unwrap_or(usize::MAX).max(1);
    walk_with(root, Some(vec![0; size]))
}

/// [`walk`] without reading files: no block hashes, sizes as the metadata says.
pub fn walk_metadata(root: BorrowedFd<'_>) -> Result<Vec<Entry>> {
    walk_with(root, None)
}

fn walk_with(root: BorrowedFd<'_>, buffer: Option<Vec<u8>>) -> Result<Vec<Entry>> {
    let mut walker = Walker {
        root,
        device: 0,
        buffer,
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
    /// One block of file data; `None`: files are not read.
    buffer: Option<Vec<u8>>,
    entries: Vec<Entry>,
}

type Result<T> = std::result::Result<T, ManifestError>;

fn shown(path: Option<&RelPath>) -> String {
    path.map_or_else(
        || ".".to_string(),
        |p| String::from_utf8_lossy(&p.to_bytes()).into_owned(),
    )
}

fn io_error(path: Option<&RelPath>, doing: &'static str) -> impl FnOnce(Errno) -> ManifestError {
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

/// The directory at `path` beneath the root, never through a symlink or a mount point.
fn open_dir(root: BorrowedFd<'_>, path: Option<&RelPath>) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
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
fn vanished(errno: Errno) -> bool {
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
        let dir = match open_dir(self.root, path.as_ref()) {
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
    fn member(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: RelPath,
    ) -> Result<Option<Entry>> {
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
        match entry.kind {
            FileKind::Symlink => match readlinkat(dir, name) {
                Ok(target) => entry.target = Some(target),
                Err(errno) if vanished(errno) => return Ok(None),
                Err(errno) => return Err(io_error(at.as_ref(), "reading the symlink")(errno)),
            },
            FileKind::Regular if self.buffer.is_some() => return self.hashed(dir, name, entry),
            _ => {}
        }
        Ok(Some(entry))
    }

    /// `entry` with its block hashes and the size actually read (the file may be written
    /// while it is read); `None` if it vanished or is no longer a regular file.
    fn hashed(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        mut entry: Entry,
    ) -> Result<Option<Entry>> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(errno) if vanished(errno) || errno == Errno::ELOOP => return Ok(None),
            Err(errno) => return Err(io_error(entry.path.as_ref(), "opening")(errno)),
        };
        let mut file = File::from(fd);
        let read_error = |source| ManifestError::Io {
            path: shown(entry.path.as_ref()),
            doing: "reading",
            source,
        };
        if !file.metadata().map_err(read_error)?.is_file() {
            // Replaced by another kind of entry since it was examined.
            return Ok(None);
        }
        let (blocks, size) = self.blocks(&mut file).map_err(read_error)?;
        entry.blocks = blocks;
        entry.size = size;
        Ok(Some(entry))
    }

    /// The hashes of every block of `file` and how many bytes it held.
    fn blocks(&mut self, file: &mut File) -> io::Result<(Vec<Hash>, u64)> {
        let (mut hashes, mut size) = (Vec::new(), 0u64);
        let Some(buffer) = &mut self.buffer else {
            return Ok((hashes, size));
        };
        loop {
            let filled = read_block(file, buffer)?;
            if filled == 0 {
                return Ok((hashes, size));
            }
            let block = buffer.get(..filled).unwrap_or_default();
            hashes.push(*blake3::hash(block).as_bytes());
            size += filled as u64;
            if filled < buffer.len() {
                return Ok((hashes, size));
            }
        }
    }
}

/// Reads from `file`'s position until `buffer` is full or the file ends; how many bytes
/// were read.
pub(crate) fn read_block(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buffer.get_mut(filled..).filter(|r| !r.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
