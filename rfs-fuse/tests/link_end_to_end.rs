//! The link end to end: a `StreamReplicator` and `serve` over a real socket, each side with
//! a real `Receiver` on a temp dir; after the stream, both trees compare equal.

mod link_support;

use bytes::Bytes;
use link_support::{
    PATIENT, Primary, Secondary, hello, options, outcome, owner, pair, pair_roots, rel,
};
use rfs_fuse::compare::compare_trees;
use rfs_fuse::link::{Ended, Replicator, StreamReplicator};
use rfs_fuse::protocol::AckLevel;
use rfs_fuse::protocol::op::{Op, SetAttr, Timestamp};
use std::net::{TcpListener, TcpStream};

fn session() -> Vec<Op> {
    let t = Timestamp {
        sec: 1_700_000_000,
        nsec: 0,
    };
    vec![
        Op::Mkdir {
            path: rel("data"),
            mode: 0o750,
            owner: owner(),
        },
        Op::Create {
            handle: 1,
            path: rel("data/db.tmp"),
            mode: 0o640,
            owner: owner(),
            exclusive: true,
        },
        Op::Write {
            handle: 1,
            offset: 0,
            data: Bytes::from_static(b"hello, replica"),
        },
        Op::Write {
            handle: 1,
            offset: 7,
            data: Bytes::from_static(b"mirror"),
        },
        Op::Fsync {
            handle: 1,
            datasync: false,
        },
        Op::Close { handle: 1 },
        Op::Rename {
            from: rel("data/db.tmp"),
            to: rel("data/db"),
            flags: 0,
        },
        Op::SetAttr {
            path: Some(rel("data/db")),
            attr: SetAttr {
                mode: Some(0o600),
                mtime: Some(t),
                atime: Some(t),
                ..SetAttr::default()
            },
        },
        Op::Symlink {
            path: rel("data/current"),
            target: "db".into(),
            owner: owner(),
        },
        Op::Mkdir {
            path: rel("tmp"),
            mode: 0o700,
            owner: owner(),
        },
        Op::Rmdir { path: rel("tmp") },
        Op::FsyncDir {
            path: Some(rel("data")),
        },
    ]
}

fn replicate_session(mut primary: Primary, secondary: Secondary) {
    let ops = session();
    let n = ops.len() as u64;
    for op in ops {
        primary.replicate(op).unwrap();
    }
    let stats = primary.link.stats();
    assert_eq!(
        (stats.ops_sent, stats.outstanding, stats.broken),
        (n, 0, None)
    );
    assert!(stats.ack_latency_p50.is_some() && stats.ack_latency_p99.is_some());
    primary.link.close();
    assert!(!primary.link.is_broken());

    let (replica, end) = secondary.join();
    let end = end.unwrap();
    assert_eq!(end.ended, Ended::Goodbye("closed by the primary".into()));
    assert_eq!((end.requests, end.late_failures_total), (n, 0));
    assert_eq!((end.node.as_str(), end.session), ("node1", 7));
    let differences = compare_trees(primary.dir(), replica.path()).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
    assert_eq!(
        std::fs::read(replica.path().join("data/db")).unwrap(),
        b"hello, mirrora"
    );
}

#[test]
fn a_session_replicates_over_tcp_with_applied_acks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    for stream in [&client, &server] {
        stream.set_nodelay(true).unwrap();
    }
    let secondary = Secondary::spawn(server, options(AckLevel::Applied));
    let link = StreamReplicator::start(client.try_clone().unwrap(), client, hello("app"), PATIENT)
        .unwrap();
    replicate_session(Primary::new(link), secondary);
}

#[test]
fn a_session_replicates_over_a_unix_socket_with_received_acks() {
    let (primary, secondary) = pair(options(AckLevel::Received), PATIENT);
    replicate_session(primary, secondary);
}

/// 1000 overlapping writes all in flight before the first verdict is collected: all
/// confirmed, and the secondary applied them in order (the last writer of each byte wins
/// alike on both sides).
#[test]
fn a_thousand_pipelined_writes_keep_their_order() {
    for level in [AckLevel::Applied, AckLevel::Received] {
        let (mut primary, secondary) = pair(options(level), PATIENT);
        let create = Op::Create {
            handle: 9,
            path: rel("log"),
            mode: 0o644,
            owner: owner(),
            exclusive: true,
        };
        primary.replicate(create).unwrap();
        let writes: Vec<Op> = (0..1000u32)
            .map(|i| Op::Write {
                handle: 9,
                offset: u64::from(i % 37) * 3,
                data: Bytes::from(i.to_le_bytes().repeat(2)),
            })
            .collect();
        let pending: Vec<_> = writes.iter().map(|op| primary.send(op.clone())).collect();
        let outcomes: Vec<_> = writes
            .iter()
            .map(|op| outcome(primary.local().apply(op)))
            .collect();
        for (pending, local) in pending.into_iter().zip(outcomes) {
            pending.settle(local).unwrap();
        }
        primary.replicate(Op::Close { handle: 9 }).unwrap();
        let stats = primary.link.stats();
        assert_eq!(
            (stats.ops_sent, stats.acks, stats.outstanding),
            (1002, 1002, 0)
        );
        assert!(stats.bytes_sent > 1000 * 8);
        primary.link.close();

        let (replica, end) = secondary.join();
        assert_eq!(end.unwrap().requests, 1002);
        assert!(
            compare_trees(primary.dir(), replica.path())
                .unwrap()
                .is_empty()
        );
        let content = std::fs::read(replica.path().join("log")).unwrap();
        assert_eq!(&content[..8], &999u32.to_le_bytes().repeat(2)[..]); // the last write, at 0
    }
}

/// A root's hook works behind the overlay's trait object, from many threads at once.
#[test]
fn concurrent_senders_through_the_trait_object() {
    let (primary, secondary) = pair(options(AckLevel::Applied), PATIENT);
    let link: std::sync::Arc<dyn Replicator> = std::sync::Arc::new(primary.link.root(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let link = link.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let op = Op::Mkdir {
                        path: rel(&format!("t{t}-{i}")),
                        mode: 0o755,
                        owner: owner(),
                    };
                    link_support::send_dyn(&*link, op).wait().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(link);
    primary.link.close();
    let (replica, end) = secondary.join();
    assert_eq!(end.unwrap().requests, 400);
    assert_eq!(std::fs::read_dir(replica.path()).unwrap().count(), 400);
}

/// Two roots on one stream, requests interleaved and pipelined: each lands in its own
/// root's directory, in stream order (the later write to a handle wins). Handles are per
/// root: handle 1 is open in both at once. `EmptyRoot` clears its root only.
#[test]
fn two_roots_share_one_ordered_stream() {
    for level in [AckLevel::Applied, AckLevel::Received] {
        let (mut primary, secondary) = pair_roots(options(level), PATIENT, 2);
        let write = |data: &'static [u8]| Op::Write {
            handle: 1,
            offset: 0,
            data: Bytes::from_static(data),
        };
        let create = |path: &str| Op::Create {
            handle: 1,
            path: rel(path),
            mode: 0o644,
            owner: owner(),
            exclusive: true,
        };
        let mkdir = |path: &str| Op::Mkdir {
            path: rel(path),
            mode: 0o755,
            owner: owner(),
        };
        let steps: Vec<(u16, Op)> = vec![
            (1, mkdir("old")),
            (0, mkdir("a")),
            (1, mkdir("b")),
            (0, create("a/f")),
            (1, create("b/f")),
            (0, write(b"zero")),
            (1, write(b"one!")),
            (1, write(b"ONE")),
            (0, write(b"0")),
            (0, Op::Close { handle: 1 }),
            (
                1,
                Op::Rename {
                    from: rel("b/f"),
                    to: rel("b/g"),
                    flags: 0,
                },
            ),
            (1, Op::Close { handle: 1 }),
            (1, Op::EmptyRoot),
            (1, mkdir("c")),
            (1, create("c/new")),
            (1, write(b"after")),
            (1, Op::Close { handle: 1 }),
            (0, mkdir("a/later")),
        ];
        let pending: Vec<_> = steps
            .iter()
            .map(|(root, op)| primary.link.send_to(*root, op.clone()))
            .collect();
        let outcomes: Vec<_> = steps
            .iter()
            .map(|(root, op)| outcome(primary.locals[usize::from(*root)].apply(op)))
            .collect();
        for (pending, local) in pending.into_iter().zip(outcomes) {
            pending.settle(local).unwrap();
        }
        primary.link.close();

        let (replicas, end) = secondary.join_all();
        let end = end.unwrap();
        assert_eq!(
            (end.requests, end.late_failures_total),
            (steps.len() as u64, 0)
        );
        for (ours, theirs) in primary.dirs.iter().zip(&replicas) {
            let differences = compare_trees(ours.path(), theirs.path()).unwrap();
            assert!(differences.is_empty(), "{level:?}: {differences:#?}");
        }
        let (zero, one) = (replicas[0].path(), replicas[1].path());
        assert_eq!(std::fs::read(zero.join("a/f")).unwrap(), b"0ero");
        assert!(zero.join("a/later").is_dir());
        assert!(!zero.join("b").exists() && !zero.join("c").exists());
        let names: Vec<_> = std::fs::read_dir(one)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["c"], "{level:?}: root 1 was emptied first");
        assert_eq!(std::fs::read(one.join("c/new")).unwrap(), b"after");
    }
}
