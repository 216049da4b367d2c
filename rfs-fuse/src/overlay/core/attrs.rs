//! Attributes: getattr, setattr, readlink, statfs, access.

use std::os::fd::AsFd;

use fuser::FileAttr;

use super::{Caller, OverlayCore};
use crate::overlay::attr::{self, file_attr};
use crate::overlay::error::FsError;
use crate::overlay::inodes::{Node, ROOT};
use crate::overlay::replicate::Pending;
use crate::overlay::sys::{self, SetTime};
use crate::protocol::op::{Handle, Op, SetAttr, Timestamp};

/// What a `setattr` asks for. Times may be "now", resolved by the local file system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AttrChanges {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

impl AttrChanges {
    fn only_size(&self) -> bool {
        self.size.is_some()
            && self.mode.is_none()
            && self.uid.is_none()
            && self.gid.is_none()
            && self.atime.is_none()
            && self.mtime.is_none()
    }

    fn has_now(&self) -> bool {
        self.atime == Some(SetTime::Now) || self.mtime == Some(SetTime::Now)
    }
}

fn explicit(t: Option<SetTime>, applied: Timestamp) -> Option<Timestamp> {
    match t {
        None => None,
        Some(SetTime::At { sec, nsec }) => Some(Timestamp { sec, nsec }),
        // "now" as the file system recorded it (its clock and granularity), so both replicas
        // hold the same value.
        Some(SetTime::Now) => Some(applied),
    }
}

/// How a `setattr` travels in the stream.
enum Plan {
    /// `ftruncate` through a replicated handle (works for unlinked-but-open files too).
    SetLen(Handle, u64),
    /// By path, `None` being the root itself.
    SetAttr(Option<crate::protocol::op::RelPath>),
    /// Nothing the peer can name (an object out of the namespace).
    Local,
}

impl OverlayCore {
    /// The inode number shown by `stat`: the root's real one (FUSE calls it 1 internally).
    fn shown_ino(ino: u64, st: &libc::stat) -> u64 {
        if ino == ROOT { st.st_ino } else { ino }
    }

    pub(crate) fn getattr(&self, ino: u64) -> Result<FileAttr, FsError> {
        let node = self.inodes.get(ino)?;
        let st = sys::stat_fd(node.fd.as_fd())?;
        Ok(file_attr(Self::shown_ino(ino, &st), &st))
    }

    pub(crate) fn setattr(
        &self,
        ino: u64,
        changes: AttrChanges,
        fh: Option<u64>,
    ) -> Result<FileAttr, FsError> {
        self.writable()?;
        let (pending, result) = self.setattr_ordered(ino, &changes, fh);
        self.settle("setattr", pending, &result);
        let st = result?;
        Ok(file_attr(Self::shown_ino(ino, &st), &st))
    }

    fn setattr_ordered(
        &self,
        ino: u64,
        changes: &AttrChanges,
        fh: Option<u64>,
    ) -> (Pending, Result<libc::stat, FsError>) {
        let _order = self.order_exclusive();
        let node = match self.inodes.get(ino) {
            Ok(node) => node,
            Err(e) => return (Pending::ready(), Err(e)),
        };
        let given = fh
            .and_then(|fh| self.handles.file(fh).ok())
            .and_then(|f| f.stream);
        let plan = match (given, node.location.target(), changes.size) {
            (Some(h), _, Some(len)) if changes.only_size() => Plan::SetLen(h, len),
            (_, Some(path), _) => Plan::SetAttr(path),
            (_, None, Some(len)) => match given
                .or_else(|| self.handles.replicated_open_of(ino).and_then(|f| f.stream))
            {
                Some(h) => {
                    if !changes.only_size() {
                        log::warn!(
                            "rfs overlay: setattr of an unlinked open file: only its size is replicated"
                        );
                    }
                    Plan::SetLen(h, len)
                }
                None => Plan::Local,
            },
            (_, None, None) => Plan::Local,
        };
        match plan {
            Plan::Local => (Pending::ready(), apply(&node, changes)),
            Plan::SetLen(handle, len) => {
                let pending = self.send(Op::SetLen { handle, len });
                (pending, apply(&node, changes))
            }
            Plan::SetAttr(path) if changes.has_now() => {
                // "now" is only known once applied: apply, read back, then send explicit times.
                let result = apply(&node, changes);
                let pending = match &result {
                    Ok(st) => self.send(Op::SetAttr {
                        path,
                        attr: set_attr(changes, Some(st)),
                    }),
                    Err(_) => Pending::ready(),
                };
                (pending, result)
            }
            Plan::SetAttr(path) => {
                let pending = self.send(Op::SetAttr {
                    path,
                    attr: set_attr(changes, None),
                });
                (pending, apply(&node, changes))
            }
        }
    }

    pub(crate) fn readlink(&self, ino: u64) -> Result<Vec<u8>, FsError> {
        let node = self.inodes.get(ino)?;
        sys::readlink_fd(node.fd.as_fd())
    }

    pub(crate) fn statfs(&self) -> Result<libc::statfs, FsError> {
        sys::fstatfs(self.inodes.root_fd().as_fd())
    }

    /// `access(2)`. With `default_permissions` (always used) the kernel checks permissions
    /// itself and does not call this; it is answered from the mode bits for completeness
    /// (supplementary groups are not known here, so group access uses the primary group).
    pub(crate) fn access(&self, caller: Caller, ino: u64, mask: i32) -> Result<(), FsError> {
        let node = self.inodes.get(ino)?;
        let st = sys::stat_fd(node.fd.as_fd())?;
        if mask == libc::F_OK {
            return Ok(());
        }
        if self.read_only && mask & libc::W_OK != 0 {
            return Err(FsError::ReadOnly);
        }
        let mode = st.st_mode;
        let allowed = if caller.uid == 0 {
            // Root may read and write anything; execute needs one execute bit (or a dir).
            let any_x = mode & 0o111 != 0 || mode & libc::S_IFMT == libc::S_IFDIR;
            libc::R_OK | libc::W_OK | if any_x { libc::X_OK } else { 0 }
        } else {
            let bits = if caller.uid == st.st_uid {
                mode >> 6
            } else if caller.gid == st.st_gid {
                mode >> 3
            } else {
                mode
            } & 0o7;
            bits as i32
        };
        if mask & !allowed & (libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
            return Err(FsError::Sys {
                call: "access",
                errno: libc::EACCES,
            });
        }
        Ok(())
    }
}

/// Apply in the order the receiver must use too: owner, mode, size, times.
fn apply(node: &Node, c: &AttrChanges) -> Result<libc::stat, FsError> {
    let fd = node.fd.as_fd();
    if c.uid.is_some() || c.gid.is_some() {
        sys::chown_fd(fd, c.uid, c.gid)?;
    }
    if let Some(mode) = c.mode {
        sys::chmod_fd(fd, mode)?;
    }
    if let Some(size) = c.size {
        sys::truncate_fd(fd, size)?;
    }
    if c.atime.is_some() || c.mtime.is_some() {
        sys::utimens_fd(fd, c.atime, c.mtime)?;
    }
    sys::stat_fd(fd)
}

fn set_attr(c: &AttrChanges, applied: Option<&libc::stat>) -> SetAttr {
    let zero = Timestamp { sec: 0, nsec: 0 };
    let (a, m) = applied.map_or((zero, zero), |st| (attr::atime(st), attr::mtime(st)));
    SetAttr {
        mode: c.mode.map(|m| m & 0o7777),
        uid: c.uid,
        gid: c.gid,
        size: c.size,
        atime: explicit(c.atime, a),
        mtime: explicit(c.mtime, m),
    }
}
