//! Decoding. Every read is bounds-checked and every length is checked against the field's
//! limit and the bytes actually present before anything is copied or allocated; nothing
//! here can panic on hostile input.

use super::{attr_bit, op_tag, tag};
use crate::protocol::error::{DecodeError, Invalid};
use crate::protocol::message::{
    AckLevel, MAX_NAME, MAX_PATH, MAX_SYMLINK_TARGET, MAX_TEXT, MAX_WRITE, MAX_XATTR_NAME,
    MAX_XATTR_VALUE, Message, RemoteError,
};
use crate::protocol::op::{Op, Owner, RelPath, SetAttr, Timestamp};
use bytes::Bytes;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

type Result<T> = std::result::Result<T, DecodeError>;

fn invalid(field: &'static str, problem: Invalid) -> DecodeError {
    DecodeError { field, problem }
}

pub(super) fn message(payload: &Bytes) -> Result<Message> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let msg = match r.u8("message")? {
        tag::HELLO => Message::Hello {
            version: r.u16("Hello.version")?,
            module: r.text("Hello.module", MAX_NAME)?,
            node: r.text("Hello.node", MAX_NAME)?,
            session: r.u64("Hello.session")?,
            roots: r.u16("Hello.roots")?,
        },
        tag::HELLO_ACK => Message::HelloAck {
            version: r.u16("HelloAck.version")?,
            resume_from: r.u64("HelloAck.resume_from")?,
        },
        tag::REQUEST => Message::Request {
            seq: r.u64("Request.seq")?,
            root: r.u16("Request.root")?,
            op: op(&mut r)?,
        },
        tag::REPLY => Message::Reply {
            seq: r.u64("Reply.seq")?,
            result: match r.u8("Reply.result")? {
                tag::REPLY_RECEIVED => Ok(AckLevel::Received),
                tag::REPLY_APPLIED => Ok(AckLevel::Applied),
                tag::REPLY_ERROR => Err(RemoteError {
                    errno: r.i32("Reply.errno")?,
                    message: r.text("Reply.message", MAX_TEXT)?,
                }),
                other => return Err(invalid("Reply.result", Invalid::UnknownTag(other))),
            },
        },
        tag::GOODBYE => Message::Goodbye {
            reason: r.text("Goodbye.reason", MAX_TEXT)?,
        },
        other => return Err(invalid("message", Invalid::UnknownTag(other))),
    };
    let trailing = r.left();
    if trailing > 0 {
        return Err(invalid("message", Invalid::Trailing(trailing)));
    }
    Ok(msg)
}

fn op(r: &mut Reader<'_>) -> Result<Op> {
    Ok(match r.u8("Request.op")? {
        op_tag::OPEN => Op::Open {
            handle: r.u64("Open.handle")?,
            path: r.path("Open.path")?,
        },
        op_tag::CREATE => Op::Create {
            handle: r.u64("Create.handle")?,
            path: r.path("Create.path")?,
            mode: r.u32("Create.mode")?,
            owner: r.owner("Create.owner")?,
            exclusive: r.bool("Create.exclusive")?,
        },
        op_tag::WRITE => Op::Write {
            handle: r.u64("Write.handle")?,
            offset: r.u64("Write.offset")?,
            data: r.blob("Write.data", MAX_WRITE)?,
        },
        op_tag::SET_LEN => Op::SetLen {
            handle: r.u64("SetLen.handle")?,
            len: r.u64("SetLen.len")?,
        },
        op_tag::FALLOCATE => Op::Fallocate {
            handle: r.u64("Fallocate.handle")?,
            mode: r.i32("Fallocate.mode")?,
            offset: r.u64("Fallocate.offset")?,
            len: r.u64("Fallocate.len")?,
        },
        op_tag::FSYNC => Op::Fsync {
            handle: r.u64("Fsync.handle")?,
            datasync: r.bool("Fsync.datasync")?,
        },
        op_tag::CLOSE => Op::Close {
            handle: r.u64("Close.handle")?,
        },
        op_tag::MKDIR => Op::Mkdir {
            path: r.path("Mkdir.path")?,
            mode: r.u32("Mkdir.mode")?,
            owner: r.owner("Mkdir.owner")?,
        },
        op_tag::MKNOD => Op::Mknod {
            path: r.path("Mknod.path")?,
            mode: r.u32("Mknod.mode")?,
            rdev: r.u64("Mknod.rdev")?,
            owner: r.owner("Mknod.owner")?,
        },
        op_tag::SYMLINK => Op::Symlink {
            path: r.path("Symlink.path")?,
            target: r.name("Symlink.target", MAX_SYMLINK_TARGET)?,
            owner: r.owner("Symlink.owner")?,
        },
        op_tag::LINK => Op::Link {
            existing: r.path("Link.existing")?,
            new: r.path("Link.new")?,
        },
        op_tag::UNLINK => Op::Unlink {
            path: r.path("Unlink.path")?,
        },
        op_tag::RMDIR => Op::Rmdir {
            path: r.path("Rmdir.path")?,
        },
        op_tag::RENAME => Op::Rename {
            from: r.path("Rename.from")?,
            to: r.path("Rename.to")?,
            flags: r.u32("Rename.flags")?,
        },
        op_tag::SET_ATTR => Op::SetAttr {
            path: r.opt_path("SetAttr.path")?,
            attr: set_attr(r)?,
        },
        op_tag::SET_XATTR => Op::SetXattr {
            path: r.opt_path("SetXattr.path")?,
            name: r.name("SetXattr.name", MAX_XATTR_NAME)?,
            value: r.blob("SetXattr.value", MAX_XATTR_VALUE)?,
            flags: r.i32("SetXattr.flags")?,
        },
        op_tag::REMOVE_XATTR => Op::RemoveXattr {
            path: r.opt_path("RemoveXattr.path")?,
            name: r.name("RemoveXattr.name", MAX_XATTR_NAME)?,
        },
        op_tag::FSYNC_DIR => Op::FsyncDir {
            path: r.opt_path("FsyncDir.path")?,
        },
        op_tag::EMPTY_ROOT => Op::EmptyRoot,
        op_tag::REMOVE_TREE => Op::RemoveTree {
            path: r.path("RemoveTree.path")?,
        },
        other => return Err(invalid("Request.op", Invalid::UnknownTag(other))),
    })
}

fn set_attr(r: &mut Reader<'_>) -> Result<SetAttr> {
    let present = r.u8("SetAttr.attr")?;
    if present & !attr_bit::ALL != 0 {
        return Err(invalid(
            "SetAttr.attr",
            Invalid::UnknownBits(present & !attr_bit::ALL),
        ));
    }
    let has = |bit: u8| present & bit != 0;
    Ok(SetAttr {
        mode: has(attr_bit::MODE)
            .then(|| r.u32("SetAttr.attr.mode"))
            .transpose()?,
        uid: has(attr_bit::UID)
            .then(|| r.u32("SetAttr.attr.uid"))
            .transpose()?,
        gid: has(attr_bit::GID)
            .then(|| r.u32("SetAttr.attr.gid"))
            .transpose()?,
        size: has(attr_bit::SIZE)
            .then(|| r.u64("SetAttr.attr.size"))
            .transpose()?,
        atime: has(attr_bit::ATIME)
            .then(|| r.timestamp("SetAttr.attr.atime"))
            .transpose()?,
        mtime: has(attr_bit::MTIME)
            .then(|| r.timestamp("SetAttr.attr.mtime"))
            .transpose()?,
    })
}

/// A cursor over one payload. Invariant: `pos <= buf.len()`.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, or `Truncated` without moving.
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8]> {
        let left = self.left();
        let truncated = || {
            invalid(
                field,
                Invalid::Truncated {
                    needed: u64::try_from(n).unwrap_or(u64::MAX),
                    left,
                },
            )
        };
        if n > left {
            return Err(truncated());
        }
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let bytes: &'a [u8] = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(field, N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| {
            invalid(
                field,
                Invalid::Truncated {
                    needed: N as u64,
                    left: bytes.len(),
                },
            )
        })
    }

    fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }
    fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn i32(&mut self, field: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    fn bool(&mut self, field: &'static str) -> Result<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(invalid(field, Invalid::BadBool(other))),
        }
    }

    /// A length prefix, checked against `max` (and later, by `take`, against what is left).
    fn len(&mut self, field: &'static str, max: usize) -> Result<usize> {
        let len = self.u32(field)?;
        let too_long = || {
            invalid(
                field,
                Invalid::TooLong {
                    len: u64::from(len),
                    max,
                },
            )
        };
        let len = usize::try_from(len).map_err(|_| too_long())?;
        if len > max {
            return Err(too_long());
        }
        Ok(len)
    }

    /// A length-prefixed byte string, borrowed from the payload.
    fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8]> {
        let len = self.len(field, max)?;
        self.take(field, len)
    }

    /// A length-prefixed byte string sharing the payload's buffer (no copy).
    fn blob(&mut self, field: &'static str, max: usize) -> Result<Bytes> {
        let bytes = self.bytes(field, max)?;
        // `bytes` is a sub-slice of `buf` by construction, which is all `slice_ref` requires.
        Ok(self.buf.slice_ref(bytes))
    }

    fn text(&mut self, field: &'static str, max: usize) -> Result<String> {
        let bytes = self.bytes(field, max)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| invalid(field, Invalid::NotUtf8))
    }

    /// A name handed to a system call (symlink target, xattr name): non-empty, NUL-free.
    fn name(&mut self, field: &'static str, max: usize) -> Result<OsString> {
        let bytes = self.bytes(field, max)?;
        if bytes.is_empty() {
            return Err(invalid(field, Invalid::Empty));
        }
        if bytes.contains(&0) {
            return Err(invalid(field, Invalid::Nul));
        }
        Ok(OsString::from_vec(bytes.to_vec()))
    }

    fn path(&mut self, field: &'static str) -> Result<RelPath> {
        let bytes = self.bytes(field, MAX_PATH)?;
        RelPath::new(bytes).map_err(|e| invalid(field, Invalid::Path(e)))
    }

    /// `Option<path>`: 0 (None, the root) or 1 then the path.
    fn opt_path(&mut self, field: &'static str) -> Result<Option<RelPath>> {
        if self.bool(field)? {
            Ok(Some(self.path(field)?))
        } else {
            Ok(None)
        }
    }

    fn owner(&mut self, field: &'static str) -> Result<Owner> {
        Ok(Owner {
            uid: self.u32(field)?,
            gid: self.u32(field)?,
        })
    }

    fn timestamp(&mut self, field: &'static str) -> Result<Timestamp> {
        let sec = self.i64(field)?;
        let nsec = self.u32(field)?;
        if nsec >= 1_000_000_000 {
            return Err(invalid(field, Invalid::BadNanos(nsec)));
        }
        Ok(Timestamp { sec, nsec })
    }
}
