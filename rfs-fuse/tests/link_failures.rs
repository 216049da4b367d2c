//! How the primary's verdicts map the secondary's failures, and how the link breaks: peer
//! death, silence (send timeout), refusal at the handshake.

mod link_support;

use link_support::{
    BrokenProbe, PATIENT, RawPeer, Secondary, hello, hello_roots, options, owner, pair, pair_roots,
    raw_secondary, rel,
};
use rfs_fuse::link::{LinkError, LocalOutcome, ReplicationError, Replicator, StreamReplicator};
use rfs_fuse::protocol::op::Op;
use rfs_fuse::protocol::{AckLevel, Message, PROTOCOL_VERSION};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn mkdir(name: &str) -> Op {
    Op::Mkdir {
        path: rel(name),
        mode: 0o755,
        owner: owner(),
    }
}

fn unlink(name: &str) -> Op {
    Op::Unlink { path: rel(name) }
}

#[test]
fn remote_failures_are_judged_against_the_local_outcome() {
    let (primary, secondary) = pair(options(AckLevel::Applied), PATIENT);
    let link = &primary.link;
    let enoent = LocalOutcome::Failed(libc::ENOENT);
    // Both sides failed alike: nothing diverged.
    assert_eq!(link.send_to(0, unlink("missing")).settle(enoent), Ok(()));
    // The primary applied what the secondary could not.
    assert_eq!(
        link.send_to(0, unlink("missing")).wait(),
        Err(ReplicationError::PeerFailed(libc::ENOENT))
    );
    // Both failed, differently.
    assert_eq!(
        link.send_to(0, unlink("missing"))
            .settle(LocalOutcome::Failed(libc::EACCES)),
        Err(ReplicationError::PeerFailed(libc::ENOENT))
    );
    link.send_to(0, mkdir("d")).wait().unwrap();
    assert_eq!(
        link.send_to(0, mkdir("d"))
            .settle(LocalOutcome::Failed(libc::EEXIST)),
        Ok(())
    );
    // A failure is not a break.
    assert!(!link.is_broken());
    assert_eq!(link.stats().late_failures, 0);
    drop(primary);
    let (_, end) = secondary.join();
    assert_eq!(end.unwrap().requests, 5);
}

/// With `Received` acks the verdict returns before the secondary applies; its failure comes
/// later and is judged then: reported by the verdict if it arrived in time, else through
/// `on_late_failure`; ignored when the local call failed alike.
#[test]
fn late_failures_at_the_received_level() {
    let seen_by_server = Arc::new(Mutex::new(Vec::new()));
    let seen = seen_by_server.clone();
    let opts =
        options(AckLevel::Received).on_late_failure(move |f| seen.lock().unwrap().push(f.seq));
    let (primary, secondary) = pair(opts, PATIENT);
    let link = &primary.link;
    let (late_tx, late_rx) = std::sync::mpsc::channel();
    link.on_late_failure(move |seq, error| late_tx.send((seq, error.errno)).unwrap());

    // Failed alike: never reported to the primary's engine.
    let alike = link.send_to(0, unlink("missing"));
    assert_eq!(alike.settle(LocalOutcome::Failed(libc::ENOENT)), Ok(()));
    // Diverged: the verdict or the callback says so.
    let diverged = link.send_to(0, unlink("missing")).wait();
    // Replies arrive in order: once request 2 is answered, request 1's error has been read.
    link.send_to(0, mkdir("d")).wait().unwrap();
    match diverged {
        Err(ReplicationError::PeerFailed(errno)) => assert_eq!(errno, libc::ENOENT),
        Ok(()) => assert_eq!(late_rx.recv_timeout(PATIENT), Ok((1, libc::ENOENT))),
        other => panic!("{other:?}"),
    }
    assert!(late_rx.try_recv().is_err());
    drop(primary);
    let (_, end) = secondary.join();
    let end = end.unwrap();
    assert_eq!(end.late_failures_total, 2);
    assert_eq!(*seen_by_server.lock().unwrap(), [0, 1]);
    assert_eq!(end.late_failures[1].errno, libc::ENOENT);
    assert!(end.late_failures[1].message.contains("Unlink missing"));
}

/// On both sides a late failure says which root diverged (the one to resync): the
/// secondary's as a field, the primary's in the error message.
#[test]
fn late_failures_name_their_root() {
    let seen_by_server = Arc::new(Mutex::new(Vec::new()));
    let seen = seen_by_server.clone();
    let opts = options(AckLevel::Received)
        .on_late_failure(move |f| seen.lock().unwrap().push((f.seq, f.root)));
    let (primary, secondary) = pair_roots(opts, PATIENT, 3);
    let link = &primary.link;
    let (late_tx, late_rx) = std::sync::mpsc::channel();
    link.on_late_failure(move |seq, error| late_tx.send((seq, error.message.clone())).unwrap());
    link.send_to(0, mkdir("d")).wait().unwrap();
    let diverged = link.send_to(2, unlink("missing")).wait();
    link.send_to(1, mkdir("d")).wait().unwrap();
    match diverged {
        Err(ReplicationError::PeerFailed(errno)) => assert_eq!(errno, libc::ENOENT),
        Ok(()) => {
            let (seq, message) = late_rx.recv_timeout(PATIENT).unwrap();
            assert_eq!(seq, 1);
            assert!(message.starts_with("root 2: Unlink missing"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    primary.link.close();
    let (_, end) = secondary.join();
    let end = end.unwrap();
    assert_eq!(*seen_by_server.lock().unwrap(), [(1, 2)]);
    assert_eq!(end.late_failures[0].root, 2);
    assert!(end.late_failures[0].message.starts_with("root 2: "));
}

/// The secondary dies with requests in flight: their verdicts fail at once (not after the
/// send timeout), `on_broken` runs once, later sends fail without waiting.
#[test]
fn peer_death_breaks_the_link_once_and_promptly() {
    let (a, b) = UnixStream::pair().unwrap();
    let peer = raw_secondary(b, |peer| {
        let mut seqs = Vec::new();
        while seqs.len() < 5 {
            match peer.recv() {
                Some(Message::Request { seq, .. }) => seqs.push(seq),
                other => panic!("{other:?}"),
            }
        }
        for seq in &seqs[..2] {
            peer.send(&Message::Reply {
                seq: *seq,
                result: Ok(AckLevel::Applied),
            });
        }
    });
    let link = StreamReplicator::start(a.try_clone().unwrap(), a, hello("app"), PATIENT).unwrap();
    let probe = BrokenProbe::attach(&link);
    let pending: Vec<_> = (0..5)
        .map(|i| link.send_to(0, mkdir(&format!("d{i}"))))
        .collect();
    drop(peer.join().unwrap()); // the secondary's end closes

    let verdicts: Vec<_> = pending.into_iter().map(|p| p.wait()).collect();
    assert_eq!(verdicts[..2], [Ok(()), Ok(())]);
    for verdict in &verdicts[2..] {
        let Err(ReplicationError::PeerLost(reason)) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(reason.contains("closed the connection"), "{reason}");
    }
    assert!(link.is_broken());
    assert_eq!(probe.calls(), 1);
    assert!(
        link.stats()
            .broken
            .unwrap()
            .contains("closed the connection")
    );

    let started = Instant::now();
    assert!(matches!(
        link.send_to(0, mkdir("late")).wait(),
        Err(ReplicationError::PeerLost(_))
    ));
    assert!(started.elapsed() < PATIENT);
    // Registering again after the break: the callback already ran once.
    let again = BrokenProbe::attach(&link);
    assert_eq!((probe.calls(), again.calls()), (1, 0));
    drop(link);
    assert_eq!(probe.calls(), 1);
}

/// A secondary that never answers: the first verdict gives up after the send timeout and
/// breaks the link, failing every other waiter at once.
#[test]
fn a_silent_secondary_times_out() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let (a, b) = UnixStream::pair().unwrap();
    let peer = raw_secondary(b, |_| {});
    let link = StreamReplicator::start(a.try_clone().unwrap(), a, hello("app"), TIMEOUT).unwrap();
    let peer = peer.join().unwrap(); // holds the connection open, silent
    let first = link.send_to(0, mkdir("a"));
    let second = link.send_to(0, mkdir("b"));
    let started = Instant::now();
    let verdict = first.wait();
    let waited = started.elapsed();
    let Err(ReplicationError::PeerLost(reason)) = &verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        reason.contains("no reply to request 0 within the send timeout"),
        "{reason}"
    );
    assert!(waited < TIMEOUT + Duration::from_secs(10), "{waited:?}");
    assert_eq!(second.wait(), verdict);
    assert!(link.is_broken());
    // Registered after the break: runs at once, exactly once.
    let probe = BrokenProbe::attach(&link);
    assert_eq!(probe.calls(), 1);
    assert_eq!(
        probe.reason.lock().unwrap().as_deref(),
        Some(reason.as_str())
    );
    drop(link);
    assert_eq!(probe.calls(), 1);
    drop(peer);
}

#[test]
fn a_secondary_for_another_module_refuses_the_link() {
    let (a, b) = UnixStream::pair().unwrap();
    let secondary = Secondary::spawn(b, options(AckLevel::Applied));
    let error =
        StreamReplicator::start(a.try_clone().unwrap(), a, hello("other"), PATIENT).unwrap_err();
    let LinkError::Refused(reason) = &error else {
        panic!("{error}")
    };
    assert!(reason.contains("module mismatch"), "{reason}");
    let (_, end) = secondary.join();
    assert!(
        matches!(end, Err(LinkError::ModuleMismatch { ref expected, ref got }) if expected == "app" && got == "other"),
        "{end:?}"
    );
}

/// The primary replicates another number of directories than the secondary has receivers
/// for: the root indexes would not name the same directories, so the link is refused, both
/// counts named.
#[test]
fn a_secondary_with_another_number_of_roots_refuses_the_link() {
    for (ours, theirs) in [(1, 2), (2, 1), (1, 0)] {
        let (a, b) = UnixStream::pair().unwrap();
        let secondary = Secondary::spawn_roots(b, options(AckLevel::Applied), ours);
        let error = StreamReplicator::start(
            a.try_clone().unwrap(),
            a,
            hello_roots("app", theirs),
            PATIENT,
        )
        .unwrap_err();
        let LinkError::Refused(reason) = &error else {
            panic!("{error}")
        };
        let expected = format!(
            "replicated directory count mismatch: this secondary has {ours} roots, the \
             primary replicates {theirs}"
        );
        assert!(reason.contains(&expected), "{reason}");
        let (dirs, end) = secondary.join_all();
        let Err(error @ LinkError::RootsMismatch { ours: o, theirs: t }) = &end else {
            panic!("{end:?}")
        };
        assert_eq!((*o, *t), (ours, theirs));
        assert_eq!(error.to_string(), expected);
        assert_eq!(dirs.len(), ours);
    }
}

#[test]
fn version_mismatches_are_refused_on_both_sides() {
    // A secondary speaking another version.
    let (a, b) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut peer = RawPeer::new(b);
        assert!(matches!(peer.recv(), Some(Message::Hello { .. })));
        peer.send(&Message::HelloAck {
            version: PROTOCOL_VERSION + 1,
            resume_from: 0,
        });
        peer.recv() // the primary's Goodbye
    });
    let error =
        StreamReplicator::start(a.try_clone().unwrap(), a, hello("app"), PATIENT).unwrap_err();
    assert!(
        matches!(error, LinkError::VersionMismatch { ours, theirs } if ours == PROTOCOL_VERSION && theirs == PROTOCOL_VERSION + 1),
        "{error}"
    );
    let Some(Message::Goodbye { reason }) = peer.join().unwrap() else {
        panic!("no Goodbye")
    };
    assert!(reason.contains("version mismatch"), "{reason}");

    // A primary speaking another version.
    let (a, b) = UnixStream::pair().unwrap();
    let secondary = Secondary::spawn(b, options(AckLevel::Applied));
    let mut primary = RawPeer::new(a);
    primary.send(&Message::Hello {
        version: PROTOCOL_VERSION + 1,
        module: "app".into(),
        node: "raw".into(),
        session: 1,
        roots: 1,
    });
    assert!(matches!(primary.recv(), Some(Message::Goodbye { .. })));
    let (_, end) = secondary.join();
    assert!(
        matches!(end, Err(LinkError::VersionMismatch { .. })),
        "{end:?}"
    );
}

#[test]
fn a_silent_secondary_fails_the_handshake_after_the_timeout() {
    let (a, b) = UnixStream::pair().unwrap();
    let timeout = Duration::from_millis(200);
    let error =
        StreamReplicator::start(a.try_clone().unwrap(), a, hello("app"), timeout).unwrap_err();
    assert!(
        matches!(error, LinkError::HandshakeTimeout(t) if t == timeout),
        "{error}"
    );
    drop(b);
}

/// Requests the wire format cannot carry never leave; the verdict depends on whether the
/// local call failed too.
#[test]
fn an_unencodable_request_fails_locally_without_breaking_the_link() {
    let (primary, secondary) = pair(options(AckLevel::Applied), PATIENT);
    let huge = Op::SetXattr {
        path: Some(rel("f")),
        name: "user.big".into(),
        value: bytes::Bytes::from(vec![0u8; 200 << 10]),
        flags: 0,
    };
    let hook = primary.link.root(0);
    let link: &dyn Replicator = &hook;
    assert_eq!(
        link.send(huge.clone()).wait(),
        Err(ReplicationError::PeerFailed(libc::EINVAL))
    );
    assert_eq!(
        link.send(huge).settle(LocalOutcome::Failed(libc::E2BIG)),
        Ok(())
    );
    link.send(mkdir("still-works")).wait().unwrap();
    assert_eq!(primary.link.stats().ops_sent, 1);
    // The hook shares the link: closing is explicit.
    primary.link.close();
    assert_eq!(secondary.join().1.unwrap().requests, 1);
}

/// A hook for a root the link does not carry: its requests never leave (the secondary would
/// end the connection for everyone), and the link keeps working.
#[test]
fn a_root_beyond_the_hello_count_fails_locally_without_breaking_the_link() {
    let (primary, secondary) = pair(options(AckLevel::Applied), PATIENT);
    assert_eq!(primary.link.roots(), 1);
    let stray = primary.link.root(1);
    assert_eq!(stray.index(), 1);
    assert_eq!(
        stray.send(mkdir("nowhere")).wait(),
        Err(ReplicationError::PeerFailed(libc::EINVAL))
    );
    assert_eq!(
        primary
            .link
            .send_to(u16::MAX, mkdir("nowhere"))
            .settle(LocalOutcome::Failed(libc::ENOENT)),
        Ok(())
    );
    primary.link.root(0).send(mkdir("here")).wait().unwrap();
    assert!(!primary.link.is_broken());
    assert_eq!(primary.link.stats().ops_sent, 1);
    primary.link.close();
    let (dir, end) = secondary.join();
    assert_eq!(end.unwrap().requests, 1);
    assert!(dir.path().join("here").is_dir());
    assert!(!dir.path().join("nowhere").exists());
}

/// The engine may drop the link from `on_broken`, which runs on the reader thread when the
/// peer vanishes: the close must not wait for (or join) the thread it runs on.
#[test]
fn the_link_can_be_dropped_from_its_own_on_broken_callback() {
    let (a, b) = UnixStream::pair().unwrap();
    let peer = raw_secondary(b, |_| {});
    let link = StreamReplicator::start(a.try_clone().unwrap(), a, hello("app"), PATIENT).unwrap();
    let slot = Arc::new(Mutex::new(Some(link)));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let owner = slot.clone();
    slot.lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .on_broken(move |reason| {
            drop(owner.lock().unwrap().take());
            done_tx.send(reason).unwrap();
        });
    drop(peer.join().unwrap());
    let reason = done_rx.recv_timeout(PATIENT).unwrap();
    assert!(reason.contains("closed the connection"), "{reason}");
    assert!(slot.lock().unwrap().is_none());
}
