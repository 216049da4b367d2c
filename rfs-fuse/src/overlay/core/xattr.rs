//! Extended attributes. `O_PATH` descriptors cannot carry xattr calls, so the object is
//! reached by `/proc/self/fd/N` (followed: lands on the object itself), except symlinks,
//! reached by their path below the root's descriptor with the `l*` calls (which act on the
//! link, not its target).

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd};

use bytes::Bytes;

use super::OverlayCore;
use crate::overlay::error::FsError;
use crate::overlay::inodes::{Location, Node};
use crate::overlay::replicate::Pending;
use crate::overlay::sys::{self, xattr};
use crate::protocol::op::Op;

/// `getxattr`/`listxattr` answer either the size (when asked with size 0) or the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

fn reply(
    size: u32,
    fetch: impl FnOnce(&mut [u8]) -> Result<usize, FsError>,
) -> Result<XattrReply, FsError> {
    if size == 0 {
        let n = fetch(&mut [])?;
        return Ok(XattrReply::Size(u32::try_from(n).unwrap_or(u32::MAX)));
    }
    let mut buf = vec![0u8; size as usize];
    let n = fetch(&mut buf)?;
    buf.truncate(n);
    Ok(XattrReply::Data(buf))
}

impl OverlayCore {
    /// The path to hand to the xattr calls, and whether to follow its last component.
    fn xattr_target(&self, node: &Node) -> Result<(CString, bool), FsError> {
        let st = sys::stat_fd(node.fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            return Ok((sys::proc_fd_path(node.fd.as_raw_fd()), true));
        }
        match &node.location {
            Location::At(path) => Ok((
                sys::proc_rel_path(self.inodes.root_fd().as_raw_fd(), &path.to_bytes())?,
                false,
            )),
            _ => Err(FsError::Sys {
                call: "xattr on an unlinked symlink",
                errno: libc::ENOENT,
            }),
        }
    }

    pub(crate) fn getxattr(
        &self,
        ino: u64,
        name: &OsStr,
        size: u32,
    ) -> Result<XattrReply, FsError> {
        let cname = sys::c_name(name)?;
        let _order = self.order_shared();
        let node = self.inodes.get(ino)?;
        let (path, follow) = self.xattr_target(&node)?;
        reply(size, |buf| xattr::get(&path, follow, &cname, buf))
    }

    pub(crate) fn listxattr(&self, ino: u64, size: u32) -> Result<XattrReply, FsError> {
        let _order = self.order_shared();
        let node = self.inodes.get(ino)?;
        let (path, follow) = self.xattr_target(&node)?;
        reply(size, |buf| xattr::list(&path, follow, buf))
    }

    pub(crate) fn setxattr(
        &self,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), FsError> {
        self.writable()?;
        let cname = sys::c_name(name)?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let node = self.inodes.get(ino)?;
            let (path, follow) = self.xattr_target(&node)?;
            // An unlinked object has no name to replicate to; the root is named by None.
            let pending = match node.location.target() {
                Some(path) => self.send(Op::SetXattr {
                    path,
                    name: name.to_os_string(),
                    value: Bytes::copy_from_slice(value),
                    flags,
                }),
                None => Pending::ready(),
            };
            (pending, xattr::set(&path, follow, &cname, value, flags))
        };
        self.settle("setxattr", pending, &result);
        result
    }

    pub(crate) fn removexattr(&self, ino: u64, name: &OsStr) -> Result<(), FsError> {
        self.writable()?;
        let cname = sys::c_name(name)?;
        let (pending, result) = {
            let _order = self.order_exclusive();
            let node = self.inodes.get(ino)?;
            let (path, follow) = self.xattr_target(&node)?;
            let pending = match node.location.target() {
                Some(path) => self.send(Op::RemoveXattr {
                    path,
                    name: name.to_os_string(),
                }),
                None => Pending::ready(),
            };
            (pending, xattr::remove(&path, follow, &cname))
        };
        self.settle("removexattr", pending, &result);
        result
    }
}
