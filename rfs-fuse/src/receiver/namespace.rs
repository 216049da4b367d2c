//! Namespace operations: the final component is a name passed to a `*at()` call on the
//! parent descriptor, never followed.
//!
//! A new object gets its owner and then its exact mode (see [`own_and_chmod`]); if that
//! fails the object is removed again so that a failed operation leaves no half-made entry.

use super::apply::{own_and_chmod, perm};
use super::beneath::{Located, Root};
use super::error::{At, Fail};
use super::object::Object;
use crate::protocol::op::{Owner, RelPath};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags, openat, renameat2};
use nix::sys::stat::{Mode, SFlag, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, linkat, symlinkat, unlinkat};
use std::ffi::OsStr;

/// Undo a creation after a later step failed, keeping the first error.
fn undo<T>(at: &Located<'_>, kind: UnlinkatFlags, fail: Fail) -> Result<T, Fail> {
    // Best effort: the error reported is the step that failed.
    let _ = unlinkat(&at.dir, at.name, kind);
    Err(fail)
}

pub(super) fn mkdir(root: &Root, path: &RelPath, mode: u32, owner: Owner) -> Result<(), Fail> {
    let at = root.locate(path)?;
    mkdirat(&at.dir, at.name, perm(mode)).at("creating the directory")?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let result = openat(&at.dir, at.name, flags, Mode::empty())
        .at("opening the new directory")
        .and_then(|fd| own_and_chmod(&fd, owner, mode));
    match result {
        Ok(()) => Ok(()),
        Err(fail) => undo(&at, UnlinkatFlags::RemoveDir, fail),
    }
}

/// Device nodes, FIFOs and sockets (and plain files, as `mknod(2)` allows). They are never
/// opened: ownership is set by name without following, the mode through an `O_PATH` pin.
pub(super) fn mknod(
    root: &Root,
    path: &RelPath,
    mode: u32,
    rdev: u64,
    owner: Owner,
) -> Result<(), Fail> {
    let kind = SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits());
    let at = root.locate(path)?;
    mknodat(&at.dir, at.name, kind, perm(mode), rdev).at("creating the node")?;
    let result = chown_nofollow(&at, owner).and_then(|()| Object::open(&at)?.chmod(mode));
    match result {
        Ok(()) => Ok(()),
        Err(fail) => undo(&at, UnlinkatFlags::NoRemoveDir, fail),
    }
}

/// The target is stored as given: it is data, never resolved by the receiver (an escaping
/// target only matters if something follows it, and every path resolution here is confined).
pub(super) fn symlink(
    root: &Root,
    path: &RelPath,
    target: &OsStr,
    owner: Owner,
) -> Result<(), Fail> {
    let at = root.locate(path)?;
    symlinkat(target, &at.dir, at.name).at("creating the symlink")?;
    match chown_nofollow(&at, owner) {
        Ok(()) => Ok(()),
        Err(fail) => undo(&at, UnlinkatFlags::NoRemoveDir, fail),
    }
}

fn chown_nofollow(at: &Located<'_>, owner: Owner) -> Result<(), Fail> {
    fchownat(
        &at.dir,
        at.name,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .at("setting the owner")
}

/// `linkat` without `AT_SYMLINK_FOLLOW`: linking a symlink links the symlink itself.
pub(super) fn link(root: &Root, existing: &RelPath, new: &RelPath) -> Result<(), Fail> {
    let from = root.locate(existing)?;
    let to = root.locate(new)?;
    linkat(&from.dir, from.name, &to.dir, to.name, AtFlags::empty()).at("linking")
}

pub(super) fn unlink(root: &Root, path: &RelPath, kind: UnlinkatFlags) -> Result<(), Fail> {
    let at = root.locate(path)?;
    let what = match kind {
        UnlinkatFlags::RemoveDir => "removing the directory",
        UnlinkatFlags::NoRemoveDir => "removing the entry",
    };
    unlinkat(&at.dir, at.name, kind).at(what)
}

/// `renameat2` with `RENAME_NOREPLACE` and/or `RENAME_EXCHANGE`; other flags (whiteout,
/// unknown bits) are refused: the overlay never produces them.
pub(super) fn rename(root: &Root, from: &RelPath, to: &RelPath, flags: u32) -> Result<(), Fail> {
    let allowed = RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE;
    let flags = match RenameFlags::from_bits(flags) {
        Some(flags) if allowed.contains(flags) => flags,
        _ => {
            return Err(Fail::refused(
                "refused: rename flags other than NOREPLACE and EXCHANGE",
                Errno::EINVAL,
            ));
        }
    };
    let src = root.locate(from)?;
    let dst = root.locate(to)?;
    renameat2(&src.dir, src.name, &dst.dir, dst.name, flags).at("renaming")
}
