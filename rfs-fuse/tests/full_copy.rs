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
    use rfs_fuse::sync::paths::Changed;
    use rfs_fuse::sync::tracker::Changes;
    use rfs_fuse::sync::zones::ZoneSize;
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
    let mut changes = Changes::new(ZoneSize::new(CHUNK as u64).unwrap());
    for path in named {
        changes.add(Changed::Path(RelPath::new(path.as_bytes()).unwrap()));
    }
    changes.add(Changed::Root);
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

mod in_place {
    use super::*;
    use rfs_fuse::protocol::op::RelPath;
    use rfs_fuse::sync::full_copy::copy_changes;
    use rfs_fuse::sync::paths::Changed;
    use rfs_fuse::sync::tracker::Changes;
    use rfs_fuse::sync::zones::ZoneSize;

    const ZONE: u64 = CHUNK as u64;

    fn p(path: &str) -> RelPath {
        RelPath::new(path.as_bytes()).unwrap()
    }

    fn data(path: &str, start: u64, end: u64) -> Changed {
        Changed::Data {
            path: p(path),
            start,
            end,
        }
    }

    /// Bytes that differ from one offset to the next, so a misplaced zone shows.
    fn pattern(len: u64, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(bytes, offset).unwrap();
    }

    /// A primary tree and a peer holding a full copy of it.
    fn copied_pair() -> (tempfile::TempDir, tempfile::TempDir, Receiver) {
        let primary = tempfile::tempdir().unwrap();
        let secondary = tempfile::tempdir().unwrap();
        let root = primary.path();
        rich_tree(root);
        fs::write(root.join("big"), pattern(6 * ZONE, 0)).unwrap();
        fs::write(root.join("grown"), pattern(ZONE, 1)).unwrap();
        fs::write(root.join("cut"), pattern(3 * ZONE, 2)).unwrap();
        fs::write(root.join("turned"), b"a file").unwrap();
        let mut receiver = Receiver::open(secondary.path()).unwrap();
        full_copy(root, apply_to(&mut receiver)).unwrap();
        (primary, secondary, receiver)
    }

    #[test]
    fn only_the_changed_zones_travel_and_the_copy_is_exact() {
        let (primary, secondary, mut receiver) = copied_pair();
        let root = primary.path();
        let mut changes = Changes::new(ZoneSize::new(ZONE).unwrap());
        // In place, across zones 2 to 4 of six.
        write_at(&root.join("big"), 2 * ZONE + 10, &[9; 100]);
        changes.add(data("big", 2 * ZONE + 10, 2 * ZONE + 110));
        write_at(&root.join("big"), 4 * ZONE - 1, &[8; 2]);
        changes.add(data("big", 4 * ZONE - 1, 4 * ZONE + 1));
        // Appended: half a zone.
        write_at(&root.join("grown"), ZONE, &pattern(ZONE / 2, 3));
        changes.add(data("grown", ZONE, ZONE + ZONE / 2));
        // Cut short, then grown again by a write further on.
        let cut = OpenOptions::new()
            .write(true)
            .open(root.join("cut"))
            .unwrap();
        cut.set_len(1000).unwrap();
        cut.write_all_at(b"end", 2 * ZONE - 3).unwrap();
        changes.add(Changed::Cut {
            path: p("cut"),
            len: 1000,
        });
        changes.add(data("cut", 2 * ZONE - 3, 2 * ZONE));
        // A hard-linked file written in place: the peer's link stays a link.
        write_at(&root.join("a/small.txt"), 0, b"HELLO");
        changes.add(data("a/small.txt", 0, 5));
        // Metadata only, of a file and of a directory.
        fs::set_permissions(root.join("a/b/empty"), fs::Permissions::from_mode(0o600)).unwrap();
        xattr(&root.join("a/b/empty"), "user.new", b"1");
        changes.add(Changed::Metadata(p("a/b/empty")));
        fs::set_permissions(root.join("a/b/c"), fs::Permissions::from_mode(0o711)).unwrap();
        changes.add(Changed::Metadata(p("a/b/c")));
        // Named in place, but another kind of entry now: copied whole.
        fs::remove_file(root.join("turned")).unwrap();
        fs::create_dir(root.join("turned")).unwrap();
        fs::write(root.join("turned/inside"), b"x").unwrap();
        changes.add(data("turned", 0, 1));
        // A whole path in the same set.
        fs::write(root.join("new"), b"brand new").unwrap();
        changes.add(Changed::Path(p("new")));

        let mut sent = Vec::new();
        let mut apply = apply_to(&mut receiver);
        let stats = copy_changes(root, &changes, |op: Op| {
            sent.push(op.clone());
            apply(op)
        })
        .unwrap();
        let diffs = compare_trees_with(root, secondary.path(), CompareOptions::default()).unwrap();
        assert!(diffs.is_empty(), "differences: {diffs:#?}");
        let zones = 3 * ZONE; // big: zones 2, 3 and 4
        let appended = ZONE / 2; // grown: zone 1 up to its end
        let tail = 2 * ZONE - 1000; // cut: everything from the cut on
        let expected = zones + appended + tail + 5 + b"x".len() as u64 + b"brand new".len() as u64;
        assert_eq!(
            stats.bytes, expected,
            "only changed zones, whole files for whole paths"
        );
        let created: Vec<String> = sent
            .iter()
            .filter_map(|op| match op {
                Op::Create { path, .. } | Op::RemoveTree { path } => {
                    Some(String::from_utf8_lossy(&path.to_bytes()).into_owned())
                }
                _ => None,
            })
            .collect();
        assert_eq!(created, ["new", "new", "turned", "turned/inside"]);
    }

    #[test]
    fn a_file_the_peer_lacks_fails_the_copy() {
        let (primary, secondary, mut receiver) = copied_pair();
        fs::remove_file(secondary.path().join("big")).unwrap();
        let mut changes = Changes::new(ZoneSize::new(ZONE).unwrap());
        changes.add(data("big", 0, 1));
        let err = copy_changes(primary.path(), &changes, apply_to(&mut receiver)).unwrap_err();
        assert!(err.to_string().contains("big"), "{err}");
    }
}
