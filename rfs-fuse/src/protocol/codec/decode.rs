//! Decoding. Every read is bounds-checked and every length is checked against the field's
//! limit and the bytes actually present before anything is copied or allocated; nothing
//! here can panic on hostile input.

use super::{attr_bit, op_tag, tag};
use crate::compare::FileKind;
use crate::protocol::error::{DecodeError, Invalid};
use crate::protocol::manifest::{
    Entry, Hash, MAX_BLOCK, MAX_HASHES, MAX_XATTRS, MIN_BLOCK, kind_of,
};
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
        tag::MANIFEST_REQUEST => Message::ManifestRequest {
            version: r.u16("ManifestRequest.version")?,
            module: r.text("ManifestRequest.module", MAX_NAME)?,
            roots: r.u16("ManifestRequest.roots")?,
            block_size: r.block_size("ManifestRequest.block_size")?,
        },
        tag::MANIFEST_ENTRY => Message::ManifestEntry {
            root: r.u16("ManifestEntry.root")?,
            entry: Box::new(entry(&mut r)?),
        },
        tag::MANIFEST_BLOCKS => {
            let hashes = r.hashes("ManifestBlocks.hashes")?;
            if hashes.is_empty() {
                return Err(invalid("ManifestBlocks.hashes", Invalid::Empty));
            }
            Message::ManifestBlocks { hashes }
        }
        tag::MANIFEST_END => Message::ManifestEnd {
            entries: r.u64("ManifestEnd.entries")?,
        },
        tag::JOURNAL_REQUEST => Message::JournalRequest {
            version: r.u16("JournalRequest.version")?,
            module: r.text("JournalRequest.module", MAX_NAME)?,
            roots: r.u16("JournalRequest.roots")?,
        },
        tag::JOURNAL_CHUNK => {
            let root = r.u16("JournalChunk.root")?;
            let data = r.blob("JournalChunk.data", MAX_WRITE)?;
            if data.is_empty() {
                return Err(invalid("JournalChunk.data", Invalid::Empty));
            }
            Message::JournalChunk { root, data }
        }
        tag::JOURNAL_END => Message::JournalEnd {
            bytes: r.u64("JournalEnd.bytes")?,
        },
        other => return Err(invalid("message", Invalid::UnknownTag(other))),
    };
    let trailing = r.left();
    if trailing > 0 {
        return Err(invalid("message", Invalid::Trailing(trailing)));
    }
    Ok(msg)
}

fn entry(r: &mut Reader<'_>) -> Result<Entry> {
    let path = r.opt_path("ManifestEntry.path")?;
    let code = r.u8("ManifestEntry.kind")?;
    let kind =
        kind_of(code).ok_or_else(|| invalid("ManifestEntry.kind", Invalid::UnknownTag(code)))?;
    let mode = r.u32("ManifestEntry.mode")?;
    let uid = r.u32("ManifestEntry.uid")?;
    let gid = r.u32("ManifestEntry.gid")?;
    let size = r.u64("ManifestEntry.size")?;
    let mtime = r.timestamp("ManifestEntry.mtime")?;
    let nlink = r.u64("ManifestEntry.nlink")?;
    let rdev = r.u64("ManifestEntry.rdev")?;
    let target = r.target(kind)?;
    let xattrs = r.xattr_hashes()?;
    let blocks = r.hashes("ManifestEntry.blocks")?;
    if !blocks.is_empty() && kind != FileKind::Regular {
        let problem = Invalid::Inconsistent("block hashes only for a regular file");
        return Err(invalid("ManifestEntry.blocks", problem));
    }
    Ok(Entry {
        path,
        kind,
        mode,
        uid,
        gid,
        size,
        mtime,
        nlink,
        rdev,
        target,
        xattrs,
        blocks,
    })
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

    fn block_size(&mut self, field: &'static str) -> Result<u32> {
        let size = self.u32(field)?;
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&size) {
            let problem = Invalid::OutOfRange {
                value: u64::from(size),
                min: u64::from(MIN_BLOCK),
                max: u64::from(MAX_BLOCK),
            };
            return Err(invalid(field, problem));
        }
        Ok(size)
    }

    fn hash(&mut self, field: &'static str) -> Result<Hash> {
        self.array(field)
    }

    /// A count-prefixed list of hashes, the count checked against the limit and against the
    /// bytes present before anything is reserved.
    fn hashes(&mut self, field: &'static str) -> Result<Vec<Hash>> {
        let count = self.len(field, MAX_HASHES)?;
        let needed = count.saturating_mul(32);
        if needed > self.left() {
            let problem = Invalid::Truncated {
                needed: u64::try_from(needed).unwrap_or(u64::MAX),
                left: self.left(),
            };
            return Err(invalid(field, problem));
        }
        (0..count).map(|_| self.hash(field)).collect()
    }

    /// A symlink's target: present exactly when the entry is a symlink.
    fn target(&mut self, kind: FileKind) -> Result<Option<OsString>> {
        const FIELD: &str = "ManifestEntry.target";
        let present = self.bool(FIELD)?;
        if present != (kind == FileKind::Symlink) {
            let problem = Invalid::Inconsistent("a symlink target exactly for a symlink");
            return Err(invalid(FIELD, problem));
        }
        present
            .then(|| self.name(FIELD, MAX_SYMLINK_TARGET))
            .transpose()
    }

    /// Xattr names with the hashes of their values, names strictly increasing.
    fn xattr_hashes(&mut self) -> Result<Vec<(OsString, Hash)>> {
        const FIELD: &str = "ManifestEntry.xattrs";
        let count = self.len(FIELD, MAX_XATTRS)?;
        let mut out: Vec<(OsString, Hash)> = Vec::new();
        for _ in 0..count {
            let name = self.name(FIELD, MAX_XATTR_NAME)?;
            if out.last().is_some_and(|(last, _)| *last >= name) {
                return Err(invalid(FIELD, Invalid::Unsorted));
            }
            out.push((name, self.hash(FIELD)?));
        }
        Ok(out)
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
