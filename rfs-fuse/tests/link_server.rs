//! The secondary's `serve` loop driven by a hand-written primary: ack levels, corrupt and
//! hostile input, stream order.

mod link_support;

use bytes::Bytes;
use link_support::{MODULE, RawPeer, Secondary, options, owner, rel};
use rfs_fuse::link::{AppliedPoint, Ended, LinkError, StreamPoint};
use rfs_fuse::protocol::op::Op;
use rfs_fuse::protocol::{AckLevel, Message, RemoteError, StreamError, encode_message};
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;

type Replies = BTreeMap<u64, Vec<Result<AckLevel, RemoteError>>>;

fn connect(level: AckLevel) -> (RawPeer, Secondary) {
    let (a, b) = UnixStream::pair().unwrap();
    let secondary = Secondary::spawn(b, options(level));
    let mut primary = RawPeer::new(a);
    primary.hello(MODULE);
    (primary, secondary)
}

fn create(handle: u64, path: &str) -> Op {
    Op::Create {
        handle,
        path: rel(path),
        mode: 0o644,
        owner: owner(),
        exclusive: true,
    }
}

fn write(handle: u64, data: &'static [u8]) -> Op {
    Op::Write {
        handle,
        offset: 0,
        data: Bytes::from_static(data),
    }
}

/// Reads replies until `until` returns true, grouping them by request.
fn replies_until(primary: &mut RawPeer, mut until: impl FnMut(&Replies) -> bool) -> Replies {
    let mut replies = Replies::new();
    while !until(&replies) {
        match primary.recv() {
            Some(Message::Reply { seq, result }) => replies.entry(seq).or_default().push(result),
            other => panic!("{other:?}"),
        }
    }
    replies
}

/// With `Received`, every request is acknowledged before it is applied and then confirmed,
/// except fsync, answered once only, after it is durable: when its reply arrives, the data
/// it covers is in the secondary's file.
#[test]
fn received_acks_come_first_but_fsync_is_answered_once_applied() {
    let (mut primary, secondary) = connect(AckLevel::Received);
    let file = secondary.dir().join("f");
    primary.request(0, create(1, "f"));
    primary.request(1, write(1, b"durable"));
    primary.request(
        2,
        Op::Fsync {
            handle: 1,
            datasync: true,
        },
    );
    let mut content_at_fsync_reply = None;
    let replies = replies_until(&mut primary, |replies| {
        let done = replies.contains_key(&2);
        if done && content_at_fsync_reply.is_none() {
            content_at_fsync_reply = Some(std::fs::read(&file).unwrap());
        }
        done && replies.get(&1).is_some_and(|r| r.len() == 2)
    });
    assert_eq!(content_at_fsync_reply.as_deref(), Some(&b"durable"[..]));
    let both = vec![Ok(AckLevel::Received), Ok(AckLevel::Applied)];
    assert_eq!(replies[&0], both);
    assert_eq!(replies[&1], both);
    assert_eq!(replies[&2], [Ok(AckLevel::Applied)]);

    primary.request(3, Op::Close { handle: 1 });
    primary.send(&Message::Goodbye {
        reason: "done".into(),
    });
    let replies = replies_until(&mut primary, |r| r.get(&3).is_some_and(|r| r.len() == 2));
    assert_eq!(replies[&3], both);
    let (_, end) = secondary.join();
    let end = end.unwrap();
    assert_eq!(
        (end.ended, end.requests),
        (Ended::Goodbye("done".into()), 4)
    );
}

#[test]
fn applied_acks_answer_each_request_once_after_applying() {
    let (mut primary, secondary) = connect(AckLevel::Applied);
    primary.request(0, create(1, "f"));
    primary.request(1, write(1, b"x"));
    primary.request(2, Op::Close { handle: 1 });
    primary.request(3, Op::Unlink { path: rel("nope") });
    let replies = replies_until(&mut primary, |r| r.len() == 4);
    for seq in 0..3 {
        assert_eq!(replies[&seq], [Ok(AckLevel::Applied)]);
    }
    let [Err(error)] = &replies[&3][..] else {
        panic!("{replies:?}")
    };
    assert_eq!(error.errno, libc::ENOENT);
    assert!(error.message.contains("Unlink nope"), "{error}");
    drop(primary); // end of stream between frames: a clean end
    let (dir, end) = secondary.join();
    let end = end.unwrap();
    assert_eq!(
        (end.ended, end.requests, end.late_failures_total),
        (Ended::Eof, 4, 0)
    );
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"x");
}

#[test]
fn the_applied_point_follows_what_was_applied_not_what_was_acknowledged() {
    let (a, b) = UnixStream::pair().unwrap();
    let point = AppliedPoint::default();
    let options = options(AckLevel::Received).publish_applied(point.clone());
    let secondary = Secondary::spawn(b, options);
    let mut primary = RawPeer::new(a);
    primary.hello(MODULE);
    assert_eq!(*point.lock().unwrap(), None);
    primary.request(0, create(1, "f"));
    primary.request(1, Op::Close { handle: 1 });
    let applied = |r: &Replies| {
        r.values()
            .flatten()
            .filter(|v| **v == Ok(AckLevel::Applied))
            .count()
    };
    replies_until(&mut primary, |r| applied(r) == 2);
    assert_eq!(
        *point.lock().unwrap(),
        Some(StreamPoint {
            session: 1,
            next: 2
        })
    );
    drop(primary);
    secondary.join().1.unwrap();
}

#[test]
fn a_new_stream_starts_with_no_handle_of_the_previous_one_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut receivers = vec![rfs_fuse::receiver::Receiver::open(dir.path()).unwrap()];
    for (session, name) in [(1, "first"), (2, "second")] {
        let (a, b) = UnixStream::pair().unwrap();
        let mut primary = RawPeer::new(a);
        let served = std::thread::scope(|scope| {
            let server = scope.spawn(|| {
                let reader = b.try_clone().unwrap();
                rfs_fuse::link::serve(reader, b, &mut receivers, options(AckLevel::Applied))
            });
            primary.hello(MODULE);
            // Handle 1 left open when the connection ends (the primary lost its peer).
            primary.request(0, create(1, name));
            let replies = replies_until(&mut primary, |r| r.len() == 1);
            drop(primary);
            (replies, server.join().unwrap())
        });
        assert_eq!(served.0[&0], [Ok(AckLevel::Applied)], "stream {session}");
        served.1.unwrap();
    }
    assert!(dir.path().join("second").exists());
}

/// A frame failing its CRC ends the connection with an error naming it, and nothing in it
/// is applied.
#[test]
fn a_corrupt_frame_ends_the_connection_and_touches_nothing() {
    let (mut primary, secondary) = connect(AckLevel::Received);
    let frame = encode_message(&Message::Request {
        seq: 0,
        root: 0,
        op: Op::Mkdir {
            path: rel("x"),
            mode: 0o755,
            owner: owner(),
        },
    })
    .unwrap();
    let mut corrupt = frame.to_vec();
    *corrupt.last_mut().unwrap() ^= 0x01;
    primary.send_bytes(&corrupt);
    let Some(Message::Goodbye { reason }) = primary.recv() else {
        panic!("expected Goodbye")
    };
    assert!(reason.contains("CRC32"), "{reason}");
    let (dir, end) = secondary.join();
    assert!(
        matches!(end, Err(LinkError::BadStream(StreamError::Frame(_)))),
        "{end:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// An operation the receiver refuses as hostile (here, a write through a handle never
/// opened) is answered with its error, then the connection ends with an error naming it.
#[test]
fn a_refused_request_ends_the_connection() {
    let (mut primary, secondary) = connect(AckLevel::Applied);
    // Both in one write: the second is queued when the first ends the connection.
    let mut frames = encode_message(&Message::Request {
        seq: 0,
        root: 0,
        op: write(99, b"x"),
    })
    .unwrap()
    .to_vec();
    frames.extend_from_slice(
        &encode_message(&Message::Request {
            seq: 1,
            root: 0,
            op: Op::Unlink { path: rel("a") },
        })
        .unwrap(),
    );
    primary.send_bytes(&frames);
    let Some(Message::Reply {
        seq: 0,
        result: Err(error),
    }) = primary.recv()
    else {
        panic!("expected the refusal")
    };
    assert_eq!(error.errno, libc::EBADF);
    let Some(Message::Goodbye { reason }) = primary.recv() else {
        panic!("expected Goodbye")
    };
    assert!(
        reason.contains("request 0 to root 0 refused: Write #99"),
        "{reason}"
    );
    let (_, end) = secondary.join();
    let Err(LinkError::RefusedOp {
        seq: 0,
        root: 0,
        error,
    }) = end
    else {
        panic!("{end:?}")
    };
    assert!(error.is_refused());
}

/// A gap in sequence numbers (a lost request) ends the connection; what came before it is
/// applied.
#[test]
fn requests_must_come_in_sequence() {
    let (mut primary, secondary) = connect(AckLevel::Applied);
    primary.request(
        0,
        Op::Mkdir {
            path: rel("a"),
            mode: 0o755,
            owner: owner(),
        },
    );
    primary.request(2, Op::Unlink { path: rel("b") });
    assert!(matches!(
        primary.recv(),
        Some(Message::Reply {
            seq: 0,
            result: Ok(AckLevel::Applied)
        })
    ));
    assert!(matches!(primary.recv(), Some(Message::Goodbye { .. })));
    let (dir, end) = secondary.join();
    let Err(LinkError::Protocol(what)) = end else {
        panic!("{end:?}")
    };
    assert!(
        what.contains("request 2 out of order (expected 1)"),
        "{what}"
    );
    assert!(dir.path().join("a").is_dir());
}

#[test]
fn a_stream_cut_inside_a_frame_or_a_second_hello_is_an_error() {
    let (mut primary, secondary) = connect(AckLevel::Applied);
    let frame = encode_message(&Message::Request {
        seq: 0,
        root: 0,
        op: Op::Unlink { path: rel("a") },
    })
    .unwrap();
    primary.send_bytes(&frame[..frame.len() - 1]);
    drop(primary);
    let (_, end) = secondary.join();
    assert!(matches!(end, Err(LinkError::BadStream(_))), "{end:?}");

    let (mut primary, secondary) = connect(AckLevel::Applied);
    primary.send(&Message::Hello {
        version: rfs_fuse::protocol::PROTOCOL_VERSION,
        module: MODULE.into(),
        node: "again".into(),
        session: 2,
        roots: 1,
    });
    let (_, end) = secondary.join();
    assert!(
        matches!(&end, Err(LinkError::Protocol(what)) if what.contains("unexpected Hello")),
        "{end:?}"
    );
}

/// A two-root secondary and a raw primary that said so.
fn connect_roots(level: AckLevel, roots: u16) -> (RawPeer, Secondary) {
    let (a, b) = UnixStream::pair().unwrap();
    let secondary = Secondary::spawn_roots(b, options(level), usize::from(roots));
    let mut primary = RawPeer::new(a);
    primary.hello_roots(MODULE, roots);
    (primary, secondary)
}

/// Each request is applied by the receiver of the root it names.
#[test]
fn requests_reach_the_root_they_name() {
    let (mut primary, secondary) = connect_roots(AckLevel::Applied, 2);
    primary.request_to(0, 1, create(1, "f"));
    primary.request_to(1, 0, create(1, "f"));
    primary.request_to(2, 1, write(1, b"one"));
    primary.request_to(3, 0, write(1, b"zero"));
    primary.request_to(4, 1, Op::Unlink { path: rel("nope") });
    let replies = replies_until(&mut primary, |r| r.len() == 5);
    let [Err(error)] = &replies[&4][..] else {
        panic!("{replies:?}")
    };
    assert!(error.message.starts_with("root 1: Unlink nope"), "{error}");
    drop(primary);
    let (dirs, end) = secondary.join_all();
    assert_eq!(end.unwrap().requests, 5);
    assert_eq!(std::fs::read(dirs[0].path().join("f")).unwrap(), b"zero");
    assert_eq!(std::fs::read(dirs[1].path().join("f")).unwrap(), b"one");
}

/// A root index the secondary does not have is a protocol violation: what came before is
/// applied, the connection ends with a Goodbye naming the request and the root, nothing
/// after it is applied.
#[test]
fn a_root_index_out_of_range_is_refused() {
    for bad in [2, u16::MAX] {
        let (mut primary, secondary) = connect_roots(AckLevel::Received, 2);
        primary.request_to(0, 1, create(1, "before"));
        primary.request_to(1, bad, create(1, "stray"));
        primary.request_to(2, 0, create(2, "after"));
        let mut goodbye = None;
        let mut replies = Replies::new();
        while let Some(message) = primary.recv() {
            match message {
                Message::Reply { seq, result } => replies.entry(seq).or_default().push(result),
                Message::Goodbye { reason } => goodbye = Some(reason),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            replies.keys().copied().collect::<Vec<_>>(),
            [0],
            "{replies:?}"
        );
        let reason = goodbye.expect("no Goodbye");
        assert!(
            reason.contains(&format!(
                "request 1 names root {bad}, but there are only 2 roots"
            )),
            "{reason}"
        );
        let (dirs, end) = secondary.join_all();
        assert!(
            matches!(end, Err(LinkError::NoSuchRoot { seq: 1, root, roots: 2 }) if root == bad),
            "{end:?}"
        );
        assert!(dirs[1].path().join("before").is_file());
        for dir in &dirs {
            assert!(!dir.path().join("stray").exists());
            assert!(!dir.path().join("after").exists());
        }
    }
}

/// A refused request names its root in the error and the Goodbye.
#[test]
fn a_refusal_names_the_root() {
    let (mut primary, secondary) = connect_roots(AckLevel::Applied, 3);
    primary.request_to(0, 2, write(5, b"x"));
    let Some(Message::Reply {
        seq: 0,
        result: Err(error),
    }) = primary.recv()
    else {
        panic!("expected the refusal")
    };
    assert!(error.message.starts_with("root 2: Write #5"), "{error}");
    let Some(Message::Goodbye { reason }) = primary.recv() else {
        panic!("expected Goodbye")
    };
    assert!(reason.contains("request 0 to root 2 refused"), "{reason}");
    let (_, end) = secondary.join_all();
    assert!(
        matches!(
            end,
            Err(LinkError::RefusedOp {
                seq: 0,
                root: 2,
                ..
            })
        ),
        "{end:?}"
    );
}
