//! Acting on the final component of a path without ever following it.
//!
//! Name-based calls that take a no-follow flag (`fchownat`/`utimensat` with
//! `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`, `unlinkat`, `renameat2`,
//! `mkdirat`, `mknodat`, `symlinkat`, `openat(O_CREAT|O_EXCL)`) are used directly on the parent
//! descriptor. The rest — chmod, xattrs, and opening an existing file for writing — has no
//! such flag, so the final component is first pinned with `openat(O_PATH | O_NOFOLLOW)`
//! ([`Object`]) and then reached through the `/proc/self/fd/N` magic link of *that*
//! descriptor. The magic link lands on exactly the inode the descriptor pins and is not
//! re-followed even when that inode is a symlink, so:
//! - chmod is applied only to non-symlinks (Linux has no symlink modes: a mode for a symlink
//!   is ignored, as the primary's kernel ignores it);
//! - xattrs reach a symlink itself (`trusted.*` works as root; the kernel refuses `user.*`
//!   on symlinks, as it does on the primary);
//! - a write open happens only after `fstat` has shown a regular file, so a FIFO, a device
//!   node or a socket planted in the replica is never opened (opening a device can have side
//!   effects; a FIFO would block the stream).
//!
//! This needs procfs at `/proc`, checked once when the receiver starts ([`check_procfs`]).
//! `lsetxattr` on `/proc/self/fd/<parent>/<name>` was rejected: it re-resolves the name.

use super::beneath::Located;
use super::error::{At, Fail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmodat, fstat};
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};

/// The final component of a path, pinned by an `O_PATH | O_NOFOLLOW` descriptor.
#[derive(Debug)]
pub(crate) struct Object {
    fd: OwnedFd,
    stat: FileStat,
}

/// Check that `/proc/self/fd` is procfs, so that its entries are the magic links we rely on.
pub(crate) fn check_procfs() -> Result<(), Fail> {
    let fs = nix::sys::statfs::statfs("/proc/self/fd").at("checking /proc/self/fd")?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(Fail::refused(
            "/proc/self/fd is not procfs: the receiver needs /proc mounted",
            Errno::EOPNOTSUPP,
        ));
    }
    Ok(())
}

impl Object {
    pub fn open(at: &Located<'_>) -> Result<Object, Fail> {
        let fd = openat(
            &at.dir,
            at.name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .at("opening the file without following it")?;
        let stat = fstat(&fd).at("examining the file")?;
        Ok(Object { fd, stat })
    }

    pub fn kind(&self) -> SFlag {
        SFlag::from_bits_truncate(self.stat.st_mode & SFlag::S_IFMT.bits())
    }

    pub fn is_symlink(&self) -> bool {
        self.kind() == SFlag::S_IFLNK
    }

    fn proc_path(&self) -> Result<CString, Fail> {
        CString::new(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
            .map_err(|_| Fail::refused("building a /proc path", Errno::EINVAL))
    }

    /// Open the pinned file for writing, refusing anything but a regular file with the
    /// errno the kernel would give a no-follow write open (EISDIR, ELOOP) or EINVAL. Only
    /// EISDIR is an ordinary answer: the primary's kernel never sends a write open of a
    /// symlink or a special file to its FUSE daemon, so those are marked refused.
    pub fn reopen_for_write(&self) -> Result<OwnedFd, Fail> {
        match self.kind() {
            SFlag::S_IFREG => {}
            SFlag::S_IFDIR => return Err(Errno::EISDIR).at("opening for writing"),
            SFlag::S_IFLNK => {
                return Err(Fail::refused(
                    "refused: it is a symlink, never followed",
                    Errno::ELOOP,
                ));
            }
            _ => {
                return Err(Fail::refused(
                    "refused: only regular files are opened for writing",
                    Errno::EINVAL,
                ));
            }
        }
        nix::fcntl::open(
            self.proc_path()?.as_c_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .at("opening the file for writing")
    }

    /// Set the permission bits (`mode & 0o7777`); a no-op on a symlink.
    pub fn chmod(&self, mode: u32) -> Result<(), Fail> {
        if self.is_symlink() {
            return Ok(());
        }
        fchmodat(
            AT_FDCWD,
            self.proc_path()?.as_c_str(),
            Mode::from_bits_truncate(mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )
        .at("changing the mode")
    }

    pub fn set_xattr(&self, name: &CStr, value: &[u8], flags: i32) -> Result<(), Fail> {
        let path = self.proc_path()?;
        // SAFETY: `path` and `name` are NUL-terminated C strings that outlive the call;
        // `value` is a live slice of `value.len()` readable bytes. The kernel only reads them.
        let res = unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        };
        Errno::result(res).map(drop).at("setting the xattr")
    }

    pub fn remove_xattr(&self, name: &CStr) -> Result<(), Fail> {
        let path = self.proc_path()?;
        // SAFETY: `path` and `name` are NUL-terminated C strings that outlive the call.
        let res = unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) };
        Errno::result(res).map(drop).at("removing the xattr")
    }
}
