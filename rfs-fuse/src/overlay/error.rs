//! Errors, and the one place where they become an errno for the kernel.
//!
//! Like mountpoint-s3, the file system core returns typed errors and only the thin `fuser`
//! adapter turns them into a reply, through [`FsError::errno`]. Every variant maps to an errno
//! chosen on purpose: an application must see what the backing file system would have said,
//! or a value that tells it what went wrong in the overlay itself.

use std::path::PathBuf;

/// Why a file system request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// A system call on the backing file system failed: its errno is passed through unchanged,
    /// so the application sees exactly what it would have seen without the overlay.
    #[error("{call}: errno {errno}")]
    Sys { call: &'static str, errno: i32 },
    /// The kernel named an inode the table no longer knows (forgotten, or never handed out).
    #[error("unknown inode {0}")]
    UnknownInode(u64),
    /// The kernel named a file or directory handle that is not open.
    #[error("unknown handle {0}")]
    UnknownHandle(u64),
    /// A name the overlay refuses to resolve (`.`, `..`, empty, or containing `/`):
    /// resolving `..` from a backing descriptor would climb onto the mount itself.
    #[error("invalid name")]
    InvalidName,
    /// The relative path grew beyond what the replication stream can carry.
    #[error("path too long for the replication stream")]
    PathTooLong,
    /// The secondary's mount is read-only for applications.
    #[error("read-only overlay")]
    ReadOnly,
    /// Deliberately not implemented, so that the kernel uses its generic fallback.
    #[error("not implemented by the overlay")]
    NotImplemented,
}

impl FsError {
    /// The errno that goes back to the application.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Sys { errno, .. } => *errno,
            // The kernel's reference is stale: ESTALE is what NFS-like file systems answer.
            FsError::UnknownInode(_) => libc::ESTALE,
            FsError::UnknownHandle(_) => libc::EBADF,
            FsError::InvalidName => libc::EINVAL,
            FsError::PathTooLong => libc::ENAMETOOLONG,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotImplemented => libc::ENOSYS,
        }
    }

    /// The errno of the last failed system call, attributed to `call`.
    pub(crate) fn last_os(call: &'static str) -> FsError {
        FsError::sys(call, std::io::Error::last_os_error())
    }

    pub(crate) fn sys(call: &'static str, error: std::io::Error) -> FsError {
        FsError::Sys {
            call,
            // An io::Error without an OS code never comes from our system calls; EIO is the
            // honest answer if one ever does.
            errno: error.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// Why the overlay could not be mounted or unmounted. Always names the directory.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("/dev/fuse is not available (load the fuse module): {source}")]
    NoFuseDevice {
        #[source]
        source: std::io::Error,
    },
    #[error("{dir}: {what}: {source}")]
    Io {
        dir: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir}: a live FUSE file system is already mounted there")]
    AlreadyMounted { dir: PathBuf },
    /// A FUSE server is mounted there but does not answer (hung or stopped): neither
    /// stacked over nor torn down; the engine decides (stop the old daemon, then retry).
    #[error("{dir}: the FUSE server mounted there does not answer")]
    Unresponsive { dir: PathBuf },
    #[error("{dir}: a stale FUSE mount could not be cleaned after {attempts} attempts")]
    StaleMountPersists { dir: PathBuf, attempts: usize },
    #[error("{dir}: still in use, not unmounted (close the files open under it and retry)")]
    Busy { dir: PathBuf },
}

impl OverlayError {
    pub(crate) fn io(dir: &std::path::Path, what: &'static str, source: std::io::Error) -> Self {
        OverlayError::Io {
            dir: dir.to_path_buf(),
            what,
            source,
        }
    }
}
