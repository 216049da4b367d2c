//! [`PathFollower`]: which paths an operation changes, with data operations (which name a
//! stream handle) resolved to their file's current path. Fed every operation in send order.

use crate::protocol::op::{Handle, Op, RelPath};
use std::collections::HashMap;

/// What an operation changes: a path beneath the root, or the root's own metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Path(RelPath),
    Root,
}

/// Replaces the `from` prefix of `path` by `to`, if `path` is `from` or beneath it.
fn moved(path: &RelPath, from: &RelPath, to: &RelPath) -> Option<RelPath> {
    let rest = path.components().strip_prefix(from.components())?;
    let mut bytes = to.to_bytes();
    for part in rest {
        bytes.push(b'/');
        bytes.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(part.as_os_str()));
    }
    RelPath::new(&bytes).ok()
}

/// Stream handles and the paths they stand for.
#[derive(Debug, Default)]
pub struct PathFollower {
    handles: HashMap<Handle, RelPath>,
}

impl PathFollower {
    /// `open`: the files open for writing when following starts (handle, current path).
    pub fn new(open: Vec<(Handle, Option<RelPath>)>) -> PathFollower {
        PathFollower {
            handles: open
                .into_iter()
                .filter_map(|(h, p)| p.map(|p| (h, p)))
                .collect(),
        }
    }

    /// Keeps the handle table in step; call for every operation, in send order.
    pub fn follow(&mut self, op: &Op) {
        match op {
            Op::Open { handle, path } | Op::Create { handle, path, .. } => {
                self.handles.insert(*handle, path.clone());
            }
            Op::Rename { from, to, flags } => {
                let exchange = flags & libc::RENAME_EXCHANGE != 0;
                for path in self.handles.values_mut() {
                    if let Some(new) = moved(path, from, to) {
                        *path = new;
                    } else if exchange && let Some(new) = moved(path, to, from) {
                        *path = new;
                    }
                }
            }
            _ => {}
        }
    }

    /// Forgets a closed handle (once its last operation has been resolved).
    pub fn closed(&mut self, op: &Op) {
        if let Op::Close { handle } = op {
            self.handles.remove(handle);
        }
    }

    /// What `op` changes, data operations resolved through the handle table.
    pub fn changed(&self, op: &Op) -> Vec<Changed> {
        let one = |p: &RelPath| vec![Changed::Path(p.clone())];
        match op {
            Op::Create { path, .. }
            | Op::Mkdir { path, .. }
            | Op::Mknod { path, .. }
            | Op::Symlink { path, .. }
            | Op::Unlink { path }
            | Op::Rmdir { path }
            | Op::RemoveTree { path } => one(path),
            Op::Link { existing, new } => {
                vec![Changed::Path(existing.clone()), Changed::Path(new.clone())]
            }
            Op::Rename { from, to, .. } => {
                vec![Changed::Path(from.clone()), Changed::Path(to.clone())]
            }
            Op::SetAttr { path, .. } | Op::SetXattr { path, .. } | Op::RemoveXattr { path, .. } => {
                match path {
                    Some(path) => one(path),
                    None => vec![Changed::Root],
                }
            }
            Op::Write { handle, .. } | Op::SetLen { handle, .. } | Op::Fallocate { handle, .. } => {
                self.handles.get(handle).map(one).unwrap_or_default()
            }
            Op::EmptyRoot => vec![Changed::Root],
            Op::Open { .. } | Op::Close { .. } | Op::Fsync { .. } | Op::FsyncDir { .. } => {
                Vec::new()
            }
        }
    }
}
