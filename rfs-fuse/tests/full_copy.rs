//! A full copy rebuilds a rich tree exactly on an empty secondary: content, holes, hard
//! links, symlinks, FIFOs, modes, owners, xattrs and times, directories' and the root's own
//! included.

use nix::sys::stat::{Mode, SFlag, mknod};
use nix::unistd::{Gid, Uid, chown};
use rfs_fuse::compare::{CompareOptions, compare_trees_with};
use rfs_fuse::protocol::op::Op;
use rfs_fuse::receiver::Receiver;
use rfs_fuse::sync::full_copy::{CHUNK, full_copy};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;

fn rich_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join("a/small.txt"), b"hello").unwrap();
    fs::write(root.join("a/b/empty"), b"").unwrap();
    // Larger than one chunk, with a hole in the middle.
    let big = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(root.join("a/b/sparse"))
        .unwrap();
    big.write_at(&vec![7u8; CHUNK + 100], 0).unwrap();
    big.write_at(b"tail", 8 * CHUNK as u64).unwrap();
    big.set_len(9 * CHUNK as u64).unwrap();
    fs::hard_link(root.join("a/small.txt"), root.join("a/b/c/hardlink")).unwrap();
    symlink("../small.txt", root.join("a/b/rel-link")).unwrap();
    symlink("/nowhere/absolute", root.join("dangling")).unwrap();
    mknod(
        &root.join("fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o620),
        0,
    )
    .unwrap();
    fs::set_permissions(root.join("a/small.txt"), fs::Permissions::from_mode(0o4751)).unwrap();
    fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o2750)).unwrap();
    chown(
        &root.join("a/b/empty"),
        Some(Uid::from_raw(1234)),
        Some(Gid::from_raw(5678)),
    )
    .unwrap();
    xattr(&root.join("a/small.txt"), "user.colour", b"blue");
    xattr(&root.join("a/b"), "trusted.tag", b"x");
    // The root's own metadata: a special mode, an owner, an xattr.
    chown(root, Some(Uid::from_raw(4321)), Some(Gid::from_raw(8765))).unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o3751)).unwrap();
    xattr(root, "user.root-tag", b"top");
    // Times last: creating entries changes their directories' mtimes.
    for p in ["a/small.txt", "a/b/sparse", "a/b/c", "a/b", "a", "fifo", ""] {
        set_times(&root.join(p), 1_600_000_000 + p.len() as i64);
    }
}

fn xattr(path: &Path, name: &str, value: &[u8]) {
    let status = std::process::Command::new("setfattr")
        .args(["-n", name, "-v", &String::from_utf8_lossy(value)])
        .arg(path)
        .status();
    if status.map(|s| s.success()).unwrap_or(false) {
        return;
    }
    // Without the attr tools, use the syscall through nix-free libc.
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and alive for the call; `value` is readable
    // for `value.len()` bytes.
    let rc = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setting {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn set_times(path: &Path, sec: i64) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(sec, 123);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

#[test]
fn a_full_copy_rebuilds_the_tree_exactly() {
    let primary = tempfile::tempdir().unwrap();
    let secondary = tempfile::tempdir().unwrap();
    rich_tree(primary.path());
    let mut receiver = Receiver::open(secondary.path()).unwrap();
    let mut ops = Vec::new();
    let stats = full_copy(primary.path(), |op: Op| {
        ops.push(op.clone());
        receiver
            .apply(&op)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
    .unwrap();
    let diffs = compare_trees_with(
        primary.path(),
        secondary.path(),
        CompareOptions {
            mtime: true,
            dir_mtime: true,
        },
    )
    .unwrap();
    assert!(diffs.is_empty(), "differences: {diffs:#?}");
    assert_eq!(stats.links, 1, "the second name of the hard link is a Link");
    // Data extents are block-granular; the 7 MiB hole is not sent.
    assert!(
        stats.bytes < 2 * CHUNK as u64,
        "holes are not sent: {} bytes",
        stats.bytes
    );
    // The hole stayed a hole on the secondary.
    let meta = fs::metadata(secondary.path().join("a/b/sparse")).unwrap();
    assert!(
        meta.blocks() * 512 < 4 * CHUNK as u64,
        "{} blocks",
        meta.blocks()
    );
    // The root's own metadata: owner and mode first, its xattr next, its times at the end.
    let root_meta = fs::symlink_metadata(secondary.path()).unwrap();
    assert_eq!(root_meta.mode() & 0o7777, 0o3751);
    assert_eq!((root_meta.uid(), root_meta.gid()), (4321, 8765));
    assert_eq!(root_meta.mtime(), 1_600_000_000);
    assert!(matches!(
        &ops[0],
        Op::SetAttr { path: None, attr }
            if attr.mode == Some(0o3751) && attr.uid == Some(4321) && attr.gid == Some(8765)
    ));
    assert!(
        matches!(&ops[1], Op::SetXattr { path: None, name, .. } if name == "user.root-tag"),
        "{:?}",
        ops[1]
    );
    assert!(matches!(
        ops.last().unwrap(),
        Op::SetAttr { path: None, attr } if attr.mtime.is_some() && attr.mode.is_none()
    ));
    // No write is larger than the protocol allows.
    assert!(
        ops.iter()
            .all(|op| !matches!(op, Op::Write { data, .. } if data.len() > CHUNK))
    );
}

#[test]
fn an_unreadable_tree_is_an_error_naming_the_path() {
    let missing = Path::new("/nonexistent/hakit-full-copy");
    let err = full_copy(missing, |_op: Op| Ok::<(), std::io::Error>(())).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/hakit-full-copy"),
        "{err}"
    );
}

#[test]
fn a_failing_consumer_stops_the_copy() {
    let primary = tempfile::tempdir().unwrap();
    rich_tree(primary.path());
    let mut sent = 0;
    let err = full_copy(primary.path(), |_op: Op| {
        sent += 1;
        if sent == 3 {
            Err(std::io::Error::other("stream broken"))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(err.to_string().contains("stream broken"), "{err}");
    assert_eq!(sent, 3);
}

/// Applies every op to the receiver, failing the copy on the first refusal.
fn apply_to(receiver: &mut Receiver) -> impl FnMut(Op) -> Result<(), std::io::Error> + '_ {
    |op: Op| {
        receiver
            .apply(&op)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

#[test]
fn copying_the_changed_paths_brings_an_earlier_copy_up_to_date() {
    use rfs_fuse::protocol::op::RelPath;
    use rfs_fuse::sync::full_copy::copy_changes;
    use rfs_fuse::sync::tracker::Changes;
    let primary = tempfile::tempdir().unwrap();
    let secondary = tempfile::tempdir().unwrap();
    let root = primary.path();
    rich_tree(root);
    let mut receiver = Receiver::open(secondary.path()).unwrap();
    full_copy(root, apply_to(&mut receiver)).unwrap();

    // Changes of every kind, as a tracker would have named them.
    fs::write(root.join("a/small.txt"), b"changed in place").unwrap(); // + hard link a/b/c/hardlink
    fs::rename(root.join("a/b"), root.join("moved")).unwrap();
    fs::remove_file(root.join("dangling")).unwrap();
    fs::create_dir(root.join("new-dir")).unwrap();
    fs::write(root.join("new-dir/f"), b"new").unwrap();
    fs::remove_file(root.join("fifo")).unwrap();
    fs::create_dir(root.join("fifo")).unwrap(); // same name, new type
    fs::set_permissions(root, fs::Permissions::from_mode(0o700)).unwrap();
    let named = [
        "a/small.txt",
        "a/b",
        "moved",
        "dangling",
        "new-dir",
        "new-dir/f",
        "fifo",
    ];
    let changes = Changes {
        paths: named
            .iter()
            .map(|p| RelPath::new(p.as_bytes()).unwrap())
            .collect(),
        root: true,
    };
    let mut sent = Vec::new();
    let mut apply = apply_to(&mut receiver);
    copy_changes(root, &changes, |op: Op| {
        sent.push(op.clone());
        apply(op)
    })
    .unwrap();
    let diffs = compare_trees_with(root, secondary.path(), CompareOptions::default()).unwrap();
    assert!(diffs.is_empty(), "differences: {diffs:#?}");
    // "new-dir/f" is covered by "new-dir": one RemoveTree per top-most changed path.
    let removed = sent
        .iter()
        .filter(|op| matches!(op, Op::RemoveTree { .. }))
        .count();
    assert_eq!(removed, named.len() - 1);
    // Untouched files did not travel.
    assert!(!sent.iter().any(|op| matches!(
        op,
        Op::Create { path, .. } if path.to_bytes() == b"a/b/empty"
    )));
}

#[test]
fn a_live_copy_skips_what_vanishes_under_it() {
    use rfs_fuse::sync::full_copy::live_copy;
    let primary = tempfile::tempdir().unwrap();
    rich_tree(primary.path());
    let root = primary.path().to_path_buf();
    let mut removed = false;
    let stats = live_copy(primary.path(), |op: Op| {
        // The application removes a directory just as the copy reaches it.
        if !removed && matches!(&op, Op::Mkdir { path, .. } if path.to_bytes() == b"a/b") {
            fs::remove_dir_all(root.join("a/b")).unwrap();
            removed = true;
        }
        Ok::<(), std::io::Error>(())
    })
    .unwrap();
    assert!(removed);
    assert!(stats.files >= 1);
    // The strict copy fails on the same situation.
    rich_tree_again(&root);
    let mut removed = false;
    let err = full_copy(&root, |op: Op| {
        if !removed && matches!(&op, Op::Mkdir { path, .. } if path.to_bytes() == b"a/b") {
            fs::remove_dir_all(root.join("a/b")).unwrap();
            removed = true;
        }
        Ok::<(), std::io::Error>(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("a/b"), "{err}");
}

/// Recreates what the previous copy's saboteur removed.
fn rich_tree_again(root: &Path) {
    let fresh = tempfile::tempdir().unwrap();
    rich_tree(fresh.path());
    let _ = fs::remove_dir_all(root.join("a"));
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fresh.path().join("a"))
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}
