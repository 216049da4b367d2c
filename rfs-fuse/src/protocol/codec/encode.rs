//! Encoding. It checks the same limits as decoding, so that we never send a message the
//! peer would reject (which would close the connection for everyone instead of failing one
//! operation).

use super::{attr_bit, op_tag, tag};
use crate::compare::FileKind;
use crate::protocol::error::{EncodeError, Invalid};
use crate::protocol::manifest::{
    Entry, Hash, MAX_BLOCK, MAX_HASHES, MAX_XATTRS, MIN_BLOCK, kind_code,
};
use crate::protocol::message::{
    AckLevel, MAX_NAME, MAX_PATH, MAX_SYMLINK_TARGET, MAX_TEXT, MAX_WRITE, MAX_XATTR_NAME,
    MAX_XATTR_VALUE, Message,
};
use crate::protocol::op::{Op, Owner, RelPath, SetAttr, Timestamp};
use bytes::{BufMut, BytesMut};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

type Result = std::result::Result<(), EncodeError>;

fn invalid(field: &'static str, problem: Invalid) -> EncodeError {
    EncodeError::Field { field, problem }
}

pub(super) fn message(msg: &Message, out: &mut BytesMut) -> Result {
    match msg {
        Message::Hello {
            version,
            module,
            node,
            session,
            roots,
        } => {
            out.put_u8(tag::HELLO);
            out.put_u16_le(*version);
            blob(out, "Hello.module", module.as_bytes(), MAX_NAME)?;
            blob(out, "Hello.node", node.as_bytes(), MAX_NAME)?;
            out.put_u64_le(*session);
            out.put_u16_le(*roots);
        }
        Message::HelloAck {
            version,
            resume_from,
        } => {
            out.put_u8(tag::HELLO_ACK);
            out.put_u16_le(*version);
            out.put_u64_le(*resume_from);
        }
        Message::Request { seq, root, op: o } => {
            out.put_u8(tag::REQUEST);
            out.put_u64_le(*seq);
            out.put_u16_le(*root);
            op(o, out)?;
        }
        Message::Reply { seq, result } => {
            out.put_u8(tag::REPLY);
            out.put_u64_le(*seq);
            match result {
                Ok(AckLevel::Received) => out.put_u8(tag::REPLY_RECEIVED),
                Ok(AckLevel::Applied) => out.put_u8(tag::REPLY_APPLIED),
                Err(e) => {
                    out.put_u8(tag::REPLY_ERROR);
                    out.put_i32_le(e.errno);
                    blob(out, "Reply.message", e.message.as_bytes(), MAX_TEXT)?;
                }
            }
        }
        Message::Goodbye { reason } => {
            out.put_u8(tag::GOODBYE);
            blob(out, "Goodbye.reason", reason.as_bytes(), MAX_TEXT)?;
        }
        Message::ManifestRequest {
            version,
            module,
            roots,
            block_size,
        } => {
            out.put_u8(tag::MANIFEST_REQUEST);
            out.put_u16_le(*version);
            blob(out, "ManifestRequest.module", module.as_bytes(), MAX_NAME)?;
            out.put_u16_le(*roots);
            block(out, *block_size)?;
        }
        Message::ManifestEntry { root, entry: e } => {
            out.put_u8(tag::MANIFEST_ENTRY);
            out.put_u16_le(*root);
            entry(out, e)?;
        }
        Message::ManifestBlocks { hashes } => {
            out.put_u8(tag::MANIFEST_BLOCKS);
            if hashes.is_empty() {
                return Err(invalid("ManifestBlocks.hashes", Invalid::Empty));
            }
            hash_list(out, "ManifestBlocks.hashes", hashes)?;
        }
        Message::ManifestEnd { entries } => {
            out.put_u8(tag::MANIFEST_END);
            out.put_u64_le(*entries);
        }
        Message::JournalRequest {
            version,
            module,
            roots,
        } => {
            out.put_u8(tag::JOURNAL_REQUEST);
            out.put_u16_le(*version);
            blob(out, "JournalRequest.module", module.as_bytes(), MAX_NAME)?;
            out.put_u16_le(*roots);
        }
        Message::JournalChunk { root, data } => {
            out.put_u8(tag::JOURNAL_CHUNK);
            out.put_u16_le(*root);
            if data.is_empty() {
                return Err(invalid("JournalChunk.data", Invalid::Empty));
            }
            blob(out, "JournalChunk.data", data, MAX_WRITE)?;
        }
        Message::JournalEnd { bytes } => {
            out.put_u8(tag::JOURNAL_END);
            out.put_u64_le(*bytes);
        }
    }
    Ok(())
}

fn block(out: &mut BytesMut, size: u32) -> Result {
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&size) {
        let problem = Invalid::OutOfRange {
            value: u64::from(size),
            min: u64::from(MIN_BLOCK),
            max: u64::from(MAX_BLOCK),
        };
        return Err(invalid("ManifestRequest.block_size", problem));
    }
    out.put_u32_le(size);
    Ok(())
}

fn entry(out: &mut BytesMut, e: &Entry) -> Result {
    opt_path(out, "ManifestEntry.path", e.path.as_ref())?;
    out.put_u8(kind_code(e.kind));
    out.put_u32_le(e.mode);
    out.put_u32_le(e.uid);
    out.put_u32_le(e.gid);
    out.put_u64_le(e.size);
    timestamp(out, "ManifestEntry.mtime", e.mtime)?;
    out.put_u64_le(e.nlink);
    out.put_u64_le(e.rdev);
    if e.target.is_some() != (e.kind == FileKind::Symlink) {
        let problem = Invalid::Inconsistent("a symlink target exactly for a symlink");
        return Err(invalid("ManifestEntry.target", problem));
    }
    match &e.target {
        None => out.put_u8(0),
        Some(target) => {
            out.put_u8(1);
            name(out, "ManifestEntry.target", target, MAX_SYMLINK_TARGET)?;
        }
    }
    xattr_hashes(out, &e.xattrs)?;
    if !e.blocks.is_empty() && e.kind != FileKind::Regular {
        let problem = Invalid::Inconsistent("block hashes only for a regular file");
        return Err(invalid("ManifestEntry.blocks", problem));
    }
    hash_list(out, "ManifestEntry.blocks", &e.blocks)
}

fn xattr_hashes(out: &mut BytesMut, xattrs: &[(OsString, Hash)]) -> Result {
    const FIELD: &str = "ManifestEntry.xattrs";
    len(out, FIELD, xattrs.len(), MAX_XATTRS)?;
    let sorted = xattrs.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0));
    if !sorted {
        return Err(invalid(FIELD, Invalid::Unsorted));
    }
    for (n, hash) in xattrs {
        name(out, FIELD, n, MAX_XATTR_NAME)?;
        out.put_slice(hash);
    }
    Ok(())
}

fn hash_list(out: &mut BytesMut, field: &'static str, hashes: &[Hash]) -> Result {
    len(out, field, hashes.len(), MAX_HASHES)?;
    for hash in hashes {
        out.put_slice(hash);
    }
    Ok(())
}

fn op(op: &Op, out: &mut BytesMut) -> Result {
    match op {
        Op::Open { handle, path: p } => {
            out.put_u8(op_tag::OPEN);
            out.put_u64_le(*handle);
            path(out, "Open.path", p)?;
        }
        Op::Create {
            handle,
            path: p,
            mode,
            owner: o,
            exclusive,
        } => {
            out.put_u8(op_tag::CREATE);
            out.put_u64_le(*handle);
            path(out, "Create.path", p)?;
            out.put_u32_le(*mode);
            owner(out, o);
            out.put_u8(u8::from(*exclusive));
        }
        Op::Write {
            handle,
            offset,
            data,
        } => {
            out.put_u8(op_tag::WRITE);
            out.put_u64_le(*handle);
            out.put_u64_le(*offset);
            blob(out, "Write.data", data, MAX_WRITE)?;
        }
        Op::SetLen { handle, len } => {
            out.put_u8(op_tag::SET_LEN);
            out.put_u64_le(*handle);
            out.put_u64_le(*len);
        }
        Op::Fallocate {
            handle,
            mode,
            offset,
            len,
        } => {
            out.put_u8(op_tag::FALLOCATE);
            out.put_u64_le(*handle);
            out.put_i32_le(*mode);
            out.put_u64_le(*offset);
            out.put_u64_le(*len);
        }
        Op::Fsync { handle, datasync } => {
            out.put_u8(op_tag::FSYNC);
            out.put_u64_le(*handle);
            out.put_u8(u8::from(*datasync));
        }
        Op::Close { handle } => {
            out.put_u8(op_tag::CLOSE);
            out.put_u64_le(*handle);
        }
        Op::Mkdir {
            path: p,
            mode,
            owner: o,
        } => {
            out.put_u8(op_tag::MKDIR);
            path(out, "Mkdir.path", p)?;
            out.put_u32_le(*mode);
            owner(out, o);
        }
        Op::Mknod {
            path: p,
            mode,
            rdev,
            owner: o,
        } => {
            out.put_u8(op_tag::MKNOD);
            path(out, "Mknod.path", p)?;
            out.put_u32_le(*mode);
            out.put_u64_le(*rdev);
            owner(out, o);
        }
        Op::Symlink {
            path: p,
            target,
            owner: o,
        } => {
            out.put_u8(op_tag::SYMLINK);
            path(out, "Symlink.path", p)?;
            name(out, "Symlink.target", target, MAX_SYMLINK_TARGET)?;
            owner(out, o);
        }
        Op::Link { existing, new } => {
            out.put_u8(op_tag::LINK);
            path(out, "Link.existing", existing)?;
            path(out, "Link.new", new)?;
        }
        Op::Unlink { path: p } => {
            out.put_u8(op_tag::UNLINK);
            path(out, "Unlink.path", p)?;
        }
        Op::Rmdir { path: p } => {
            out.put_u8(op_tag::RMDIR);
            path(out, "Rmdir.path", p)?;
        }
        Op::Rename { from, to, flags } => {
            out.put_u8(op_tag::RENAME);
            path(out, "Rename.from", from)?;
            path(out, "Rename.to", to)?;
            out.put_u32_le(*flags);
        }
        Op::SetAttr { path: p, attr } => {
            out.put_u8(op_tag::SET_ATTR);
            opt_path(out, "SetAttr.path", p.as_ref())?;
            set_attr(out, attr)?;
        }
        Op::SetXattr {
            path: p,
            name: n,
            value,
            flags,
        } => {
            out.put_u8(op_tag::SET_XATTR);
            opt_path(out, "SetXattr.path", p.as_ref())?;
            name(out, "SetXattr.name", n, MAX_XATTR_NAME)?;
            blob(out, "SetXattr.value", value, MAX_XATTR_VALUE)?;
            out.put_i32_le(*flags);
        }
        Op::RemoveXattr { path: p, name: n } => {
            out.put_u8(op_tag::REMOVE_XATTR);
            opt_path(out, "RemoveXattr.path", p.as_ref())?;
            name(out, "RemoveXattr.name", n, MAX_XATTR_NAME)?;
        }
        Op::FsyncDir { path: p } => {
            out.put_u8(op_tag::FSYNC_DIR);
            opt_path(out, "FsyncDir.path", p.as_ref())?;
        }
        Op::EmptyRoot => out.put_u8(op_tag::EMPTY_ROOT),
        Op::RemoveTree { path: p } => {
            out.put_u8(op_tag::REMOVE_TREE);
            path(out, "RemoveTree.path", p)?;
        }
    }
    Ok(())
}

/// `Option<path>`: 0 for None (the root), or 1 then the path.
fn opt_path(out: &mut BytesMut, field: &'static str, p: Option<&RelPath>) -> Result {
    match p {
        None => out.put_u8(0),
        Some(p) => {
            out.put_u8(1);
            path(out, field, p)?;
        }
    }
    Ok(())
}

fn set_attr(out: &mut BytesMut, attr: &SetAttr) -> Result {
    let bit = |present: bool, bit: u8| if present { bit } else { 0 };
    out.put_u8(
        bit(attr.mode.is_some(), attr_bit::MODE)
            | bit(attr.uid.is_some(), attr_bit::UID)
            | bit(attr.gid.is_some(), attr_bit::GID)
            | bit(attr.size.is_some(), attr_bit::SIZE)
            | bit(attr.atime.is_some(), attr_bit::ATIME)
            | bit(attr.mtime.is_some(), attr_bit::MTIME),
    );
    if let Some(mode) = attr.mode {
        out.put_u32_le(mode);
    }
    if let Some(uid) = attr.uid {
        out.put_u32_le(uid);
    }
    if let Some(gid) = attr.gid {
        out.put_u32_le(gid);
    }
    if let Some(size) = attr.size {
        out.put_u64_le(size);
    }
    if let Some(t) = attr.atime {
        timestamp(out, "SetAttr.attr.atime", t)?;
    }
    if let Some(t) = attr.mtime {
        timestamp(out, "SetAttr.attr.mtime", t)?;
    }
    Ok(())
}

fn timestamp(out: &mut BytesMut, field: &'static str, t: Timestamp) -> Result {
    if t.nsec >= 1_000_000_000 {
        return Err(invalid(field, Invalid::BadNanos(t.nsec)));
    }
    out.put_i64_le(t.sec);
    out.put_u32_le(t.nsec);
    Ok(())
}

fn owner(out: &mut BytesMut, owner: &Owner) {
    out.put_u32_le(owner.uid);
    out.put_u32_le(owner.gid);
}

/// A length prefix, refusing anything over `max`.
fn len(out: &mut BytesMut, field: &'static str, len: usize, max: usize) -> Result {
    let too_long = || {
        invalid(
            field,
            Invalid::TooLong {
                len: u64::try_from(len).unwrap_or(u64::MAX),
                max,
            },
        )
    };
    if len > max {
        return Err(too_long());
    }
    out.put_u32_le(u32::try_from(len).map_err(|_| too_long())?);
    Ok(())
}

fn blob(out: &mut BytesMut, field: &'static str, bytes: &[u8], max: usize) -> Result {
    len(out, field, bytes.len(), max)?;
    out.put_slice(bytes);
    Ok(())
}

/// A file name-like string handed to a system call: non-empty and NUL-free.
fn name(out: &mut BytesMut, field: &'static str, name: &OsStr, max: usize) -> Result {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(invalid(field, Invalid::Empty));
    }
    if bytes.contains(&0) {
        return Err(invalid(field, Invalid::Nul));
    }
    blob(out, field, bytes, max)
}

/// A path in its `/`-separated form, written component by component (no temporary copy).
fn path(out: &mut BytesMut, field: &'static str, path: &RelPath) -> Result {
    len(out, field, super::path_len(path), MAX_PATH)?;
    for (i, part) in path.components().iter().enumerate() {
        if i > 0 {
            out.put_u8(b'/');
        }
        out.put_slice(part.as_bytes());
    }
    Ok(())
}
