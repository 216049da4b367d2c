//! [`Difference`]: one way in which two replicas differ, named by its relative path.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Which tree: the first (`a`) or the second (`b`) argument of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "the first tree",
            Side::B => "the second tree",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "regular file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
        })
    }
}

/// A difference between the two trees. Values are given as (first tree, second tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The entry (and anything beneath it) exists in one tree only.
    OnlyIn {
        path: PathBuf,
        side: Side,
    },
    /// Different file types; nothing else is compared for this entry.
    Kind {
        path: PathBuf,
        a: FileKind,
        b: FileKind,
    },
    Size {
        path: PathBuf,
        a: u64,
        b: u64,
    },
    /// Same size, different bytes.
    Content {
        path: PathBuf,
    },
    /// Same size, `count` blocks of different content (compared by their hashes), the
    /// first at block index `first`.
    Blocks {
        path: PathBuf,
        count: u64,
        first: u64,
    },
    /// Permission bits (`st_mode & 0o7777`).
    Mode {
        path: PathBuf,
        a: u32,
        b: u32,
    },
    Owner {
        path: PathBuf,
        a: (u32, u32),
        b: (u32, u32),
    },
    /// Modification times, in whole seconds.
    Mtime {
        path: PathBuf,
        a: i64,
        b: i64,
    },
    SymlinkTarget {
        path: PathBuf,
        a: OsString,
        b: OsString,
    },
    /// Device numbers of device nodes.
    Rdev {
        path: PathBuf,
        a: u64,
        b: u64,
    },
    /// An xattr missing on one side (`None`) or with different values.
    Xattr {
        path: PathBuf,
        name: OsString,
        a: Option<Vec<u8>>,
        b: Option<Vec<u8>>,
    },
    /// Link counts of a non-directory.
    Nlink {
        path: PathBuf,
        a: u64,
        b: u64,
    },
    /// Both sides are hard-linked, but with different entries: each side names the first
    /// entry (in walk order) sharing this entry's inode.
    LinkGroup {
        path: PathBuf,
        a: PathBuf,
        b: PathBuf,
    },
}

impl Difference {
    /// The relative path of the entry that differs.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Difference::OnlyIn { path, .. }
            | Difference::Kind { path, .. }
            | Difference::Size { path, .. }
            | Difference::Content { path }
            | Difference::Blocks { path, .. }
            | Difference::Mode { path, .. }
            | Difference::Owner { path, .. }
            | Difference::Mtime { path, .. }
            | Difference::SymlinkTarget { path, .. }
            | Difference::Rdev { path, .. }
            | Difference::Xattr { path, .. }
            | Difference::Nlink { path, .. }
            | Difference::LinkGroup { path, .. } => path,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path().display())?;
        match self {
            Difference::OnlyIn { side, .. } => write!(f, "present only in {side}"),
            Difference::Kind { a, b, .. } => write!(f, "type {a} vs {b}"),
            Difference::Size { a, b, .. } => write!(f, "size {a} vs {b} bytes"),
            Difference::Content { .. } => write!(f, "content differs (same size)"),
            Difference::Blocks { count, first, .. } => write!(
                f,
                "content differs (same size) in {count} block(s), the first at block {first}"
            ),
            Difference::Mode { a, b, .. } => write!(f, "mode {a:04o} vs {b:04o}"),
            Difference::Owner { a, b, .. } => {
                write!(f, "owner {}:{} vs {}:{}", a.0, a.1, b.0, b.1)
            }
            Difference::Mtime { a, b, .. } => write!(f, "mtime {a} vs {b} (seconds)"),
            Difference::SymlinkTarget { a, b, .. } => write!(f, "symlink target {a:?} vs {b:?}"),
            Difference::Rdev { a, b, .. } => write!(f, "device {a:#x} vs {b:#x}"),
            Difference::Xattr { name, a, b, .. } => {
                let name = name.to_string_lossy();
                match (a, b) {
                    (Some(_), None) => write!(f, "xattr {name} present only in {}", Side::A),
                    (None, Some(_)) => write!(f, "xattr {name} present only in {}", Side::B),
                    _ => write!(f, "xattr {name} values differ"),
                }
            }
            Difference::Nlink { a, b, .. } => write!(f, "link count {a} vs {b}"),
            Difference::LinkGroup { a, b, .. } => write!(
                f,
                "hard-linked with {} in {} but with {} in {}",
                a.display(),
                Side::A,
                b.display(),
                Side::B
            ),
        }
    }
}
