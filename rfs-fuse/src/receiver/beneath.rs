//! Resolving a [`RelPath`] beneath the replicated root.
//!
//! The parent directory is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)`: the kernel itself refuses (EXDEV) any resolution that leaves the root,
//! whether through an absolute symlink, a `..` symlink climbing above the root, or a mount
//! point inside the tree. Intermediate symlinks that stay beneath the root are followed, as
//! the primary's kernel followed them. The final component is returned as a bare name for the
//! caller's `*at()` call, which must never follow it (see [`super::object`]).
//!
//! Consequences worth knowing: an absolute symlink is refused even when it points inside the
//! root, and a file system mounted inside the replicated directory is out of reach (it is not
//! part of the replica: the primary's overlay serves one file system).

use super::error::{At, Fail};
use crate::protocol::op::RelPath;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `openat2` answers EAGAIN when a concurrent rename could have let a `..` escape; it is
/// safe to retry. Beyond this many attempts the error is reported.
const EAGAIN_RETRIES: usize = 16;

/// The replicated root, held as an `O_PATH` directory descriptor.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
}

/// A directory descriptor: the root itself (borrowed) or a parent opened beneath it.
#[derive(Debug)]
pub(crate) enum Dir<'r> {
    Root(BorrowedFd<'r>),
    Sub(OwnedFd),
}

impl AsFd for Dir<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Dir::Root(fd) => *fd,
            Dir::Sub(fd) => fd.as_fd(),
        }
    }
}

/// A path resolved up to its parent: the final component is still just a name.
#[derive(Debug)]
pub(crate) struct Located<'a> {
    pub dir: Dir<'a>,
    pub name: &'a OsStr,
}

impl Root {
    /// Open `path` (an administrator's configuration, so a symlink there is followed).
    pub fn open(path: &Path) -> Result<Root, Fail> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .at("opening the replicated root")?;
        Ok(Root { fd })
    }

    /// Adopt a descriptor opened by the caller, typically before a FUSE mount covered the
    /// directory. It must be a directory.
    pub fn from_fd(fd: OwnedFd) -> Result<Root, Fail> {
        let st = fstat(&fd).at("checking the replicated root")?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
            return Err(Fail::refused(
                "the replicated root is not a directory",
                Errno::ENOTDIR,
            ));
        }
        Ok(Root { fd })
    }

    /// Resolve every component but the last beneath the root.
    pub fn locate<'a>(&'a self, path: &'a RelPath) -> Result<Located<'a>, Fail> {
        let (name, parents) = match path.components().split_last() {
            Some(split) => split,
            // A RelPath always has a component; answer sanely anyway.
            None => return Err(Fail::refused("empty path", Errno::EINVAL)),
        };
        let dir = if parents.is_empty() {
            Dir::Root(self.fd.as_fd())
        } else {
            let mut joined = Vec::new();
            for (i, part) in parents.iter().enumerate() {
                if i > 0 {
                    joined.push(b'/');
                }
                joined.extend_from_slice(part.as_bytes());
            }
            Dir::Sub(self.open_beneath(OsStr::from_bytes(&joined))?)
        };
        Ok(Located { dir, name })
    }

    /// [`locate`](Self::locate), or for `None` the root itself, named `.` in the root's own
    /// descriptor (never a symlink, so the no-follow calls act on the root directory).
    pub fn locate_or_root<'a>(&'a self, path: Option<&'a RelPath>) -> Result<Located<'a>, Fail> {
        match path {
            Some(path) => self.locate(path),
            None => Ok(Located {
                dir: Dir::Root(self.fd.as_fd()),
                name: OsStr::new("."),
            }),
        }
    }

    fn open_beneath(&self, parent: &OsStr) -> Result<OwnedFd, Fail> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let mut attempts = 0;
        loop {
            match openat2(self.fd.as_fd(), parent, how) {
                Ok(fd) => return Ok(fd),
                Err(Errno::EAGAIN) if attempts < EAGAIN_RETRIES => attempts += 1,
                Err(Errno::EXDEV) => {
                    return Err(Fail::refused(
                        "resolving the parent directory: refused: it is outside the \
                         replicated root or across a mount",
                        Errno::EXDEV,
                    ));
                }
                Err(errno) => return Err(errno).at("resolving the parent directory"),
            }
        }
    }

    /// Open a directory for reading (to fsync it): the root when `path` is `None`, otherwise
    /// the directory named, whose final component must not be a symlink.
    pub fn open_dir(&self, path: Option<&RelPath>) -> Result<OwnedFd, Fail> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match path {
            None => openat(self.fd.as_fd(), ".", flags, Mode::empty()).at("opening the root"),
            Some(path) => {
                let at = self.locate(path)?;
                openat(&at.dir, at.name, flags, Mode::empty()).at("opening the directory")
            }
        }
    }
}
