//! Renames: plain, onto an existing file, RENAME_NOREPLACE, RENAME_EXCHANGE, directories.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};

use rfs_fuse::protocol::op::Op;

use crate::support::*;

#[test]
fn renames_of_files() {
    let fx = mounted(|d| {
        fs::write(d.join("a"), b"A").unwrap();
        fs::write(d.join("b"), b"B").unwrap();
        fs::write(d.join("c"), b"C").unwrap();
    });
    fs::rename(fx.path("a"), fx.path("a2")).unwrap();
    assert_eq!(fs::read(fx.path("a2")).unwrap(), b"A");
    assert!(!fx.path("a").exists());

    // Onto an existing file, which a reader still holds open.
    let old_b = File::open(fx.path("b")).unwrap();
    fs::rename(fx.path("a2"), fx.path("b")).unwrap();
    assert_eq!(fs::read(fx.path("b")).unwrap(), b"A");
    let mut buf = [0u8; 1];
    old_b.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(
        &buf, b"B",
        "the replaced file stays readable through its descriptor"
    );
    drop(old_b);

    // RENAME_NOREPLACE onto an existing name fails (the kernel refuses it before asking
    // the daemon: nothing is sent), changes nothing.
    assert_eq!(
        errno(renameat2(
            &fx.path("b"),
            &fx.path("c"),
            libc::RENAME_NOREPLACE
        )),
        libc::EEXIST
    );
    renameat2(&fx.path("b"), &fx.path("n"), libc::RENAME_NOREPLACE).unwrap();

    // RENAME_EXCHANGE swaps.
    renameat2(&fx.path("n"), &fx.path("c"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(fx.path("n")).unwrap(), b"C");
    assert_eq!(fs::read(fx.path("c")).unwrap(), b"A");

    let ops = fx.ops_settled();
    let renames: Vec<&Op> = ops
        .iter()
        .filter(|op| matches!(op, Op::Rename { .. }))
        .collect();
    assert_eq!(
        renames,
        [
            &Op::Rename {
                from: rel("a"),
                to: rel("a2"),
                flags: 0
            },
            &Op::Rename {
                from: rel("a2"),
                to: rel("b"),
                flags: 0
            },
            &Op::Rename {
                from: rel("b"),
                to: rel("n"),
                flags: libc::RENAME_NOREPLACE
            },
            &Op::Rename {
                from: rel("n"),
                to: rel("c"),
                flags: libc::RENAME_EXCHANGE
            },
        ]
    );
    let dir = fx.unmount();
    assert_eq!(fs::read(dir.path().join("n")).unwrap(), b"C");
    assert_eq!(fs::read(dir.path().join("c")).unwrap(), b"A");
    assert!(!dir.path().join("a").exists() && !dir.path().join("b").exists());
}

#[test]
fn renaming_a_directory_moves_its_children() {
    let fx = mounted(|d| {
        fs::create_dir_all(d.join("d/sub")).unwrap();
        fs::write(d.join("d/sub/f"), b"1").unwrap();
        fs::write(d.join("d/g"), b"2").unwrap();
    });
    // Descriptors opened before the rename: no lookup happens when they are used later,
    // so the paths sent must come from the inode table's bookkeeping.
    let held = OpenOptions::new()
        .write(true)
        .open(fx.path("d/sub/f"))
        .unwrap();
    let held_g = File::open(fx.path("d/g")).unwrap();

    fs::rename(fx.path("d"), fx.path("e")).unwrap();
    held.write_all_at(b"written after the rename", 0).unwrap();
    held.set_permissions(fs::Permissions::from_mode(0o600))
        .unwrap();
    held_g
        .set_permissions(fs::Permissions::from_mode(0o640))
        .unwrap();
    drop(held);
    drop(held_g);
    // A child opened by its new path, and a new file in the renamed directory.
    let mut f = OpenOptions::new()
        .append(true)
        .open(fx.path("e/sub/f"))
        .unwrap();
    f.write_all(b"!").unwrap();
    drop(f);
    fs::write(fx.path("e/sub/new"), b"n").unwrap();
    assert_eq!(
        fs::read_to_string(fx.path("e/sub/f")).unwrap(),
        "written after the rename!"
    );
    // Exchange two directories, then use a descriptor held across it.
    fs::create_dir(fx.path("x")).unwrap();
    fs::write(fx.path("x/in_x"), b"x").unwrap();
    let held_x = File::open(fx.path("x/in_x")).unwrap();
    renameat2(&fx.path("x"), &fx.path("e"), libc::RENAME_EXCHANGE).unwrap();
    held_x
        .set_permissions(fs::Permissions::from_mode(0o604))
        .unwrap();
    drop(held_x);

    let ops = fx.ops_settled();
    let mode_of = |p: &str| {
        ops.iter().find_map(|op| match op {
            Op::SetAttr { path, attr } if *path == Some(rel(p)) => attr.mode,
            _ => None,
        })
    };
    assert_eq!(mode_of("e/sub/f"), Some(0o600), "{ops:#?}");
    assert_eq!(mode_of("e/g"), Some(0o640));
    assert_eq!(
        mode_of("e/in_x"),
        Some(0o604),
        "exchange moves the other side too"
    );
    let first = handle_of(&ops, "d/sub/f");
    assert_eq!(
        writes(&ops, first),
        [(0, b"written after the rename".to_vec())]
    );
    let second = handle_of(&ops, "e/sub/f");
    assert_eq!(writes(&ops, second), [(24, b"!".to_vec())]);
    assert!(
        ops.iter()
            .any(|op| matches!(op, Op::Create { path, .. } if *path == rel("e/sub/new")))
    );

    let dir = fx.unmount();
    assert_eq!(
        fs::read_to_string(dir.path().join("x/sub/f")).unwrap(),
        "written after the rename!"
    );
    assert_eq!(fs::read(dir.path().join("e/in_x")).unwrap(), b"x");
}
