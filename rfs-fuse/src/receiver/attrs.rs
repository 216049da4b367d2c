//! `SetAttr` and xattrs on the final component, never following it, or on the root itself.

use super::beneath::Root;
use super::error::{At, Fail};
use super::object::Object;
use crate::protocol::op::{RelPath, SetAttr, Timestamp};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat, ftruncate};
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;

/// Apply the `Some` fields in this order: size, owner, mode, times. Owner before mode because
/// `chown` clears set-ID bits that the mode may set; times last because truncation moves
/// mtime. A symlink's mode is ignored (Linux has none); its owner and times are its own.
/// `path` None is the root directory itself: the same order, where a size fails (EISDIR,
/// as for any directory) before anything has been changed.
pub(super) fn set_attr(root: &Root, path: Option<&RelPath>, attr: &SetAttr) -> Result<(), Fail> {
    let at = root.locate_or_root(path)?;
    let pinned = if attr.size.is_some() || attr.mode.is_some() {
        Some(Object::open(&at)?)
    } else {
        None
    };
    if let (Some(size), Some(object)) = (attr.size, &pinned) {
        let len = i64::try_from(size).map_err(|_| {
            Fail::refused("refused: size beyond the largest file offset", Errno::EFBIG)
        })?;
        ftruncate(object.reopen_for_write()?, len).at("truncating")?;
    }
    if attr.uid.is_some() || attr.gid.is_some() {
        fchownat(
            &at.dir,
            at.name,
            attr.uid.map(Uid::from_raw),
            attr.gid.map(Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .at("setting the owner")?;
    }
    if let (Some(mode), Some(object)) = (attr.mode, &pinned) {
        object.chmod(mode)?;
    }
    if attr.atime.is_some() || attr.mtime.is_some() {
        utimensat(
            &at.dir,
            at.name,
            &timespec(attr.atime),
            &timespec(attr.mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .at("setting the times")?;
    }
    Ok(())
}

fn timespec(time: Option<Timestamp>) -> TimeSpec {
    match time {
        // An out-of-range nsec is passed on: the kernel answers EINVAL.
        Some(t) => TimeSpec::new(t.sec, i64::from(t.nsec)),
        None => TimeSpec::UTIME_OMIT,
    }
}

fn xattr_name(name: &OsStr) -> Result<CString, Fail> {
    CString::new(name.as_bytes())
        .map_err(|_| Fail::refused("refused: xattr name contains NUL", Errno::EINVAL))
}

pub(super) fn set_xattr(
    root: &Root,
    path: Option<&RelPath>,
    name: &OsStr,
    value: &[u8],
    flags: i32,
) -> Result<(), Fail> {
    let name = xattr_name(name)?;
    let at = root.locate_or_root(path)?;
    Object::open(&at)?.set_xattr(&name, value, flags)
}

pub(super) fn remove_xattr(root: &Root, path: Option<&RelPath>, name: &OsStr) -> Result<(), Fail> {
    let name = xattr_name(name)?;
    let at = root.locate_or_root(path)?;
    Object::open(&at)?.remove_xattr(&name)
}
