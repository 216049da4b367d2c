//! Tests of the wire format: round trips (hand-picked and seeded random), corruption (bit
//! flips, truncation, arbitrary chunking) and hostile input.

mod corruption;
mod hostile;
mod random;
mod roundtrip;

use super::codec;
use super::manifest::Entry;
use super::message::{AckLevel, Message, RemoteError};
use super::op::{Op, Owner, RelPath, SetAttr, Timestamp};
use super::stream::encode_message;
use crate::compare::FileKind;
use bytes::{Bytes, BytesMut};
use std::ffi::OsString;

fn path(s: &str) -> RelPath {
    RelPath::new(s.as_bytes()).unwrap()
}

fn payload(msg: &Message) -> Bytes {
    let mut out = BytesMut::new();
    codec::encode(msg, &mut out).unwrap();
    out.freeze()
}

/// A request to root 3 (not 0, so that a root field read as zero would show).
fn request(op: Op) -> Message {
    Message::Request {
        seq: 42,
        root: 3,
        op,
    }
}

const OWNER: Owner = Owner {
    uid: 1000,
    gid: 100,
};

/// Which `Op` variant, by an exhaustive match: adding a variant breaks this until the
/// samples cover it.
fn op_kind(op: &Op) -> usize {
    match op {
        Op::Open { .. } => 0,
        Op::Create { .. } => 1,
        Op::Write { .. } => 2,
        Op::SetLen { .. } => 3,
        Op::Fallocate { .. } => 4,
        Op::Fsync { .. } => 5,
        Op::Close { .. } => 6,
        Op::Mkdir { .. } => 7,
        Op::Mknod { .. } => 8,
        Op::Symlink { .. } => 9,
        Op::Link { .. } => 10,
        Op::Unlink { .. } => 11,
        Op::Rmdir { .. } => 12,
        Op::Rename { .. } => 13,
        Op::SetAttr { .. } => 14,
        Op::SetXattr { .. } => 15,
        Op::RemoveXattr { .. } => 16,
        Op::FsyncDir { .. } => 17,
        Op::EmptyRoot => 18,
        Op::RemoveTree { .. } => 19,
    }
}
const OP_KINDS: usize = 20;

/// Small messages: every message kind and every op variant, with ordinary values.
fn samples() -> Vec<Message> {
    let ops = vec![
        Op::Open {
            handle: 7,
            path: path("data/db.sqlite"),
        },
        Op::Create {
            handle: u64::MAX,
            path: path("a/new"),
            mode: 0o100644,
            owner: OWNER,
            exclusive: true,
        },
        Op::Write {
            handle: 7,
            offset: 4096,
            data: Bytes::from_static(b"hello, replica"),
        },
        Op::SetLen { handle: 7, len: 0 },
        Op::Fallocate {
            handle: 7,
            mode: 0x03,
            offset: 1 << 40,
            len: 4096,
        },
        Op::Fsync {
            handle: 7,
            datasync: false,
        },
        Op::Close { handle: 7 },
        Op::Mkdir {
            path: path("a/b"),
            mode: 0o755,
            owner: OWNER,
        },
        Op::Mknod {
            path: path("fifo"),
            mode: 0o010644,
            rdev: 0x0801,
            owner: OWNER,
        },
        Op::Symlink {
            path: path("link"),
            target: OsString::from("../outside/is/fine/as/a/target"),
            owner: OWNER,
        },
        Op::Link {
            existing: path("a/x"),
            new: path("b/y"),
        },
        Op::Unlink { path: path("a/x") },
        Op::Rmdir { path: path("a") },
        Op::Rename {
            from: path("tmp.123"),
            to: path("final"),
            flags: 1,
        },
        Op::SetAttr {
            path: Some(path("f")),
            attr: SetAttr {
                mode: Some(0o600),
                mtime: Some(Timestamp {
                    sec: -1,
                    nsec: 999_999_999,
                }),
                ..SetAttr::default()
            },
        },
        Op::SetXattr {
            path: Some(path("f")),
            name: OsString::from("user.checksum"),
            value: Bytes::from_static(b"\0\x01\x02"),
            flags: 1,
        },
        Op::RemoveXattr {
            path: Some(path("f")),
            name: OsString::from("user.checksum"),
        },
        Op::SetAttr {
            path: None,
            attr: SetAttr {
                mode: Some(0o1777),
                uid: Some(0),
                gid: Some(0),
                ..SetAttr::default()
            },
        },
        Op::SetXattr {
            path: None,
            name: OsString::from("trusted.root"),
            value: Bytes::from_static(b"r"),
            flags: 0,
        },
        Op::RemoveXattr {
            path: None,
            name: OsString::from("trusted.root"),
        },
        Op::FsyncDir { path: None },
        Op::FsyncDir {
            path: Some(path("a")),
        },
        Op::EmptyRoot,
        Op::RemoveTree { path: path("d/e") },
    ];
    let mut msgs: Vec<Message> = ops.into_iter().map(request).collect();
    msgs.extend([
        Message::Request {
            seq: 0,
            root: 0,
            op: Op::Close { handle: 1 },
        },
        Message::Request {
            seq: u64::MAX,
            root: u16::MAX,
            op: Op::EmptyRoot,
        },
        Message::Hello {
            version: 2,
            module: "mydb".into(),
            node: "node-1".into(),
            session: 0xDEAD_BEEF,
            roots: 2,
        },
        Message::HelloAck {
            version: 2,
            resume_from: 17,
        },
        Message::Reply {
            seq: 1,
            result: Ok(AckLevel::Received),
        },
        Message::Reply {
            seq: 1,
            result: Ok(AckLevel::Applied),
        },
        Message::Reply {
            seq: 2,
            result: Err(RemoteError::new(28, "No space left on device: données")),
        },
        Message::Goodbye {
            reason: "module stopping".into(),
        },
    ]);
    msgs.extend(manifest_samples());
    msgs
}

/// A regular file's manifest entry with two xattrs and three block hashes.
fn file_entry() -> Entry {
    Entry {
        path: Some(path("data/db.sqlite")),
        kind: FileKind::Regular,
        mode: 0o640,
        uid: 1000,
        gid: 100,
        size: 3 * 4096 - 1,
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 5,
        },
        nlink: 2,
        rdev: 0,
        target: None,
        xattrs: vec![
            (OsString::from("trusted.a"), [1; 32]),
            (OsString::from("user.b"), [2; 32]),
        ],
        blocks: vec![[3; 32], [4; 32], [5; 32]],
    }
}

fn manifest_samples() -> Vec<Message> {
    let root = Entry {
        path: None,
        kind: FileKind::Directory,
        xattrs: Vec::new(),
        blocks: Vec::new(),
        ..file_entry()
    };
    let link = Entry {
        path: Some(path("link")),
        kind: FileKind::Symlink,
        target: Some(OsString::from("../elsewhere")),
        blocks: Vec::new(),
        ..file_entry()
    };
    vec![
        Message::ManifestRequest {
            version: 3,
            module: "mydb".into(),
            roots: 2,
            block_size: 1 << 20,
        },
        Message::ManifestEntry {
            root: 1,
            entry: Box::new(file_entry()),
        },
        Message::ManifestEntry {
            root: 0,
            entry: Box::new(root),
        },
        Message::ManifestEntry {
            root: 0,
            entry: Box::new(link),
        },
        Message::ManifestBlocks {
            hashes: vec![[9; 32]; 2],
        },
        Message::ManifestEnd { entries: 12 },
        Message::JournalRequest {
            version: 3,
            module: "web".to_string(),
            roots: 2,
        },
        Message::JournalChunk {
            root: 1,
            data: Bytes::from_static(b"\x01\x03\x00\x00\x00abc"),
        },
        Message::JournalEnd { bytes: 8 },
    ]
}

fn frame_of(msg: &Message) -> Bytes {
    encode_message(msg).unwrap()
}
