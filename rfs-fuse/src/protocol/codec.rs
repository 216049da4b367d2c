//! Binary encoding of a [`Message`] (a frame's payload).
//!
//! Integers are little-endian and fixed-size; byte strings are a `u32` length followed by
//! the bytes; `bool` is one byte 0 or 1; `Option<T>` is one byte 0 (absent) or 1 then `T`.
//! The encoding is canonical: every valid message has exactly one encoding, and decoding
//! rejects anything else (unknown tags, booleans other than 0/1, trailing bytes...), so a
//! corrupted payload can never decode into a message that differs from what was sent
//! without also differing in its bytes.
//!
//! ```text
//! message  = tag:u8 body
//!   1 Hello     version:u16 module:str node:str session:u64 roots:u16
//!   2 HelloAck  version:u16 resume_from:u64
//!   3 Request   seq:u64 root:u16 op
//!   4 Reply     seq:u64 result:u8 (0 Received | 1 Applied | 2 errno:i32 message:str)
//!   5 Goodbye   reason:str
//!   6 ManifestRequest  version:u16 module:str roots:u16 block_size:u32 (4 KiB..=64 MiB)
//!   7 ManifestEntry    root:u16 entry
//!   8 ManifestBlocks   count:u32 (1..=16384) hash*count
//!   9 ManifestEnd      entries:u64
//!  10 JournalRequest   version:u16 module:str roots:u16
//!  11 JournalChunk     root:u16 data:bytes (1..=MAX_WRITE)
//!  12 JournalEnd       bytes:u64
//! entry    = path:Option<path> kind:u8 (0 regular, 1 directory, 2 symlink, 3 char device,
//!            4 block device, 5 FIFO, 6 socket) mode:u32 uid:u32 gid:u32 size:u64
//!            mtime:timestamp nlink:u64 rdev:u64 target:Option<name> (present exactly for a
//!            symlink) xattrs:u32 (≤ 1024) (name hash)* sorted by name, hashes:u32 (≤ 16384)
//!            hash* (regular files only); hash = 32 bytes
//! op       = tag:u8 body (tags 1..=20 in the order of `Op`'s variants)
//!   handle:u64  path:bytes  mode/flags:u32 or i32 as in `Op`  owner = uid:u32 gid:u32
//!   SetAttr, SetXattr, RemoveXattr, FsyncDir: path:Option<path> (absent = the root)
//!   SetAttr: path present:u8 (bit 0 mode, 1 uid, 2 gid, 3 size, 4 atime, 5 mtime) then the
//!            present fields in that order; timestamp = sec:i64 nsec:u32 (nsec < 10^9)
//!   EmptyRoot (19): no body
//!   RemoveTree (20): path
//! ```
//!
//! Limits (see [`message`](super::message)): paths through [`RelPath::new`](super::op::RelPath::new),
//! write data ≤ [`MAX_WRITE`](super::message::MAX_WRITE), xattr names 1..=255 bytes without
//! NUL, values ≤ 64 KiB, symlink targets 1..=4096 bytes without NUL, names ≤ 255 and texts
//! ≤ 16 KiB of UTF-8. Modes, flags, errnos and offsets are passed through unchecked: their
//! meaning is the receiver's business (it answers an errno), not the wire's.
//!
//! Decoding never allocates from a length it has not checked against both the field's limit
//! and the bytes actually present, and `Bytes` fields (write data, xattr values) are
//! slices of the received frame, not copies.

mod decode;
mod encode;

use super::error::{DecodeError, EncodeError};
use super::manifest::Entry;
use super::message::Message;
use super::op::{Op, RelPath};
use bytes::{Bytes, BytesMut};

/// Message tags.
mod tag {
    pub const HELLO: u8 = 1;
    pub const HELLO_ACK: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const REPLY: u8 = 4;
    pub const GOODBYE: u8 = 5;
    pub const MANIFEST_REQUEST: u8 = 6;
    pub const MANIFEST_ENTRY: u8 = 7;
    pub const MANIFEST_BLOCKS: u8 = 8;
    pub const MANIFEST_END: u8 = 9;
    pub const JOURNAL_REQUEST: u8 = 10;
    pub const JOURNAL_CHUNK: u8 = 11;
    pub const JOURNAL_END: u8 = 12;

    pub const REPLY_RECEIVED: u8 = 0;
    pub const REPLY_APPLIED: u8 = 1;
    pub const REPLY_ERROR: u8 = 2;
}

/// Op tags, in the order of `Op`'s variants.
mod op_tag {
    pub const OPEN: u8 = 1;
    pub const CREATE: u8 = 2;
    pub const WRITE: u8 = 3;
    pub const SET_LEN: u8 = 4;
    pub const FALLOCATE: u8 = 5;
    pub const FSYNC: u8 = 6;
    pub const CLOSE: u8 = 7;
    pub const MKDIR: u8 = 8;
    pub const MKNOD: u8 = 9;
    pub const SYMLINK: u8 = 10;
    pub const LINK: u8 = 11;
    pub const UNLINK: u8 = 12;
    pub const RMDIR: u8 = 13;
    pub const RENAME: u8 = 14;
    pub const SET_ATTR: u8 = 15;
    pub const SET_XATTR: u8 = 16;
    pub const REMOVE_XATTR: u8 = 17;
    pub const FSYNC_DIR: u8 = 18;
    pub const EMPTY_ROOT: u8 = 19;
    pub const REMOVE_TREE: u8 = 20;
}

/// `SetAttr` presence bits.
mod attr_bit {
    pub const MODE: u8 = 1 << 0;
    pub const UID: u8 = 1 << 1;
    pub const GID: u8 = 1 << 2;
    pub const SIZE: u8 = 1 << 3;
    pub const ATIME: u8 = 1 << 4;
    pub const MTIME: u8 = 1 << 5;
    pub const ALL: u8 = MODE | UID | GID | SIZE | ATIME | MTIME;
}

/// Appends the encoding of `msg` to `out`. On error `out` is left as it was.
pub fn encode(msg: &Message, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode::message(msg, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decodes one whole payload. `Bytes` fields of the result share `payload`'s buffer.
pub fn decode(payload: &Bytes) -> Result<Message, DecodeError> {
    decode::message(payload)
}

/// An upper bound of the encoded size of `msg` (exact up to a few bytes of fixed fields), so
/// that the encoder allocates once and copies a write's data once.
pub fn size_hint(msg: &Message) -> usize {
    // The largest fixed part, a `ManifestEntry` with its length prefixes, is 89 bytes.
    const FIXED: usize = 96;
    let variable = match msg {
        Message::Hello { module, node, .. } => module.len() + node.len(),
        Message::Request { op, .. } => op_variable_len(op),
        Message::HelloAck { .. } => 0,
        Message::Reply { result, .. } => result.as_ref().map_or_else(|e| e.message.len(), |_| 0),
        Message::Goodbye { reason } => reason.len(),
        Message::ManifestRequest { module, .. } => module.len(),
        Message::ManifestEntry { entry, .. } => entry_variable_len(entry),
        Message::ManifestBlocks { hashes } => hashes.len() * 32,
        Message::ManifestEnd { .. } | Message::JournalEnd { .. } => 0,
        Message::JournalRequest { module, .. } => module.len(),
        Message::JournalChunk { data, .. } => data.len(),
    };
    FIXED.saturating_add(variable)
}

fn op_variable_len(op: &Op) -> usize {
    use std::os::unix::ffi::OsStrExt;
    match op {
        Op::Write { data, .. } => data.len(),
        Op::Symlink { path, target, .. } => path_len(path) + target.as_bytes().len(),
        Op::Link {
            existing: a,
            new: b,
        }
        | Op::Rename { from: a, to: b, .. } => path_len(a) + path_len(b),
        Op::SetXattr {
            path, name, value, ..
        } => opt_path_len(path.as_ref()) + name.as_bytes().len() + value.len(),
        Op::RemoveXattr { path, name } => opt_path_len(path.as_ref()) + name.as_bytes().len(),
        Op::SetAttr { path, .. } | Op::FsyncDir { path } => opt_path_len(path.as_ref()),
        Op::Open { path, .. }
        | Op::Create { path, .. }
        | Op::Mkdir { path, .. }
        | Op::Mknod { path, .. }
        | Op::Unlink { path }
        | Op::Rmdir { path }
        | Op::RemoveTree { path } => path_len(path),
        Op::SetLen { .. }
        | Op::Fallocate { .. }
        | Op::Fsync { .. }
        | Op::Close { .. }
        | Op::EmptyRoot => 0,
    }
}

fn entry_variable_len(entry: &Entry) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let target = entry.target.as_ref().map_or(0, |t| t.as_bytes().len());
    let xattrs: usize = entry
        .xattrs
        .iter()
        .map(|(n, _)| 36 + n.as_bytes().len())
        .sum();
    opt_path_len(entry.path.as_ref()) + target + xattrs + entry.blocks.len() * 32
}

fn opt_path_len(path: Option<&RelPath>) -> usize {
    path.map_or(0, path_len)
}

/// Length of a path's `/`-separated form, without building it.
fn path_len(path: &RelPath) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let parts = path.components();
    let bytes: usize = parts.iter().map(|c| c.as_bytes().len()).sum();
    bytes + parts.len().saturating_sub(1)
}
