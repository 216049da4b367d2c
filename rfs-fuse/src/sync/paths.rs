//! [`PathFollower`]: which paths an operation changes, with data operations (which name a
//! stream handle) resolved to their file's current path. Fed every operation in send order.
//!
//! Namespace operations change a path *whole* (what it names may be another object now).
//! Data and attribute operations change the *content* or the *metadata* of the object a path
//! names: they never make a path name another object, so only the bytes or attributes
//! touched need to travel.

use crate::protocol::op::{Handle, Op, RelPath};
use std::collections::HashMap;

/// What an operation changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The path and everything beneath it.
    Path(RelPath),
    /// Bytes `[start, end)` of the file at the path (its metadata too).
    Data { path: RelPath, start: u64, end: u64 },
    /// The file at the path was cut to `len` bytes (its metadata too).
    Cut { path: RelPath, len: u64 },
    /// The attributes or xattrs of what the path names.
    Metadata(RelPath),
    /// The root's own metadata.
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
            Op::SetAttr { path: None, .. }
            | Op::SetXattr { path: None, .. }
            | Op::RemoveXattr { path: None, .. } => vec![Changed::Root],
            Op::SetAttr {
                path: Some(path),
                attr,
            } => vec![match attr.size {
                Some(len) => Changed::Cut {
                    path: path.clone(),
                    len,
                },
                None => Changed::Metadata(path.clone()),
            }],
            Op::SetXattr {
                path: Some(path), ..
            } => vec![Changed::Metadata(path.clone())],
            // A copy of metadata cannot tell which xattrs the peer holds beyond ours.
            Op::RemoveXattr {
                path: Some(path), ..
            } => one(path),
            Op::Write { handle, .. } | Op::SetLen { handle, .. } | Op::Fallocate { handle, .. } => {
                let change = data_change(op);
                self.handles.get(handle).map(change).into_iter().collect()
            }
            Op::EmptyRoot => vec![Changed::Root],
            Op::Open { .. } | Op::Close { .. } | Op::Fsync { .. } | Op::FsyncDir { .. } => {
                Vec::new()
            }
        }
    }
}

/// The change a data operation makes to the file at the path its handle names.
fn data_change(op: &Op) -> impl Fn(&RelPath) -> Changed + '_ {
    move |path| {
        let path = path.clone();
        match *op {
            Op::Write {
                offset, ref data, ..
            } => Changed::Data {
                path,
                start: offset,
                end: offset.saturating_add(data.len() as u64),
            },
            Op::SetLen { len, .. } => Changed::Cut { path, len },
            Op::Fallocate {
                mode, offset, len, ..
            } => fallocated(path, mode, offset, len),
            _ => Changed::Metadata(path),
        }
    }
}

/// Collapsing or inserting a range shifts every byte after it; punching a hole or zeroing
/// changes the range; a mere allocation changes no byte read (a length it extends travels
/// with the file's metadata).
fn fallocated(path: RelPath, mode: i32, offset: u64, len: u64) -> Changed {
    if mode & (libc::FALLOC_FL_COLLAPSE_RANGE | libc::FALLOC_FL_INSERT_RANGE) != 0 {
        Changed::Cut { path, len: offset }
    } else if mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
        Changed::Data {
            path,
            start: offset,
            end: offset.saturating_add(len),
        }
    } else {
        Changed::Metadata(path)
    }
}
