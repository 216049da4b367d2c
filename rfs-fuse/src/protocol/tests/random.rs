//! A seeded random generator of valid messages, biased towards edge values (empty and
//! maximal sizes, extreme integers, odd bytes in names).

use super::super::message::{
    AckLevel, MAX_NAME, MAX_PATH, MAX_SYMLINK_TARGET, MAX_TEXT, MAX_WRITE, MAX_XATTR_NAME,
    MAX_XATTR_VALUE, Message, RemoteError,
};
use super::super::op::{Op, Owner, RelPath, SetAttr, Timestamp};
use bytes::Bytes;
use rand::Rng;
use rand::rngs::StdRng;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

pub fn message(rng: &mut StdRng) -> Message {
    match rng.random_range(0..10) {
        0 => Message::Hello {
            version: rng.random(),
            module: text(rng, MAX_NAME),
            node: text(rng, MAX_NAME),
            session: int(rng),
            roots: small(rng),
        },
        1 => Message::HelloAck {
            version: rng.random(),
            resume_from: int(rng),
        },
        2 => Message::Reply {
            seq: int(rng),
            result: match rng.random_range(0..3) {
                0 => Ok(AckLevel::Received),
                1 => Ok(AckLevel::Applied),
                _ => Err(RemoteError::new(rng.random(), text(rng, MAX_TEXT))),
            },
        },
        3 => Message::Goodbye {
            reason: text(rng, MAX_TEXT),
        },
        _ => Message::Request {
            seq: int(rng),
            root: small(rng),
            op: op(rng),
        },
    }
}

pub fn op(rng: &mut StdRng) -> Op {
    match rng.random_range(0..20) {
        0 => Op::Open {
            handle: int(rng),
            path: path(rng),
        },
        1 => Op::Create {
            handle: int(rng),
            path: path(rng),
            mode: rng.random(),
            owner: owner(rng),
            exclusive: rng.random(),
        },
        2 => Op::Write {
            handle: int(rng),
            offset: int(rng),
            data: bytes(rng, MAX_WRITE),
        },
        3 => Op::SetLen {
            handle: int(rng),
            len: int(rng),
        },
        4 => Op::Fallocate {
            handle: int(rng),
            mode: rng.random(),
            offset: int(rng),
            len: int(rng),
        },
        5 => Op::Fsync {
            handle: int(rng),
            datasync: rng.random(),
        },
        6 => Op::Close { handle: int(rng) },
        7 => Op::Mkdir {
            path: path(rng),
            mode: rng.random(),
            owner: owner(rng),
        },
        8 => Op::Mknod {
            path: path(rng),
            mode: rng.random(),
            rdev: int(rng),
            owner: owner(rng),
        },
        9 => Op::Symlink {
            path: path(rng),
            target: name(rng, MAX_SYMLINK_TARGET, true),
            owner: owner(rng),
        },
        10 => Op::Link {
            existing: path(rng),
            new: path(rng),
        },
        11 => Op::Unlink { path: path(rng) },
        12 => Op::Rmdir { path: path(rng) },
        13 => Op::Rename {
            from: path(rng),
            to: path(rng),
            flags: rng.random(),
        },
        14 => Op::SetAttr {
            path: rng.random_bool(0.5).then(|| path(rng)),
            attr: SetAttr {
                mode: rng.random_bool(0.5).then(|| rng.random()),
                uid: rng.random_bool(0.5).then(|| rng.random()),
                gid: rng.random_bool(0.5).then(|| rng.random()),
                size: rng.random_bool(0.5).then(|| int(rng)),
                atime: rng.random_bool(0.5).then(|| timestamp(rng)),
                mtime: rng.random_bool(0.5).then(|| timestamp(rng)),
            },
        },
        15 => Op::SetXattr {
            path: rng.random_bool(0.5).then(|| path(rng)),
            name: name(rng, MAX_XATTR_NAME, false),
            value: bytes(rng, MAX_XATTR_VALUE),
            flags: rng.random(),
        },
        16 => Op::RemoveXattr {
            path: rng.random_bool(0.5).then(|| path(rng)),
            name: name(rng, MAX_XATTR_NAME, false),
        },
        17 => Op::FsyncDir {
            path: rng.random_bool(0.5).then(|| path(rng)),
        },
        18 => Op::EmptyRoot,
        _ => Op::RemoveTree { path: path(rng) },
    }
}

/// A root index or root count: mostly small, sometimes extreme.
fn small(rng: &mut StdRng) -> u16 {
    match rng.random_range(0..6) {
        0 => u16::MAX,
        1 => rng.random(),
        _ => rng.random_range(0..4),
    }
}

/// Integers biased towards 0, 1 and the extremes.
fn int(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..8) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => rng.random_range(0..1 << 20),
        _ => rng.random(),
    }
}

/// A size in `0..=max`, often empty or maximal.
fn size(rng: &mut StdRng, max: usize, min: usize) -> usize {
    match rng.random_range(0..20) {
        0 => min,
        1 => max,
        2 => rng.random_range(min..=max),
        _ => rng.random_range(min..=max.min(64)),
    }
}

fn bytes(rng: &mut StdRng, max: usize) -> Bytes {
    // Maximal writes are costly in a debug build: keep them rare.
    let max = if max == MAX_WRITE && rng.random_range(0..10) != 0 {
        4096
    } else {
        max
    };
    let mut data = vec![0; size(rng, max, 0)];
    rng.fill(&mut data[..]);
    Bytes::from(data)
}

fn text(rng: &mut StdRng, max: usize) -> String {
    let mut s = String::new();
    let target = size(rng, max, 0);
    loop {
        let c = match rng.random_range(0..4) {
            0 => 'é',
            1 => '∞',
            2 => '🦀',
            _ => char::from(rng.random_range(b' '..=b'~')),
        };
        if s.len() + c.len_utf8() > target {
            return s;
        }
        s.push(c);
    }
}

/// Non-empty, NUL-free bytes; `/` allowed only if `slash`.
fn name(rng: &mut StdRng, max: usize, slash: bool) -> OsString {
    let len = size(rng, max, 1);
    let bytes = (0..len)
        .map(|_| {
            loop {
                let b: u8 = rng.random();
                if b != 0 && (slash || b != b'/') {
                    break b;
                }
            }
        })
        .collect();
    OsString::from_vec(bytes)
}

fn component(rng: &mut StdRng, len: usize) -> Vec<u8> {
    loop {
        let c: Vec<u8> = (0..len)
            .map(|_| match rng.random_range(0..4) {
                0 => b'.',
                1 => rng.random_range(0x80..=0xff), // not UTF-8 on its own
                _ => rng.random_range(b'a'..=b'z'),
            })
            .collect();
        if c != b"." && c != b".." {
            return c;
        }
    }
}

fn path(rng: &mut StdRng) -> RelPath {
    let mut bytes = Vec::new();
    if rng.random_range(0..20) == 0 {
        // Exactly the maximal length: 20 components of 200 bytes, then 76.
        for _ in 0..20 {
            bytes.extend(component(rng, 200));
            bytes.push(b'/');
        }
        bytes.extend(component(rng, MAX_PATH - bytes.len()));
        assert_eq!(bytes.len(), MAX_PATH);
    } else {
        for i in 0..rng.random_range(1..=4) {
            if i > 0 {
                bytes.push(b'/');
            }
            let len = rng.random_range(1..=12);
            bytes.extend(component(rng, len));
        }
    }
    RelPath::new(&bytes).unwrap()
}

fn owner(rng: &mut StdRng) -> Owner {
    Owner {
        uid: rng.random(),
        gid: rng.random(),
    }
}

fn timestamp(rng: &mut StdRng) -> Timestamp {
    Timestamp {
        sec: rng.random(),
        nsec: rng.random_range(0..1_000_000_000),
    }
}
