//! [`ApplyError`]: what the receiver answers when an operation cannot be applied.

use crate::protocol::op::{Op, RelPath};
use nix::errno::Errno;

/// An operation that could not be applied on the secondary.
///
/// It carries the errno so that the primary can compare it with the result it got locally
/// (the same errno on both sides means the replicas did not diverge), and a message naming
/// the operation and its paths, e.g. `Rename a/b -> evil/b: resolving the parent directory:
/// refused: it is outside the replicated root or across a mount: EXDEV: Invalid cross-device
/// link`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {what}: {errno}")]
pub struct ApplyError {
    op: String,
    what: String,
    errno: Errno,
    refused: bool,
}

impl ApplyError {
    /// The errno, comparable with the primary's local result.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// True when the receiver refused the operation as hostile or out of contract (a path
    /// escaping the root, a write open of something other than a regular file, a misused
    /// handle): the caller should log it as a protocol violation, not as a mere divergence.
    pub fn is_refused(&self) -> bool {
        self.refused
    }

    /// The operation, as named in the message (`Rename a/b -> c`).
    pub fn op(&self) -> &str {
        &self.op
    }

    pub(crate) fn new(op: String, fail: Fail) -> ApplyError {
        ApplyError {
            op,
            what: fail.what.to_string(),
            errno: fail.errno,
            refused: fail.refused,
        }
    }
}

/// An internal failure, before it is named after its operation (naming allocates, so it is
/// done only on the error path).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fail {
    pub what: &'static str,
    pub errno: Errno,
    pub refused: bool,
}

impl Fail {
    /// An operation the receiver refuses on its own (not the kernel's answer).
    pub fn refused(what: &'static str, errno: Errno) -> Fail {
        Fail {
            what,
            errno,
            refused: true,
        }
    }
}

/// Attach a description of the step that failed to a system call's result.
pub(crate) trait At<T> {
    fn at(self, what: &'static str) -> Result<T, Fail>;
}

impl<T> At<T> for nix::Result<T> {
    fn at(self, what: &'static str) -> Result<T, Fail> {
        self.map_err(|errno| Fail {
            what,
            errno,
            refused: false,
        })
    }
}

fn shown(path: &RelPath) -> String {
    String::from_utf8_lossy(&path.to_bytes()).into_owned()
}

/// A path, or `(root)` for None.
fn shown_or_root(path: Option<&RelPath>) -> String {
    path.map_or_else(|| "(root)".to_string(), shown)
}

/// The operation as it appears in messages: its variant, handle and paths.
pub(crate) fn describe(op: &Op) -> String {
    match op {
        Op::Open { handle, path } => format!("Open #{handle} {}", shown(path)),
        Op::Create {
            handle,
            path,
            exclusive,
            ..
        } => format!(
            "Create #{handle} {}{}",
            shown(path),
            if *exclusive { " (exclusive)" } else { "" }
        ),
        Op::Write {
            handle,
            offset,
            data,
        } => format!("Write #{handle} {} bytes at {offset}", data.len()),
        Op::SetLen { handle, len } => format!("SetLen #{handle} to {len}"),
        Op::Fallocate {
            handle,
            mode,
            offset,
            len,
        } => format!("Fallocate #{handle} mode {mode:#x} {len} bytes at {offset}"),
        Op::Fsync { handle, datasync } => {
            format!("Fsync #{handle}{}", if *datasync { " (data)" } else { "" })
        }
        Op::Close { handle } => format!("Close #{handle}"),
        Op::Mkdir { path, .. } => format!("Mkdir {}", shown(path)),
        Op::Mknod { path, .. } => format!("Mknod {}", shown(path)),
        Op::Symlink { path, target, .. } => {
            format!("Symlink {} -> {}", shown(path), target.to_string_lossy())
        }
        Op::Link { existing, new } => format!("Link {} as {}", shown(existing), shown(new)),
        Op::Unlink { path } => format!("Unlink {}", shown(path)),
        Op::Rmdir { path } => format!("Rmdir {}", shown(path)),
        Op::Rename { from, to, flags } => format!(
            "Rename {} -> {}{}",
            shown(from),
            shown(to),
            if *flags == 0 {
                String::new()
            } else {
                format!(" (flags {flags:#x})")
            }
        ),
        Op::SetAttr { path, .. } => format!("SetAttr {}", shown_or_root(path.as_ref())),
        Op::SetXattr { path, name, .. } => format!(
            "SetXattr {} {}",
            shown_or_root(path.as_ref()),
            name.to_string_lossy()
        ),
        Op::RemoveXattr { path, name } => format!(
            "RemoveXattr {} {}",
            shown_or_root(path.as_ref()),
            name.to_string_lossy()
        ),
        Op::FsyncDir { path } => format!("FsyncDir {}", shown_or_root(path.as_ref())),
        Op::EmptyRoot => "EmptyRoot".to_string(),
        Op::RemoveTree { path } => format!("RemoveTree {}", shown(path)),
    }
}
