//! `EmptyRoot`: removing everything beneath the replicated root, keeping the root itself.
//!
//! The walk goes from descriptor to descriptor, starting at the root's own descriptor (the
//! root's path may be covered by the secondary's FUSE mount): every entry is removed by name
//! with `unlinkat`, which never follows a symlink, and a directory is entered only through
//! `openat2(O_NOFOLLOW, RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)`, so a symlink is removed
//! itself (its target, inside or outside the root, is untouched) and a mount inside the
//! root is not crossed (refused with EXDEV, as every other operation refuses it).
//!
//! Each level of nesting holds one descriptor while its subdirectories are emptied.

use super::beneath::Root;
use super::error::{At, Fail};
use crate::protocol::op::RelPath;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

pub(super) fn empty_root(root: &Root) -> Result<(), Fail> {
    empty(root.open_dir(None)?)
}

/// `RemoveTree`: the entry at `path`, a directory with everything beneath it; gone already
/// is fine. Open handles on removed files keep working (they are unlinked-open files).
pub(super) fn remove_tree(root: &Root, path: &RelPath) -> Result<(), Fail> {
    let at = match root.locate(path) {
        Ok(at) => at,
        Err(fail) if fail.errno == Errno::ENOENT => return Ok(()),
        Err(fail) => return Err(fail),
    };
    let name = CString::new(at.name.as_bytes())
        .map_err(|_| Fail::refused("a name with a NUL byte", Errno::EINVAL))?;
    match unlinkat(&at.dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            empty(open_subdir(&at.dir, &name)?)?;
            match unlinkat(&at.dir, name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(errno) => Err(errno).at("removing a directory"),
            }
        }
        Err(errno) => Err(errno).at("removing an entry"),
    }
}

/// Removes every entry of the directory open (for reading) as `dir`.
fn empty(dir: OwnedFd) -> Result<(), Fail> {
    let mut dir = Dir::from_fd(dir).at("listing the directory")?;
    for name in names(&mut dir)? {
        match unlinkat(&dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => {
                empty(open_subdir(&dir, &name)?)?;
                match unlinkat(&dir, name.as_c_str(), UnlinkatFlags::RemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(errno) => return Err(errno).at("removing a directory"),
                }
            }
            Err(errno) => return Err(errno).at("removing an entry"),
        }
    }
    Ok(())
}

/// The entries' names, `.` and `..` left out, read before anything is removed.
fn names(dir: &mut Dir) -> Result<Vec<CString>, Fail> {
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.at("listing the directory")?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn open_subdir(parent: &impl AsFd, name: &CString) -> Result<OwnedFd, Fail> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_XDEV);
    match openat2(parent.as_fd(), name.as_c_str(), how) {
        Ok(fd) => Ok(fd),
        Err(Errno::EXDEV) => Err(Errno::EXDEV).at(
            "emptying a directory: it is a mount point inside the replicated root, not crossed",
        ),
        Err(errno) => Err(errno).at("opening a directory to empty it"),
    }
}
