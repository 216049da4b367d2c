//! Hostile input: lengths that would make a careless decoder allocate gigabytes, paths that
//! would escape the replicated root, and every other malformed field. Each is rejected with
//! the field named; nothing panics.

use super::super::error::{DecodeError, EncodeError, FrameError, Invalid, StreamError};
use super::super::frame::{FrameDecoder, MAX_FRAME, encode_frame};
use super::super::message::{MAX_PATH, MAX_WRITE, MAX_XATTR_NAME};
use super::super::op::PathError;
use super::super::stream::{MessageDecoder, write_message};
use super::*;

fn decode_err(payload: &[u8]) -> DecodeError {
    let payload = Bytes::copy_from_slice(payload);
    let err = codec::decode(&payload).unwrap_err();
    // Through both layers the frame is fine and the message is what is rejected.
    let mut dec = MessageDecoder::new();
    dec.push(&encode_frame(&payload).unwrap());
    assert_eq!(dec.next(), Err(StreamError::Decode(err.clone())));
    err
}

fn prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// The payload of `msg` with the length-prefixed `from` replaced by a length-prefixed `to`.
fn substitute(msg: &Message, from: &[u8], to: &[u8]) -> Vec<u8> {
    let good = payload(msg).to_vec();
    let from = prefixed(from);
    let at = good
        .windows(from.len())
        .position(|w| w == from)
        .expect("placeholder not found");
    [&good[..at], &prefixed(to)[..], &good[at + from.len()..]].concat()
}

#[test]
fn an_oversized_frame_length_is_rejected_from_its_four_bytes() {
    let mut dec = FrameDecoder::new();
    dec.push(&u32::MAX.to_le_bytes());
    let err = dec.next().unwrap_err();
    assert_eq!(
        err.to_string(),
        "frame of 4294967295 bytes exceeds the 1114112-byte limit"
    );
    assert_eq!(dec.buffered(), 0);
    // Sticky: later input is dropped, the error stays.
    dec.push(&[0; 100]);
    assert_eq!(dec.next(), Err(err.clone()));
    assert_eq!(dec.buffered(), 0);
    assert_eq!(dec.finish(), Err(err));

    let mut dec = FrameDecoder::new();
    dec.push(&(1u32 << 24).to_le_bytes());
    assert_eq!(
        dec.next().unwrap_err().to_string(),
        "frame of 16777216 bytes exceeds the 1114112-byte limit"
    );

    let mut dec = FrameDecoder::new();
    dec.push(&u32::try_from(MAX_FRAME + 1).unwrap().to_le_bytes());
    assert!(matches!(dec.next(), Err(FrameError::TooLarge { .. })));
}

#[test]
fn a_maximal_frame_is_accepted() {
    let payload = vec![0x5A; MAX_FRAME];
    let frame = encode_frame(&payload).unwrap();
    let mut dec = FrameDecoder::new();
    dec.push(&frame[..8]);
    assert_eq!(dec.next(), Ok(None));
    dec.push(&frame[8..]);
    assert_eq!(dec.next().unwrap().unwrap(), payload);
    assert_eq!(
        encode_frame(&[0; MAX_FRAME + 1]),
        Err(FrameError::TooLarge {
            len: MAX_FRAME as u64 + 1,
            max: MAX_FRAME
        })
    );
}

#[test]
fn a_crc_mismatch_says_so() {
    let mut frame = encode_frame(b"abc").unwrap().to_vec();
    frame[4] ^= 0xFF;
    let mut dec = FrameDecoder::new();
    dec.push(&frame);
    let err = dec.next().unwrap_err();
    assert!(matches!(err, FrameError::BadCrc { len: 3, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("frame of 3 bytes fails its CRC32 check")
    );
}

#[test]
fn hostile_lengths_inside_a_valid_frame_are_rejected_before_allocating() {
    let hello = Message::Hello {
        version: 2,
        module: "MODULE".into(),
        node: "n".into(),
        session: 1,
        roots: 1,
    };
    // u32::MAX as the length of a string: refused by the field's limit, nothing allocated.
    let mut bad = payload(&hello)[..3].to_vec();
    bad.extend(u32::MAX.to_le_bytes());
    bad.extend(b"MODULE");
    assert_eq!(
        decode_err(&bad).to_string(),
        "Hello.module: 4294967295 bytes exceed the 255-byte limit"
    );

    let write = request(Op::Write {
        handle: 1,
        offset: 0,
        data: Bytes::from_static(b"DATA"),
    });
    let huge = [u32::MAX.to_le_bytes(), 0u32.to_le_bytes()].concat();
    let over = u32::try_from(MAX_WRITE + 1).unwrap().to_le_bytes();
    for (len, expected) in [
        (
            &huge[..4],
            "Write.data: 4294967295 bytes exceed the 1048576-byte limit",
        ),
        (
            &over[..],
            "Write.data: 1048577 bytes exceed the 1048576-byte limit",
        ),
    ] {
        let good = payload(&write);
        let bad = [&good[..good.len() - 8], len, b"DATA"].concat();
        assert_eq!(decode_err(&bad).to_string(), expected);
    }
    // Within the limit but beyond the payload.
    let good = payload(&write);
    let short = [
        &good[..good.len() - 8],
        &u32::try_from(MAX_WRITE).unwrap().to_le_bytes()[..],
        b"DATA",
    ]
    .concat();
    assert_eq!(
        decode_err(&short).to_string(),
        "Write.data: needs 1048576 bytes but only 4 remain"
    );

    let open = request(Op::Open {
        handle: 1,
        path: path("P"),
    });
    // tag 1 + seq 8 + root 2 + op tag 1 + handle 8, then the path's length.
    let bad = [&payload(&open)[..20], &u32::MAX.to_le_bytes()[..], b"P"].concat();
    assert_eq!(
        decode_err(&bad).to_string(),
        "Open.path: 4294967295 bytes exceed the 4096-byte limit"
    );
}

/// One message per path-carrying field, with the placeholder path "PH" in that field.
fn path_fields() -> Vec<(&'static str, Message)> {
    let p = || path("PH");
    let q = || path("other");
    let ops = [
        (
            "Open.path",
            Op::Open {
                handle: 1,
                path: p(),
            },
        ),
        (
            "Create.path",
            Op::Create {
                handle: 1,
                path: p(),
                mode: 0o644,
                owner: OWNER,
                exclusive: false,
            },
        ),
        (
            "Mkdir.path",
            Op::Mkdir {
                path: p(),
                mode: 0o755,
                owner: OWNER,
            },
        ),
        (
            "Mknod.path",
            Op::Mknod {
                path: p(),
                mode: 0o644,
                rdev: 0,
                owner: OWNER,
            },
        ),
        (
            "Symlink.path",
            Op::Symlink {
                path: p(),
                target: "t".into(),
                owner: OWNER,
            },
        ),
        (
            "Link.existing",
            Op::Link {
                existing: p(),
                new: q(),
            },
        ),
        (
            "Link.new",
            Op::Link {
                existing: q(),
                new: p(),
            },
        ),
        ("Unlink.path", Op::Unlink { path: p() }),
        ("Rmdir.path", Op::Rmdir { path: p() }),
        (
            "Rename.from",
            Op::Rename {
                from: p(),
                to: q(),
                flags: 0,
            },
        ),
        (
            "Rename.to",
            Op::Rename {
                from: q(),
                to: p(),
                flags: 0,
            },
        ),
        (
            "SetAttr.path",
            Op::SetAttr {
                path: Some(p()),
                attr: SetAttr::default(),
            },
        ),
        (
            "SetXattr.path",
            Op::SetXattr {
                path: Some(p()),
                name: "user.a".into(),
                value: Bytes::new(),
                flags: 0,
            },
        ),
        (
            "RemoveXattr.path",
            Op::RemoveXattr {
                path: Some(p()),
                name: "user.a".into(),
            },
        ),
        ("FsyncDir.path", Op::FsyncDir { path: Some(p()) }),
    ];
    ops.into_iter().map(|(f, op)| (f, request(op))).collect()
}

#[test]
fn hostile_paths_are_rejected_naming_the_field() {
    let long = vec![b'a'; MAX_PATH + 1];
    let hostile: [&[u8]; 9] = [
        b"../x",
        b"a/../../etc",
        b"..",
        b"/etc/passwd",
        b"a\0b",
        b"",
        b"a//b",
        b"a/.",
        &long,
    ];
    for (field, msg) in path_fields() {
        for bad in hostile {
            let err = decode_err(&substitute(&msg, b"PH", bad));
            assert_eq!(err.field, field, "{err}");
            let expected_path_error = bad.len() <= MAX_PATH;
            assert_eq!(
                matches!(err.problem, Invalid::Path(_)),
                expected_path_error,
                "{err}"
            );
        }
    }
    let rename = request(Op::Rename {
        from: path("a"),
        to: path("PH"),
        flags: 0,
    });
    let err = decode_err(&substitute(&rename, b"PH", b"../x"));
    assert_eq!(
        err.to_string(),
        "Rename.to: path \"../x\" has an empty, `.` or `..` component"
    );
    let open = request(Op::Open {
        handle: 1,
        path: path("PH"),
    });
    let err = decode_err(&substitute(&open, b"PH", b"/etc/shadow"));
    assert_eq!(
        err.problem,
        Invalid::Path(PathError::Absolute("/etc/shadow".into()))
    );
}

#[test]
fn malformed_fields_are_rejected_naming_the_field() {
    let check = |bad: &[u8], expected: &str| assert_eq!(decode_err(bad).to_string(), expected);
    check(b"", "message: needs 1 bytes but only 0 remain");
    check(&[0], "message: unknown tag 0");
    check(&[13], "message: unknown tag 13");
    check(
        &[11, 0, 0, 0, 0, 0, 0],
        "JournalChunk.data: must not be empty",
    );
    let goodbye = payload(&Message::Goodbye { reason: "x".into() });
    check(
        &[&goodbye[..], &[0][..]].concat(),
        "message: 1 unexpected trailing bytes",
    );

    // The op tag follows tag 1 + seq 8 + root 2.
    let close = payload(&request(Op::Close { handle: 9 }));
    let mut bad = close.to_vec();
    bad[11] = 21;
    check(&bad, "Request.op: unknown tag 21");
    bad[11] = 0;
    check(&bad, "Request.op: unknown tag 0");
    let empty = payload(&request(Op::EmptyRoot));
    assert_eq!(empty.len(), 12);
    check(
        &[&empty[..], &[0][..]].concat(),
        "message: 1 unexpected trailing bytes",
    );
    check(
        &empty[..10],
        "Request.root: needs 2 bytes but only 1 remain",
    );
    check(&empty[..11], "Request.op: needs 1 bytes but only 0 remain");

    let reply = payload(&Message::Reply {
        seq: 1,
        result: Ok(AckLevel::Applied),
    });
    let mut bad = reply.to_vec();
    bad[9] = 3;
    check(&bad, "Reply.result: unknown tag 3");

    let fsync = payload(&request(Op::Fsync {
        handle: 1,
        datasync: true,
    }));
    let mut bad = fsync.to_vec();
    *bad.last_mut().unwrap() = 2;
    check(&bad, "Fsync.datasync: invalid boolean 2 (must be 0 or 1)");

    let dir = payload(&request(Op::FsyncDir { path: None }));
    let mut bad = dir.to_vec();
    *bad.last_mut().unwrap() = 2;
    check(&bad, "FsyncDir.path: invalid boolean 2 (must be 0 or 1)");
    // The root-capable paths: the presence byte right after the op tag (payload byte 12).
    let root_ops = [
        (
            "SetAttr.path",
            Op::SetAttr {
                path: None,
                attr: SetAttr::default(),
            },
        ),
        (
            "SetXattr.path",
            Op::SetXattr {
                path: None,
                name: "user.a".into(),
                value: Bytes::new(),
                flags: 0,
            },
        ),
        (
            "RemoveXattr.path",
            Op::RemoveXattr {
                path: None,
                name: "user.a".into(),
            },
        ),
    ];
    for (field, op) in root_ops {
        let mut bad = payload(&request(op)).to_vec();
        assert_eq!(bad[12], 0);
        bad[12] = 2;
        check(
            &bad,
            &format!("{field}: invalid boolean 2 (must be 0 or 1)"),
        );
    }

    let attr = |attr| {
        payload(&request(Op::SetAttr {
            path: Some(path("f")),
            attr,
        }))
    };
    let mut bad = attr(SetAttr::default()).to_vec();
    *bad.last_mut().unwrap() = 0x40;
    check(&bad, "SetAttr.attr: unknown flag bits 0x40");
    let time = Timestamp {
        sec: 0,
        nsec: 999_999_999,
    };
    let mut bad = attr(SetAttr {
        atime: Some(time),
        ..SetAttr::default()
    })
    .to_vec();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&1_000_000_000u32.to_le_bytes());
    check(
        &bad,
        "SetAttr.attr.atime: 1000000000 nanoseconds is not below one second",
    );

    let xattr = request(Op::RemoveXattr {
        path: Some(path("f")),
        name: "NM".into(),
    });
    check(
        &substitute(&xattr, b"NM", b""),
        "RemoveXattr.name: must not be empty",
    );
    check(
        &substitute(&xattr, b"NM", b"user.\0"),
        "RemoveXattr.name: must not contain a NUL byte",
    );
    check(
        &substitute(&xattr, b"NM", &[b'n'; MAX_XATTR_NAME + 1]),
        "RemoveXattr.name: 256 bytes exceed the 255-byte limit",
    );
    let link = request(Op::Symlink {
        path: path("l"),
        target: "TG".into(),
        owner: OWNER,
    });
    check(
        &substitute(&link, b"TG", b""),
        "Symlink.target: must not be empty",
    );
    check(
        &substitute(&link, b"TG", b"a\0"),
        "Symlink.target: must not contain a NUL byte",
    );
    check(
        &substitute(&link, b"TG", &[b't'; 4097]),
        "Symlink.target: 4097 bytes exceed the 4096-byte limit",
    );
    let hello = Message::Hello {
        version: 2,
        module: "m".into(),
        node: "ND".into(),
        session: 0,
        roots: 2,
    };
    check(
        &substitute(&hello, b"ND", b"\xff\xfe"),
        "Hello.node: must be valid UTF-8",
    );
    let good = payload(&hello);
    check(
        &good[..good.len() - 1],
        "Hello.roots: needs 2 bytes but only 1 remain",
    );
}

#[test]
fn invalid_messages_are_refused_on_encode_leaving_the_buffer_unchanged() {
    let refused = |msg: Message, field: &str| {
        let mut out = BytesMut::from(&b"earlier frames"[..]);
        let err = write_message(&mut out, &msg).unwrap_err();
        assert!(
            matches!(&err, EncodeError::Field { field: f, .. } if *f == field),
            "{err}"
        );
        assert_eq!(&out[..], b"earlier frames");
        err
    };
    let err = refused(
        request(Op::Write {
            handle: 1,
            offset: 0,
            data: Bytes::from(vec![0; MAX_WRITE + 1]),
        }),
        "Write.data",
    );
    assert_eq!(
        err.to_string(),
        "cannot encode Write.data: 1048577 bytes exceed the 1048576-byte limit"
    );
    refused(
        request(Op::SetXattr {
            path: Some(path("f")),
            name: "a\0b".into(),
            value: Bytes::new(),
            flags: 0,
        }),
        "SetXattr.name",
    );
    refused(
        request(Op::Symlink {
            path: path("l"),
            target: OsString::new(),
            owner: OWNER,
        }),
        "Symlink.target",
    );
    let late = Timestamp {
        sec: 0,
        nsec: 1_000_000_000,
    };
    refused(
        request(Op::SetAttr {
            path: Some(path("f")),
            attr: SetAttr {
                mode: Some(0o644),
                mtime: Some(late),
                ..SetAttr::default()
            },
        }),
        "SetAttr.attr.mtime",
    );
    refused(
        Message::Hello {
            version: 2,
            module: "m".repeat(256),
            node: String::new(),
            session: 0,
            roots: 1,
        },
        "Hello.module",
    );
    refused(
        Message::Reply {
            seq: 1,
            result: Err(RemoteError {
                errno: 1,
                message: "e".repeat(MAX_TEXT_PLUS_ONE),
            }),
        },
        "Reply.message",
    );
}

const MAX_TEXT_PLUS_ONE: usize = super::super::message::MAX_TEXT + 1;

#[test]
fn hostile_manifest_messages_are_rejected_naming_the_field() {
    let check = |bad: &[u8], expected: &str| assert_eq!(decode_err(bad).to_string(), expected);
    // tag 8 ManifestBlocks, then the hash count.
    check(
        &[&[8][..], &u32::MAX.to_le_bytes()].concat(),
        "ManifestBlocks.hashes: 4294967295 bytes exceed the 16384-byte limit",
    );
    check(
        &[&[8][..], &10u32.to_le_bytes(), &[0; 32]].concat(),
        "ManifestBlocks.hashes: needs 320 bytes but only 32 remain",
    );
    check(
        &[&[8][..], &0u32.to_le_bytes()].concat(),
        "ManifestBlocks.hashes: must not be empty",
    );
    let request = payload(&Message::ManifestRequest {
        version: 3,
        module: "m".into(),
        roots: 1,
        block_size: 4096,
    });
    let mut tiny = request.to_vec();
    let at = tiny.len() - 4;
    tiny[at..].copy_from_slice(&512u32.to_le_bytes());
    check(
        &tiny,
        "ManifestRequest.block_size: 512 is outside 4096..=67108864",
    );
    // A regular file's entry whose kind byte says symlink: a symlink without a target.
    let entry = payload(&Message::ManifestEntry {
        root: 0,
        entry: Box::new(file_entry()),
    });
    let kind_at = 1 + 2 + 1 + 4 + "data/db.sqlite".len();
    let mut bad = entry.to_vec();
    assert_eq!(bad[kind_at], 0);
    bad[kind_at] = 2;
    check(
        &bad,
        "ManifestEntry.target: a symlink target exactly for a symlink",
    );
    bad[kind_at] = 1;
    check(
        &bad,
        "ManifestEntry.blocks: block hashes only for a regular file",
    );
    bad[kind_at] = 7;
    check(&bad, "ManifestEntry.kind: unknown tag 7");
}

#[test]
fn unsorted_xattrs_are_refused_on_encode_and_on_decode() {
    let mut entry = file_entry();
    entry.xattrs.reverse();
    let msg = Message::ManifestEntry {
        root: 0,
        entry: Box::new(entry),
    };
    let mut out = BytesMut::new();
    assert_eq!(
        codec::encode(&msg, &mut out).unwrap_err().to_string(),
        "cannot encode ManifestEntry.xattrs: names not in strictly increasing order"
    );
    assert!(out.is_empty());
    let sorted = payload(&Message::ManifestEntry {
        root: 0,
        entry: Box::new(file_entry()),
    });
    let swapped = substitute_xattr_names(&sorted);
    assert_eq!(
        decode_err(&swapped).to_string(),
        "ManifestEntry.xattrs: names not in strictly increasing order"
    );
}

/// The payload with its two xattr names (`trusted.a`, `user.b`, hashes kept in place) swapped.
fn substitute_xattr_names(payload: &[u8]) -> Vec<u8> {
    let first = [&prefixed(b"trusted.a")[..], &[1; 32]].concat();
    let second = [&prefixed(b"user.b")[..], &[2; 32]].concat();
    let joined = [&first[..], &second[..]].concat();
    let at = payload
        .windows(joined.len())
        .position(|w| w == joined)
        .expect("xattrs not found");
    let swapped = [&second[..], &first[..]].concat();
    [&payload[..at], &swapped[..], &payload[at + joined.len()..]].concat()
}
