//! Thin, safe wrappers over the `*at()` system calls the overlay is made of.
//!
//! Everything is relative to a descriptor, never to a path through the mount: the daemon
//! must not walk the directory it is mounted on (that would re-enter FUSE and can deadlock).
//! Objects are held by `O_PATH|O_NOFOLLOW` descriptors; what `O_PATH` cannot do (chmod,
//! truncate, open for I/O, extended attributes) goes through `/proc/self/fd/N`, a "magic link"
//! that jumps straight to the backing object without resolving any name, so it also works
//! for files that have been unlinked while open.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::error::FsError;

pub(crate) type SysResult<T> = Result<T, FsError>;

fn check(ret: libc::c_int, call: &'static str) -> SysResult<libc::c_int> {
    if ret < 0 {
        Err(FsError::last_os(call))
    } else {
        Ok(ret)
    }
}

fn check_size(ret: libc::ssize_t, call: &'static str) -> SysResult<usize> {
    if ret < 0 {
        Err(FsError::last_os(call))
    } else {
        // A non-negative ssize_t always fits in usize.
        Ok(ret.unsigned_abs())
    }
}

/// A single path component as a C string. The caller has already refused `/`, `.` and `..`.
pub(crate) fn c_name(name: &OsStr) -> SysResult<CString> {
    CString::new(name.as_bytes()).map_err(|_| FsError::InvalidName)
}

/// `/proc/self/fd/N`: the backing object of `fd`, reached without a name lookup.
pub(crate) fn proc_fd_path(fd: RawFd) -> CString {
    // Digits only: no interior NUL is possible, but stay panic-free anyway.
    CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default()
}

/// `/proc/self/fd/ROOT/rel`: an object below the root, named relative to the backing root
/// directory (never through the mount). `rel` contains no `.`/`..` (it is a `RelPath`).
pub(crate) fn proc_rel_path(root: RawFd, rel: &[u8]) -> SysResult<CString> {
    let mut bytes = format!("/proc/self/fd/{root}/").into_bytes();
    if rel.is_empty() {
        bytes.push(b'.');
    } else {
        bytes.extend_from_slice(rel);
    }
    CString::new(bytes).map_err(|_| FsError::InvalidName)
}

fn own(fd: libc::c_int, call: &'static str) -> SysResult<OwnedFd> {
    let fd = check(fd, call)?;
    // SAFETY: `fd` was just returned by a successful system call that creates a descriptor,
    // so it is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> SysResult<OwnedFd> {
    // SAFETY: `dir` is a live descriptor and `name` a NUL-terminated string for the duration
    // of the call.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    own(fd, "openat")
}

/// Open the object held by `fd` (typically an `O_PATH` descriptor) for real I/O.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: i32) -> SysResult<OwnedFd> {
    let path = proc_fd_path(fd.as_raw_fd());
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    own(fd, "open(/proc/self/fd)")
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: `struct stat` is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; an empty `name` stats `dir` itself.
pub(crate) fn statat(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<libc::stat> {
    let mut st = zeroed_stat();
    let flags = libc::AT_SYMLINK_NOFOLLOW
        | if name.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
    // SAFETY: `st` is a valid out-pointer, `name` NUL-terminated, `dir` live.
    let ret = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) };
    check(ret, "fstatat")?;
    Ok(st)
}

pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> SysResult<libc::stat> {
    statat(fd, c"")
}

pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: live descriptor, NUL-terminated name.
    let ret = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) };
    check(ret, "mkdirat").map(drop)
}

pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u64) -> SysResult<()> {
    // SAFETY: live descriptor, NUL-terminated name.
    let ret = unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::mode_t,
            rdev as libc::dev_t,
        )
    };
    check(ret, "mknodat").map(drop)
}

pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> SysResult<()> {
    // SAFETY: both strings NUL-terminated, descriptor live.
    let ret = unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) };
    check(ret, "symlinkat").map(drop)
}

pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> SysResult<()> {
    // SAFETY: live descriptor, NUL-terminated name.
    let ret = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
    check(ret, "unlinkat").map(drop)
}

pub(crate) fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: u32,
) -> SysResult<()> {
    // SAFETY: live descriptors, NUL-terminated names.
    let ret = unsafe {
        libc::renameat2(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags as libc::c_uint,
        )
    };
    check(ret, "renameat2").map(drop)
}

/// Hard-link the object held by `fd` as `new_dir/new` (`AT_EMPTY_PATH`: needs
/// CAP_DAC_READ_SEARCH, which the root daemon has).
pub(crate) fn link_fd(fd: BorrowedFd<'_>, new_dir: BorrowedFd<'_>, new: &CStr) -> SysResult<()> {
    // SAFETY: live descriptors, NUL-terminated names.
    let ret = unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    check(ret, "linkat").map(drop)
}

/// The target of the symlink held by `fd` (`readlinkat` with an empty path).
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for `buf.len()` bytes; descriptor live.
    let ret = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = check_size(ret, "readlinkat")?;
    buf.truncate(n);
    Ok(buf)
}

/// Change the owner of the object held by `fd`, never following a symlink. `None` keeps the
/// current value.
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> SysResult<()> {
    // SAFETY: live descriptor, empty NUL-terminated path with AT_EMPTY_PATH.
    let ret = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid.unwrap_or(u32::MAX),
            gid.unwrap_or(u32::MAX),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(ret, "fchownat").map(drop)
}

/// chmod the object held by `fd` (not a symlink: Linux has no symlink modes).
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    let path = proc_fd_path(fd.as_raw_fd());
    // SAFETY: NUL-terminated path.
    let ret = unsafe { libc::chmod(path.as_ptr(), (mode & 0o7777) as libc::mode_t) };
    check(ret, "chmod").map(drop)
}

pub(crate) fn truncate_fd(fd: BorrowedFd<'_>, len: u64) -> SysResult<()> {
    let len = i64::try_from(len).map_err(|_| FsError::Sys {
        call: "truncate",
        errno: libc::EFBIG,
    })?;
    let path = proc_fd_path(fd.as_raw_fd());
    // SAFETY: NUL-terminated path.
    let ret = unsafe { libc::truncate(path.as_ptr(), len) };
    check(ret, "truncate").map(drop)
}

/// A time for `utimensat`: `None` leaves it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetTime {
    Now,
    At { sec: i64, nsec: u32 },
}

fn timespec(t: Option<SetTime>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(SetTime::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(SetTime::At { sec, nsec }) => libc::timespec {
            tv_sec: sec,
            tv_nsec: i64::from(nsec),
        },
    }
}

/// Set the times of the object held by `fd`, never following a symlink.
pub(crate) fn utimens_fd(
    fd: BorrowedFd<'_>,
    atime: Option<SetTime>,
    mtime: Option<SetTime>,
) -> SysResult<()> {
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: `times` holds two timespecs as utimensat requires; empty path + AT_EMPTY_PATH.
    let ret = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(ret, "utimensat").map(drop)
}

/// Read up to `size` bytes at `offset`, stopping early only at end of file.
pub(crate) fn pread_full(fd: BorrowedFd<'_>, size: usize, offset: u64) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; size];
    let mut done = 0;
    while done < size {
        let off = i64::try_from(offset + done as u64).map_err(|_| FsError::Sys {
            call: "pread",
            errno: libc::EINVAL,
        })?;
        // SAFETY: the destination range `done..size` lies inside `buf`.
        let ret = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf[done..].as_mut_ptr().cast(),
                size - done,
                off,
            )
        };
        match check_size(ret, "pread") {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(FsError::Sys { errno, .. }) if errno == libc::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Write all of `data` at `offset`.
pub(crate) fn pwrite_all(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> SysResult<()> {
    let mut done = 0;
    while done < data.len() {
        let off = i64::try_from(offset + done as u64).map_err(|_| FsError::Sys {
            call: "pwrite",
            errno: libc::EFBIG,
        })?;
        // SAFETY: the source range `done..` lies inside `data`.
        let ret = unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                data[done..].as_ptr().cast(),
                data.len() - done,
                off,
            )
        };
        match check_size(ret, "pwrite") {
            Ok(0) => {
                return Err(FsError::Sys {
                    call: "pwrite",
                    errno: libc::EIO,
                });
            }
            Ok(n) => done += n,
            Err(FsError::Sys { errno, .. }) if errno == libc::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(crate) fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> SysResult<()> {
    // SAFETY: live descriptor.
    let ret = unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    };
    check(ret, "fsync").map(drop)
}

pub(crate) fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, len: u64) -> SysResult<()> {
    let bad = || FsError::Sys {
        call: "fallocate",
        errno: libc::EFBIG,
    };
    let offset = i64::try_from(offset).map_err(|_| bad())?;
    let len = i64::try_from(len).map_err(|_| bad())?;
    // SAFETY: live descriptor.
    let ret = unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset, len) };
    check(ret, "fallocate").map(drop)
}

pub(crate) fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: i32) -> SysResult<i64> {
    // SAFETY: live descriptor.
    let ret = unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) };
    if ret < 0 {
        Err(FsError::last_os("lseek"))
    } else {
        Ok(ret)
    }
}

pub(crate) fn fstatfs(fd: BorrowedFd<'_>) -> SysResult<libc::statfs> {
    // SAFETY: `struct statfs` is plain old data; all-zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; `fstatfs` accepts O_PATH descriptors.
    let ret = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) };
    check(ret, "fstatfs")?;
    Ok(st)
}

/// Extended attributes by path. `follow = false` uses the `l*` variants (the object named by
/// the last component itself, even a symlink); `follow = true` is for `/proc/self/fd/N`,
/// whose magic link must be followed to reach the object.
pub(crate) mod xattr {
    use super::*;

    /// Read into `buf` (empty: only ask for the size); returns the value's size.
    pub(crate) fn get(path: &CStr, follow: bool, name: &CStr, buf: &mut [u8]) -> SysResult<usize> {
        // SAFETY: strings NUL-terminated; `buf` writable for its length (0 → size query).
        let ret = unsafe {
            if follow {
                libc::getxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            } else {
                libc::lgetxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            }
        };
        check_size(ret, "getxattr")
    }

    pub(crate) fn list(path: &CStr, follow: bool, buf: &mut [u8]) -> SysResult<usize> {
        // SAFETY: path NUL-terminated; `buf` writable for its length (0 → size query).
        let ret = unsafe {
            if follow {
                libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            } else {
                libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            }
        };
        check_size(ret, "listxattr")
    }

    pub(crate) fn set(
        path: &CStr,
        follow: bool,
        name: &CStr,
        value: &[u8],
        flags: i32,
    ) -> SysResult<()> {
        // SAFETY: strings NUL-terminated; `value` readable for its length.
        let ret = unsafe {
            if follow {
                libc::setxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    flags,
                )
            } else {
                libc::lsetxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    flags,
                )
            }
        };
        check(ret, "setxattr").map(drop)
    }

    pub(crate) fn remove(path: &CStr, follow: bool, name: &CStr) -> SysResult<()> {
        // SAFETY: strings NUL-terminated.
        let ret = unsafe {
            if follow {
                libc::removexattr(path.as_ptr(), name.as_ptr())
            } else {
                libc::lremovexattr(path.as_ptr(), name.as_ptr())
            }
        };
        check(ret, "removexattr").map(drop)
    }
}
