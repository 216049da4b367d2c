//! Hostile input: symlinks planted in the replica that lead outside it, a mount inside it.
//! Every operation through them is refused, and nothing outside the root changes.

mod common;

use bytes::Bytes;
use common::{Fixture, OWNER, lgetxattr, lstat, rel, snapshot};
use nix::errno::Errno;
use rfs_fuse::protocol::op::{Op, SetAttr, Timestamp};
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};

/// root/ holds `a`, `sub/`, `inside -> sub`, and three ways out: `evil` (absolute, to
/// outside/), `up` (`../outside`) and `dots` (`../..`).
fn hostile() -> Fixture {
    let fx = Fixture::new();
    fs::write(fx.at("a"), b"a").unwrap();
    fs::create_dir(fx.at("sub")).unwrap();
    symlink("sub", fx.at("inside")).unwrap();
    symlink(&fx.outside, fx.at("evil")).unwrap();
    symlink("../outside", fx.at("up")).unwrap();
    symlink("../..", fx.at("dots")).unwrap();
    fx
}

/// Paths that name outside/ through each escaping symlink.
fn ways_out(fx: &Fixture) -> Vec<String> {
    let tmp_name = fx.tmp.path().file_name().unwrap().to_str().unwrap();
    vec![
        "evil".into(),
        "up".into(),
        format!("dots/{tmp_name}/outside"),
    ]
}

fn ops_through(out: &str) -> Vec<Op> {
    let p = |rest: &str| rel(&format!("{out}/{rest}"));
    let attr = SetAttr {
        mode: Some(0o777),
        uid: Some(1234),
        size: Some(0),
        mtime: Some(Timestamp { sec: 1, nsec: 0 }),
        ..SetAttr::default()
    };
    vec![
        Op::Create {
            handle: 1,
            path: p("x"),
            mode: 0o644,
            owner: OWNER,
            exclusive: true,
        },
        Op::Create {
            handle: 1,
            path: p("f"),
            mode: 0o644,
            owner: OWNER,
            exclusive: false,
        },
        Op::Open {
            handle: 1,
            path: p("f"),
        },
        Op::Mkdir {
            path: p("d"),
            mode: 0o755,
            owner: OWNER,
        },
        Op::Mknod {
            path: p("n"),
            mode: libc::S_IFIFO | 0o644,
            rdev: 0,
            owner: OWNER,
        },
        Op::Symlink {
            path: p("s"),
            target: "/etc".into(),
            owner: OWNER,
        },
        Op::Link {
            existing: rel("a"),
            new: p("a"),
        },
        Op::Link {
            existing: p("f"),
            new: rel("stolen"),
        },
        Op::Rename {
            from: rel("a"),
            to: p("a"),
            flags: 0,
        },
        Op::Rename {
            from: p("f"),
            to: rel("stolen"),
            flags: 0,
        },
        Op::Rename {
            from: rel("a"),
            to: p("f"),
            flags: libc::RENAME_EXCHANGE,
        },
        Op::Unlink { path: p("f") },
        Op::Rmdir { path: p("sub") },
        Op::SetAttr {
            path: Some(p("f")),
            attr: attr.clone(),
        },
        Op::SetAttr {
            path: Some(p("sub")),
            attr,
        },
        Op::SetXattr {
            path: Some(p("f")),
            name: "trusted.evil".into(),
            value: Bytes::from_static(b"1"),
            flags: 0,
        },
        Op::RemoveXattr {
            path: Some(p("f")),
            name: "trusted.evil".into(),
        },
        Op::FsyncDir {
            path: Some(p("sub")),
        },
    ]
}

#[test]
fn every_operation_through_an_escaping_symlink_is_refused() {
    let mut fx = hostile();
    fs::write(fx.outside.join("f"), b"secret").unwrap();
    let before = snapshot(fx.tmp.path());
    let mut refused = 0;
    for out in ways_out(&fx) {
        for op in ops_through(&out) {
            let e = fx.err(op.clone());
            assert_eq!(e.errno(), Errno::EXDEV, "{op:?}: {e}");
            assert!(e.is_refused(), "{e}");
            refused += 1;
        }
    }
    assert_eq!(refused, 3 * 18);
    assert_eq!(snapshot(fx.tmp.path()), before, "something changed");
    assert_eq!(fs::read(fx.outside.join("f")).unwrap(), b"secret");
    assert_eq!(fx.rx.open_handles(), 0);
}

#[test]
fn refusal_names_the_operation_and_paths() {
    let mut fx = hostile();
    let e = fx.err(Op::Rename {
        from: rel("a"),
        to: rel("evil/a"),
        flags: 0,
    });
    let text = e.to_string();
    assert!(
        text.starts_with("Rename a -> evil/a: resolving the parent directory: refused"),
        "{text}"
    );
    assert!(text.ends_with(&Errno::EXDEV.to_string()), "{text}");
    assert_eq!(e.op(), "Rename a -> evil/a");
    assert!(fx.at("a").exists());
}

#[test]
fn a_final_symlink_is_acted_on_itself_never_followed() {
    let mut fx = hostile();
    let outside_before = snapshot(&fx.outside);
    let create = |exclusive| Op::Create {
        handle: 1,
        path: rel("evil"),
        mode: 0o644,
        owner: OWNER,
        exclusive,
    };
    assert_eq!(fx.err(create(true)).errno(), Errno::EEXIST);
    let e = fx.err(create(false));
    assert_eq!(e.errno(), Errno::ELOOP);
    assert!(e.is_refused());
    let e = fx.err(Op::Open {
        handle: 1,
        path: rel("evil"),
    });
    assert_eq!(e.errno(), Errno::ELOOP);
    let e = fx.err(Op::Mkdir {
        path: rel("evil"),
        mode: 0o777,
        owner: OWNER,
    });
    assert_eq!(e.errno(), Errno::EEXIST);
    assert!(
        fx.rx
            .apply(&Op::FsyncDir {
                path: Some(rel("evil"))
            })
            .is_err()
    );
    let e = fx.err(Op::SetAttr {
        path: Some(rel("evil")),
        attr: SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    });
    assert_eq!(e.errno(), Errno::ELOOP);

    // Metadata and xattrs land on the link.
    fx.ok(Op::SetAttr {
        path: Some(rel("evil")),
        attr: SetAttr {
            mode: Some(0o777),
            uid: Some(1234),
            gid: Some(5678),
            atime: Some(Timestamp { sec: 7, nsec: 0 }),
            mtime: Some(Timestamp { sec: 7, nsec: 0 }),
            size: None,
        },
    });
    fx.ok(Op::SetXattr {
        path: Some(rel("evil")),
        name: "trusted.mark".into(),
        value: Bytes::from_static(b"link"),
        flags: 0,
    });
    let link = lstat(&fx.at("evil"));
    assert_eq!((link.uid(), link.gid(), link.mtime()), (1234, 5678, 7));
    assert_eq!(
        lgetxattr(&fx.at("evil"), "trusted.mark").as_deref(),
        Some(&b"link"[..])
    );
    assert_eq!(lgetxattr(&fx.outside, "trusted.mark"), None);

    // Renaming, linking and unlinking move the link, not its target.
    fx.ok(Op::Link {
        existing: rel("evil"),
        new: rel("evil2"),
    });
    fx.ok(Op::Rename {
        from: rel("evil2"),
        to: rel("evil3"),
        flags: 0,
    });
    fx.ok(Op::Unlink { path: rel("evil3") });
    fx.ok(Op::Unlink { path: rel("evil") });
    assert!(fx.outside.join("f").exists());
    assert_eq!(snapshot(&fx.outside), outside_before);
}

#[test]
fn symlinks_that_stay_beneath_the_root_are_followed() {
    let mut fx = hostile();
    fx.ok(Op::Create {
        handle: 1,
        path: rel("inside/x"),
        mode: 0o600,
        owner: OWNER,
        exclusive: true,
    });
    fx.ok(Op::Close { handle: 1 });
    assert!(fx.at("sub/x").is_file());
    symlink(fx.at("sub"), fx.at("absolute_inside")).unwrap();
    symlink("sub/../sub", fx.at("wobbly")).unwrap();
    fx.ok(Op::Mkdir {
        path: rel("wobbly/d"),
        mode: 0o700,
        owner: OWNER,
    });
    assert!(fx.at("sub/d").is_dir());
    // Absolute symlinks are refused even when they point inside: RESOLVE_BENEATH.
    let e = fx.err(Op::Mkdir {
        path: rel("absolute_inside/d2"),
        mode: 0o700,
        owner: OWNER,
    });
    assert_eq!(e.errno(), Errno::EXDEV);
    assert!(!fx.at("sub/d2").exists());
}

#[test]
fn a_mount_inside_the_root_is_not_crossed() {
    let mut fx = hostile();
    let mnt = fx.at("mnt");
    fs::create_dir(&mnt).unwrap();
    let _guard = common::mount_tmpfs(&mnt);
    let e = fx.err(Op::Mkdir {
        path: rel("mnt/d"),
        mode: 0o700,
        owner: OWNER,
    });
    assert_eq!(e.errno(), Errno::EXDEV);
    assert!(!mnt.join("d").exists());
}
