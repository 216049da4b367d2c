//! The fd cache: unknown and reused handles, the bound, closing.

mod common;

use bytes::Bytes;
use common::{Fixture, OWNER, rel};
use nix::errno::Errno;
use rfs_fuse::protocol::op::Op;
use rfs_fuse::receiver::Receiver;
use std::fs;

fn create(handle: u64, path: &str) -> Op {
    Op::Create {
        handle,
        path: rel(path),
        mode: 0o644,
        owner: OWNER,
        exclusive: true,
    }
}

#[test]
fn unknown_handles_are_refused() {
    let mut fx = Fixture::new();
    let ops = [
        Op::Write {
            handle: 9,
            offset: 0,
            data: Bytes::from_static(b"x"),
        },
        Op::SetLen { handle: 9, len: 0 },
        Op::Fallocate {
            handle: 9,
            mode: 0,
            offset: 0,
            len: 1,
        },
        Op::Fsync {
            handle: 9,
            datasync: false,
        },
        Op::Close { handle: 9 },
    ];
    for op in ops {
        let e = fx.err(op);
        assert_eq!(e.errno(), Errno::EBADF);
        assert!(e.is_refused());
        assert!(e.op().contains("#9"), "{e}");
    }
    let e = fx.err(Op::Close { handle: 9 });
    assert_eq!(
        e.to_string(),
        format!("Close #9: refused: unknown handle: {}", Errno::EBADF)
    );
}

#[test]
fn closed_handles_are_forgotten() {
    let mut fx = Fixture::new();
    fx.ok(create(1, "f"));
    assert_eq!(fx.rx.open_handles(), 1);
    fx.ok(Op::Close { handle: 1 });
    assert_eq!(fx.rx.open_handles(), 0);
    assert_eq!(fx.err(Op::Close { handle: 1 }).errno(), Errno::EBADF);
    // The handle number can then be reused.
    fx.ok(create(1, "g"));
    fx.ok(Op::Close { handle: 1 });
}

#[test]
fn an_open_handle_is_not_reused_and_nothing_is_created() {
    let mut fx = Fixture::new();
    fx.ok(create(1, "f"));
    let e = fx.err(create(1, "g"));
    assert_eq!(e.errno(), Errno::EBADF);
    assert!(e.is_refused());
    assert!(!fx.at("g").exists(), "refused before creating");
    assert_eq!(
        fx.err(Op::Open {
            handle: 1,
            path: rel("f")
        })
        .errno(),
        Errno::EBADF
    );
    // The original handle still writes to f.
    fx.ok(Op::Write {
        handle: 1,
        offset: 0,
        data: Bytes::from_static(b"still f"),
    });
    fx.ok(Op::Close { handle: 1 });
    assert_eq!(fs::read(fx.at("f")).unwrap(), b"still f");
}

#[test]
fn the_handle_bound_is_enforced() {
    let fx = Fixture::new();
    let mut rx = Receiver::open(&fx.root).unwrap().with_handle_limit(2);
    rx.apply(&create(1, "a")).unwrap();
    rx.apply(&create(2, "b")).unwrap();
    let e = rx.apply(&create(3, "c")).unwrap_err();
    assert_eq!(e.errno(), Errno::EMFILE);
    assert!(e.is_refused());
    assert!(!fx.at("c").exists(), "refused before creating");
    rx.apply(&Op::Close { handle: 1 }).unwrap();
    rx.apply(&create(3, "c")).unwrap();
    assert_eq!(rx.open_handles(), 2);
}

#[test]
fn default_bound() {
    assert_eq!(rfs_fuse::receiver::DEFAULT_HANDLE_LIMIT, 65536);
}
