//! Every message and every op variant survives encode → frame → decode unchanged.

use super::super::frame::{HEADER_LEN, MAX_FRAME};
use super::super::message::{
    MAX_NAME, MAX_PATH, MAX_SYMLINK_TARGET, MAX_TEXT, MAX_WRITE, MAX_XATTR_NAME, MAX_XATTR_VALUE,
};
use super::super::stream::{MessageDecoder, write_message};
use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Both layers: the payload decodes back, and so does the frame through `MessageDecoder`.
fn assert_round_trip(msg: &Message) {
    let payload = payload(msg);
    assert_eq!(&codec::decode(&payload).unwrap(), msg);
    assert!(
        payload.len() <= codec::size_hint(msg),
        "size hint too small"
    );
    let frame = frame_of(msg);
    assert!(frame.len() - HEADER_LEN <= MAX_FRAME);
    assert_eq!(frame.slice(HEADER_LEN..), payload);
    let mut dec = MessageDecoder::new();
    dec.push(&frame);
    assert_eq!(dec.next().unwrap().as_ref(), Some(msg));
    assert_eq!(dec.next().unwrap(), None);
    dec.finish().unwrap();
}

#[test]
fn every_message_and_op_variant_round_trips() {
    let msgs = samples();
    let mut kinds = [false; OP_KINDS];
    for msg in &msgs {
        assert_round_trip(msg);
        if let Message::Request { op, .. } = msg {
            kinds[op_kind(op)] = true;
        }
    }
    assert!(kinds.iter().all(|k| *k), "an Op variant has no sample");
}

#[test]
fn empty_and_maximal_sizes_round_trip() {
    let max_path = path(&format!("xx{}", "/x".repeat(MAX_PATH / 2 - 1)));
    assert_eq!(max_path.to_bytes().len(), MAX_PATH);
    let big = Bytes::from(vec![0xA5; MAX_WRITE]);
    let cases = [
        Op::Write {
            handle: 0,
            offset: 0,
            data: Bytes::new(),
        },
        Op::Write {
            handle: u64::MAX,
            offset: u64::MAX,
            data: big,
        },
        Op::SetXattr {
            path: Some(max_path.clone()),
            name: OsString::from("u".repeat(MAX_XATTR_NAME)),
            value: Bytes::from(vec![7; MAX_XATTR_VALUE]),
            flags: i32::MIN,
        },
        Op::SetXattr {
            path: Some(path("f")),
            name: OsString::from("u"),
            value: Bytes::new(),
            flags: 0,
        },
        Op::Symlink {
            path: max_path.clone(),
            target: OsString::from("t".repeat(MAX_SYMLINK_TARGET)),
            owner: OWNER,
        },
        Op::Rename {
            from: max_path.clone(),
            to: max_path,
            flags: u32::MAX,
        },
        Op::SetAttr {
            path: Some(path("f")),
            attr: SetAttr::default(),
        },
        Op::SetAttr {
            path: None,
            attr: SetAttr::default(),
        },
        Op::SetXattr {
            path: None,
            name: OsString::from("u".repeat(MAX_XATTR_NAME)),
            value: Bytes::from(vec![7; MAX_XATTR_VALUE]),
            flags: 0,
        },
        Op::RemoveXattr {
            path: None,
            name: OsString::from("u"),
        },
    ];
    for op in cases {
        assert_round_trip(&request(op));
    }
    assert_round_trip(&Message::Hello {
        version: u16::MAX,
        module: "m".repeat(MAX_NAME),
        node: String::new(),
        session: u64::MAX,
        roots: u16::MAX,
    });
    for root in [0, 1, u16::MAX] {
        assert_round_trip(&Message::Request {
            seq: 0,
            root,
            op: Op::EmptyRoot,
        });
    }
    assert_round_trip(&Message::Reply {
        seq: u64::MAX,
        result: Err(RemoteError::new(i32::MIN, "e".repeat(MAX_TEXT))),
    });
    assert_round_trip(&Message::Goodbye {
        reason: String::new(),
    });
}

#[test]
fn all_set_attr_combinations_round_trip() {
    let t = |sec, nsec| Some(Timestamp { sec, nsec });
    for bits in 0..64u32 {
        let on = |bit: u32| bits & (1 << bit) != 0;
        let attr = SetAttr {
            mode: on(0).then_some(0o4755),
            uid: on(1).then_some(u32::MAX),
            gid: on(2).then_some(0),
            size: on(3).then_some(u64::MAX),
            atime: if on(4) { t(i64::MIN, 0) } else { None },
            mtime: if on(5) {
                t(i64::MAX, 999_999_999)
            } else {
                None
            },
        };
        for path in [Some(path("d/f")), None] {
            assert_round_trip(&request(Op::SetAttr {
                path,
                attr: attr.clone(),
            }));
        }
    }
}

#[test]
fn random_messages_round_trip() {
    let mut rng = StdRng::seed_from_u64(0x5EED_0001);
    for _ in 0..5000 {
        assert_round_trip(&random::message(&mut rng));
    }
}

/// The wire format is pinned: a change here breaks compatibility with deployed peers and
/// needs a new `PROTOCOL_VERSION`.
#[test]
fn wire_format_is_stable() {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let hello = Message::Hello {
        version: 2,
        module: "db".into(),
        node: "n1".into(),
        session: 9,
        roots: 2,
    };
    assert_eq!(
        hex(&frame_of(&hello)),
        "1900000070049191010200020000006462020000006e3109000000000000000200"
    );
    let ack = Message::HelloAck {
        version: 2,
        resume_from: 17,
    };
    assert_eq!(
        hex(&frame_of(&ack)),
        "0b000000a5e90f870202001100000000000000"
    );
    // A request: seq:u64, root:u16, then the op.
    let write = request(Op::Write {
        handle: 7,
        offset: 4096,
        data: Bytes::from_static(b"hi"),
    });
    assert_eq!(
        hex(&frame_of(&write)),
        "22000000c6b04403032a0000000000000003000307000000000000000010000000000000020000006869"
    );
    let empty = Message::Request {
        seq: 5,
        root: 1,
        op: Op::EmptyRoot,
    };
    assert_eq!(
        hex(&frame_of(&empty)),
        "0c000000349360f8030500000000000000010013"
    );
    // The optional path of SetAttr/SetXattr/RemoveXattr/FsyncDir: 0 for the root, or 1 then
    // the path (u32 length, bytes).
    let root_chmod = request(Op::SetAttr {
        path: None,
        attr: SetAttr {
            mode: Some(0o755),
            ..SetAttr::default()
        },
    });
    assert_eq!(
        hex(&frame_of(&root_chmod)),
        "12000000c2696046032a0000000000000003000f0001ed010000"
    );
    let remove = request(Op::RemoveXattr {
        path: Some(path("d")),
        name: OsString::from("user.a"),
    });
    assert_eq!(
        hex(&frame_of(&remove)),
        "1c000000ff285e67032a0000000000000003001101010000006406000000757365722e61"
    );
}

#[test]
fn decoded_write_data_shares_the_frame_buffer() {
    let msg = request(Op::Write {
        handle: 1,
        offset: 0,
        data: Bytes::from(vec![1; 1000]),
    });
    let frame = frame_of(&msg);
    let mut dec = MessageDecoder::new();
    dec.push(&frame);
    let Some(Message::Request {
        op: Op::Write { data, .. },
        ..
    }) = dec.next().unwrap()
    else {
        panic!("not a write");
    };
    // Decode the payload itself: the data must point into it, not into a copy.
    let payload = frame.slice(HEADER_LEN..);
    let Message::Request {
        op: Op::Write { data: shared, .. },
        ..
    } = codec::decode(&payload).unwrap()
    else {
        panic!("not a write");
    };
    let range = payload.as_ptr_range();
    assert!(range.contains(&shared.as_ptr()));
    assert_eq!(data, shared);
}

#[test]
fn messages_batch_into_one_buffer() {
    let msgs = samples();
    let mut out = BytesMut::new();
    for msg in &msgs {
        write_message(&mut out, msg).unwrap();
    }
    let mut dec = MessageDecoder::new();
    dec.push(&out);
    for msg in &msgs {
        assert_eq!(dec.next().unwrap().as_ref(), Some(msg));
    }
    assert_eq!(dec.next().unwrap(), None);
    assert_eq!(dec.buffered(), 0);
}
