//! Replicated operations. Namespace operations name files by [`RelPath`] (relative to the
//! replicated root); data operations use a stream [`Handle`] opened once by path, so that a
//! rename of an open file needs no path lookup on the secondary.

use bytes::Bytes;
use std::ffi::OsString;

/// A stream-level file handle, chosen by the primary, valid from `Open`/`Create` to `Close`.
pub type Handle = u64;

/// A path relative to the replicated root: one or more components, none empty, `.` or `..`,
/// none containing `/` or NUL. Built only through validation (`RelPath::new`), so a decoded
/// frame can never carry an escaping path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(Vec<OsString>);

/// Why a path is not a valid [`RelPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path {0:?}: replicated paths are relative to the replicated root")]
    Absolute(String),
    #[error("path {0:?} has an empty, `.` or `..` component")]
    BadComponent(String),
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    #[error("path of {0} bytes is longer than the limit of 4096")]
    TooLong(usize),
}

impl RelPath {
    /// Validate `/`-separated bytes, e.g. `b"dir/file"`.
    pub fn new(bytes: &[u8]) -> Result<RelPath, PathError> {
        use std::os::unix::ffi::OsStrExt;
        let shown = || String::from_utf8_lossy(bytes).into_owned();
        if bytes.is_empty() {
            return Err(PathError::Empty);
        }
        if bytes.len() > 4096 {
            return Err(PathError::TooLong(bytes.len()));
        }
        if bytes[0] == b'/' {
            return Err(PathError::Absolute(shown()));
        }
        if bytes.contains(&0) {
            return Err(PathError::Nul(shown()));
        }
        let mut parts = Vec::new();
        for part in bytes.split(|b| *b == b'/') {
            if part.is_empty() || part == b"." || part == b".." {
                return Err(PathError::BadComponent(shown()));
            }
            parts.push(std::ffi::OsStr::from_bytes(part).to_os_string());
        }
        Ok(RelPath(parts))
    }

    pub fn components(&self) -> &[OsString] {
        &self.0
    }

    /// The path as `/`-separated bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(c.as_bytes());
        }
        out
    }
}

/// A point in time as `utimensat(2)` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

/// File metadata changes (`setattr`): each `Some` is applied, without following a final
/// symlink. Times are explicit (the primary resolves "now" before sending) so that both
/// replicas hold the same values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timestamp>,
    pub mtime: Option<Timestamp>,
}

/// Owner of a new file, directory, node or symlink (the primary's caller's, as the kernel
/// applied it locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Open an existing regular file for writing under `handle`.
    Open {
        handle: Handle,
        path: RelPath,
    },
    /// Create a regular file (`exclusive`: fail if it exists) and open it under `handle`.
    Create {
        handle: Handle,
        path: RelPath,
        mode: u32,
        owner: Owner,
        exclusive: bool,
    },
    Write {
        handle: Handle,
        offset: u64,
        data: Bytes,
    },
    /// `ftruncate` through the handle.
    SetLen {
        handle: Handle,
        len: u64,
    },
    /// `fallocate(2)` with its mode bits (including punch hole / zero range).
    Fallocate {
        handle: Handle,
        mode: i32,
        offset: u64,
        len: u64,
    },
    /// Make the handle's file durable (`fdatasync` when `datasync`).
    Fsync {
        handle: Handle,
        datasync: bool,
    },
    Close {
        handle: Handle,
    },
    Mkdir {
        path: RelPath,
        mode: u32,
        owner: Owner,
    },
    /// Device nodes, FIFOs and sockets.
    Mknod {
        path: RelPath,
        mode: u32,
        rdev: u64,
        owner: Owner,
    },
    Symlink {
        path: RelPath,
        target: OsString,
        owner: Owner,
    },
    Link {
        existing: RelPath,
        new: RelPath,
    },
    Unlink {
        path: RelPath,
    },
    Rmdir {
        path: RelPath,
    },
    /// `renameat2(2)` with its flags (RENAME_NOREPLACE, RENAME_EXCHANGE).
    Rename {
        from: RelPath,
        to: RelPath,
        flags: u32,
    },
    /// `path` None is the replicated root itself.
    SetAttr {
        path: Option<RelPath>,
        attr: SetAttr,
    },
    /// `path` None is the replicated root itself.
    SetXattr {
        path: Option<RelPath>,
        name: OsString,
        value: Bytes,
        flags: i32,
    },
    /// `path` None is the replicated root itself.
    RemoveXattr {
        path: Option<RelPath>,
        name: OsString,
    },
    /// Make a directory's entries durable (`path` None is the root).
    FsyncDir {
        path: Option<RelPath>,
    },
    /// Remove everything beneath the replicated root, keeping the root directory itself and
    /// its metadata; every open handle is closed. Sent before a full copy onto a secondary
    /// that holds older content.
    EmptyRoot,
    /// Remove `path` and, for a directory, everything beneath it; absent is not an error.
    /// Sent by a resynchronisation before copying `path` again (its type may have changed).
    RemoveTree {
        path: RelPath,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_validated() {
        assert_eq!(RelPath::new(b"a/b").unwrap().to_bytes(), b"a/b");
        assert_eq!(RelPath::new(b""), Err(PathError::Empty));
        assert!(matches!(
            RelPath::new(b"/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        for bad in [&b"a/../b"[..], b"..", b"a//b", b"a/", b"./a", b"a/."] {
            assert!(
                matches!(RelPath::new(bad), Err(PathError::BadComponent(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(RelPath::new(b"a\0b"), Err(PathError::Nul(_))));
        assert!(matches!(
            RelPath::new(&[b'a'; 5000]),
            Err(PathError::TooLong(5000))
        ));
    }
}
