//! `EmptyRoot`: everything beneath the root goes, the root and everything outside stay;
//! symlinks are removed themselves, never followed; mounts are not crossed; the root is
//! reached through the receiver's descriptor, not its path.

mod common;

use bytes::Bytes;
use common::{Fixture, OWNER, lgetxattr, rel, snapshot};
use nix::errno::Errno;
use rfs_fuse::protocol::op::{Op, SetAttr};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

fn mkdir(path: &str, mode: u32) -> Op {
    Op::Mkdir {
        path: rel(path),
        mode,
        owner: OWNER,
    }
}

fn create(handle: u64, path: &str) -> Op {
    Op::Create {
        handle,
        path: rel(path),
        mode: 0o644,
        owner: OWNER,
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

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn everything_beneath_goes_the_root_and_the_outside_stay() {
    let mut fx = Fixture::new();
    fx.ok(mkdir("a", 0o755));
    fx.ok(mkdir("a/b", 0o755));
    fx.ok(create(1, "a/b/f"));
    fx.ok(write(1, b"old content"));
    fx.ok(create(2, "top"));
    fx.ok(Op::Mknod {
        path: rel("fifo"),
        mode: libc::S_IFIFO | 0o600,
        rdev: 0,
        owner: OWNER,
    });
    // A directory nobody may write to, and a deep chain.
    fx.ok(mkdir("locked", 0o755));
    fx.ok(create(3, "locked/f"));
    fs::set_permissions(fx.at("locked"), fs::Permissions::from_mode(0o500)).unwrap();
    let mut deep = String::from("deep");
    fx.ok(mkdir(&deep, 0o700));
    for _ in 0..100 {
        deep.push_str("/d");
        fx.ok(mkdir(&deep, 0o700));
    }
    // Symlinks pointing out of the root, to a directory and to a file, absolute and relative:
    // emptying must remove the links, never what they point to.
    symlink(&fx.outside, fx.at("out")).unwrap();
    symlink(fx.outside.join("sub"), fx.at("a/outsub")).unwrap();
    symlink("../../../outside/f", fx.at("a/b/outfile")).unwrap();
    symlink("../outside", fx.at("rel-out")).unwrap();
    fs::write(fx.outside.join("sub/keep"), b"outside").unwrap();
    // The root's own metadata stays.
    fx.ok(Op::SetAttr {
        path: None,
        attr: SetAttr {
            mode: Some(0o750),
            ..SetAttr::default()
        },
    });
    fx.ok(Op::SetXattr {
        path: None,
        name: "user.kept".into(),
        value: Bytes::from_static(b"yes"),
        flags: 0,
    });
    let outside = snapshot(&fx.outside);
    let root_ino = fs::metadata(&fx.root).unwrap().ino();
    assert_eq!(fx.rx.open_handles(), 3);

    fx.ok(Op::EmptyRoot);

    assert_eq!(entries(&fx.root), Vec::<PathBuf>::new());
    let meta = fs::symlink_metadata(&fx.root).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.ino(), meta.mode() & 0o7777), (root_ino, 0o750));
    assert_eq!(
        lgetxattr(&fx.root, "user.kept").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(snapshot(&fx.outside), outside);
    assert_eq!(fs::read(fx.outside.join("f")).unwrap(), b"secret");
    assert_eq!(fs::read(fx.outside.join("sub/keep")).unwrap(), b"outside");

    // Every handle was closed: their numbers are unknown now, and free again.
    assert_eq!(fx.rx.open_handles(), 0);
    let e = fx.err(write(1, b"late"));
    assert_eq!(e.errno(), Errno::EBADF);
    assert!(e.is_refused());
    fx.ok(create(1, "fresh"));
    fx.ok(write(1, b"new"));
    fx.ok(Op::Close { handle: 1 });
    assert_eq!(fs::read(fx.at("fresh")).unwrap(), b"new");
}

#[test]
fn an_empty_root_stays_empty() {
    let mut fx = Fixture::new();
    fx.ok(Op::EmptyRoot);
    fx.ok(Op::EmptyRoot);
    assert!(entries(&fx.root).is_empty());
    assert!(fx.root.is_dir());
}

/// A file system mounted inside the root is not part of the replica: it is not crossed
/// (EXDEV, as for every other operation) and its content survives.
#[test]
fn a_mount_inside_the_root_is_not_emptied() {
    let mut fx = Fixture::new();
    let mnt = fx.at("mnt");
    fs::create_dir(&mnt).unwrap();
    let _guard = common::mount_tmpfs(&mnt);
    fs::write(mnt.join("other-fs"), b"not ours").unwrap();
    let e = fx.err(Op::EmptyRoot);
    assert_eq!(e.errno(), Errno::EXDEV);
    assert!(!e.is_refused(), "the peer did nothing wrong: {e}");
    assert!(e.to_string().contains("mount point"), "{e}");
    assert_eq!(fs::read(mnt.join("other-fs")).unwrap(), b"not ours");
}

/// On a secondary, the root's path is covered by the read-only FUSE mount: emptying goes
/// through the descriptor opened before, to the directory underneath.
#[test]
fn the_root_is_reached_by_its_descriptor_not_its_path() {
    let mut fx = Fixture::new();
    fx.ok(create(1, "underneath"));
    fx.ok(Op::Close { handle: 1 });
    let root = fx.root.clone();
    {
        let _cover = common::mount_tmpfs(&root);
        fs::write(root.join("on-the-cover"), b"not the replica").unwrap();
        fx.ok(Op::EmptyRoot);
        assert_eq!(
            fs::read(root.join("on-the-cover")).unwrap(),
            b"not the replica"
        );
    }
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
}

#[test]
fn remove_tree_takes_one_entry_and_what_is_beneath_it() {
    let mut fx = Fixture::new();
    fx.ok(mkdir("keep", 0o755));
    fx.ok(create(1, "keep/f"));
    fx.ok(mkdir("gone", 0o755));
    fx.ok(mkdir("gone/sub", 0o700));
    fx.ok(create(2, "gone/sub/f"));
    fx.ok(write(2, b"held open"));
    symlink(&fx.outside, fx.at("gone/out")).unwrap();
    fx.ok(create(3, "file"));
    let outside = snapshot(&fx.outside);

    fx.ok(Op::RemoveTree { path: rel("gone") });
    fx.ok(Op::RemoveTree { path: rel("file") });
    // Absent already: nothing to do, no error.
    fx.ok(Op::RemoveTree { path: rel("gone") });
    fx.ok(Op::RemoveTree {
        path: rel("never/was"),
    });

    assert_eq!(entries(&fx.root), vec![fx.at("keep")]);
    assert!(fx.at("keep/f").exists());
    assert_eq!(snapshot(&fx.outside), outside, "the symlink's target stays");
    // A handle on a removed file still works: it is an unlinked-open file now.
    fx.ok(write(2, b"still fine"));
}
