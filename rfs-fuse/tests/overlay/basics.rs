//! Files already there, data paths, unlinked-open files, directories, links, many files.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};

use rfs_fuse::overlay::FUSE_SUPER_MAGIC;
use rfs_fuse::protocol::op::{Op, Owner};

use crate::support::*;

#[test]
fn existing_files_are_served_in_place() {
    let mut inodes = Vec::new();
    let fx = mounted(|d| {
        fs::write(d.join("a.txt"), b"already here").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/b.bin"), vec![7u8; 100_000]).unwrap();
        inodes.push(fs::metadata(d.join("a.txt")).unwrap().ino());
        inodes.push(fs::metadata(d.join("sub/b.bin")).unwrap().ino());
    });
    let st = nix::sys::statfs::statfs(fx.dir.path()).unwrap();
    assert_eq!(st.filesystem_type().0, FUSE_SUPER_MAGIC, "not mounted?");

    assert_eq!(fs::read(fx.path("a.txt")).unwrap(), b"already here");
    assert_eq!(fs::read(fx.path("sub/b.bin")).unwrap(), vec![7u8; 100_000]);
    // Same inodes: the files are served where they are, nothing was copied.
    assert_eq!(fs::metadata(fx.path("a.txt")).unwrap().ino(), inodes[0]);
    assert_eq!(fs::metadata(fx.path("sub/b.bin")).unwrap().ino(), inodes[1]);
    let mut names: Vec<String> = fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "sub"]);
    assert!(fx.recorder.ops().is_empty(), "reads replicate nothing");

    let dir = fx.unmount();
    assert_ne!(
        nix::sys::statfs::statfs(dir.path())
            .unwrap()
            .filesystem_type()
            .0,
        FUSE_SUPER_MAGIC
    );
    assert_eq!(fs::read(dir.path().join("a.txt")).unwrap(), b"already here");
}

#[test]
fn write_append_truncate_sparse_big_writes_and_fsync() {
    let fx = mounted(|_| {});
    // create + write + read back
    let mut f = File::create(fx.path("f")).unwrap();
    f.write_all(b"hello").unwrap();
    f.sync_all().unwrap();
    f.sync_data().unwrap();
    drop(f);
    assert_eq!(fs::read(fx.path("f")).unwrap(), b"hello");

    // append
    let mut f = OpenOptions::new().append(true).open(fx.path("f")).unwrap();
    f.write_all(b" world").unwrap();
    // ftruncate through the open handle
    f.set_len(5).unwrap();
    drop(f);
    assert_eq!(fs::read(fx.path("f")).unwrap(), b"hello");
    // truncate(2) by path
    nix::unistd::truncate(&fx.path("f"), 2).unwrap();
    assert_eq!(fs::read(fx.path("f")).unwrap(), b"he");

    // sparse write at 1 MiB
    let f = File::create(fx.path("sparse")).unwrap();
    f.write_all_at(b"x", 1 << 20).unwrap();
    drop(f);
    let md = fs::metadata(fx.path("sparse")).unwrap();
    assert_eq!(md.len(), (1 << 20) + 1);
    assert!(md.blocks() < 64, "hole was filled: {} blocks", md.blocks());

    // 1 MiB in a single write(2)
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut f = File::create(fx.path("big")).unwrap();
    f.write_all(&big).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    drop(f);
    let mut back = Vec::new();
    File::open(fx.path("big"))
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == big, "1 MiB read back differs");

    let ops = fx.ops_settled();
    assert!(open_handles(&ops).is_empty(), "handles left open: {ops:#?}");
    let h = ops
        .iter()
        .find_map(|op| match op {
            Op::Create { handle, path, .. } if *path == rel("f") => Some(*handle),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(
            &ops[0],
            Op::Create { handle, path, mode: 0o644, owner: Owner { uid: 0, gid: 0 }, exclusive: false }
                if *handle == h && *path == rel("f")
        ),
        "{:?}",
        ops[0]
    );
    assert_eq!(writes(&ops, h), [(0, b"hello".to_vec())]);
    assert!(ops.contains(&Op::Fsync {
        handle: h,
        datasync: false
    }));
    assert!(ops.contains(&Op::Fsync {
        handle: h,
        datasync: true
    }));
    // The append went where the kernel put it (offset 5), under an Open of the same path;
    // the ftruncate travelled through that handle.
    let h2 = ops
        .iter()
        .find_map(|op| match op {
            Op::Open { handle, path } if *path == rel("f") => Some(*handle),
            _ => None,
        })
        .unwrap();
    assert_eq!(writes(&ops, h2), [(5, b" world".to_vec())]);
    assert!(ops.contains(&Op::SetLen { handle: h2, len: 5 }));
    // truncate(2) by path: a SetAttr with the size and the mtime the kernel set, explicit.
    assert!(ops.iter().any(|op| matches!(op,
        Op::SetAttr { path, attr } if *path == Some(rel("f")) && attr.size == Some(2)
    )));
    let hs = handle_of(&ops, "sparse");
    assert_eq!(writes(&ops, hs), [(1 << 20, b"x".to_vec())]);
    let hb = handle_of(&ops, "big");
    let big_writes = writes(&ops, hb);
    assert!(
        big_writes
            .iter()
            .any(|(o, d)| *o == 0 && d.len() == 1 << 20),
        "expected one 1 MiB write, got sizes {:?}",
        big_writes.iter().map(|(_, d)| d.len()).collect::<Vec<_>>()
    );

    let dir = fx.unmount();
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"he");
    assert_eq!(fs::read(dir.path().join("big")).unwrap(), big);
    assert_eq!(
        fs::metadata(dir.path().join("sparse")).unwrap().len(),
        (1 << 20) + 1
    );
}

#[test]
fn an_unlinked_open_file_keeps_working() {
    let fx = mounted(|d| fs::write(d.join("tmp"), b"abc").unwrap());
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(fx.path("tmp"))
        .unwrap();
    fs::remove_file(fx.path("tmp")).unwrap();
    assert!(!fx.path("tmp").exists());
    f.write_all_at(b"defg", 3).unwrap();
    let mut back = String::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "abcdefg");
    assert_eq!(f.metadata().unwrap().nlink(), 0);
    f.set_len(4).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 4);
    drop(f);

    let ops = fx.ops_settled();
    let h = handle_of(&ops, "tmp");
    let unlink = ops
        .iter()
        .position(|op| *op == Op::Unlink { path: rel("tmp") })
        .unwrap();
    let write = ops
        .iter()
        .position(|op| matches!(op, Op::Write { handle, offset: 3, .. } if *handle == h))
        .unwrap();
    assert!(
        unlink < write,
        "write after unlink goes through the handle: {ops:#?}"
    );
    assert!(ops.contains(&Op::SetLen { handle: h, len: 4 }));
    assert!(ops.contains(&Op::Close { handle: h }));
    let dir = fx.unmount();
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn directories_links_symlinks_and_many_files() {
    let fx = mounted(|_| {});
    fs::create_dir(fx.path("d")).unwrap();
    for i in 0..300 {
        fs::write(fx.path(&format!("d/f{i:03}")), format!("file {i}")).unwrap();
    }
    let listed = fs::read_dir(fx.path("d")).unwrap().count();
    assert_eq!(listed, 300);
    assert_eq!(fs::read_to_string(fx.path("d/f123")).unwrap(), "file 123");

    fs::hard_link(fx.path("d/f001"), fx.path("hard")).unwrap();
    assert_eq!(fs::metadata(fx.path("hard")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(fx.path("hard")).unwrap().ino(),
        fs::metadata(fx.path("d/f001")).unwrap().ino()
    );
    std::os::unix::fs::symlink("d/f002", fx.path("sym")).unwrap();
    assert_eq!(
        fs::read_link(fx.path("sym")).unwrap().to_str(),
        Some("d/f002")
    );
    assert_eq!(fs::read_to_string(fx.path("sym")).unwrap(), "file 2");
    assert!(
        fs::symlink_metadata(fx.path("sym"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    assert_eq!(errno(fs::remove_dir(fx.path("d"))), libc::ENOTEMPTY);
    for i in 0..300 {
        fs::remove_file(fx.path(&format!("d/f{i:03}"))).unwrap();
    }
    // The hard link survives its other name.
    assert_eq!(fs::read_to_string(fx.path("hard")).unwrap(), "file 1");
    assert_eq!(fs::metadata(fx.path("hard")).unwrap().nlink(), 1);
    fs::remove_dir(fx.path("d")).unwrap();

    let ops = fx.ops_settled();
    assert!(ops.iter().any(|op| matches!(op,
        Op::Mkdir { path, mode: 0o755, owner: Owner { uid: 0, gid: 0 } } if *path == rel("d"))));
    assert_eq!(
        ops.iter()
            .filter(|op| matches!(op, Op::Create { .. }))
            .count(),
        300
    );
    assert!(ops.contains(&Op::Link {
        existing: rel("d/f001"),
        new: rel("hard")
    }));
    assert!(ops.contains(&Op::Symlink {
        path: rel("sym"),
        target: "d/f002".into(),
        owner: Owner { uid: 0, gid: 0 }
    }));
    // rmdir of the non-empty directory was sent too (the peer fails it alike), then the
    // real one after the unlinks.
    let rmdirs: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| **op == Op::Rmdir { path: rel("d") })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(rmdirs.len(), 2);
    let last_unlink = ops
        .iter()
        .rposition(|op| matches!(op, Op::Unlink { .. }))
        .unwrap();
    assert!(rmdirs[1] > last_unlink);

    let dir = fx.unmount();
    assert_eq!(
        fs::read_to_string(dir.path().join("hard")).unwrap(),
        "file 1"
    );
    assert_eq!(
        fs::read_link(dir.path().join("sym")).unwrap().to_str(),
        Some("d/f002")
    );
}

#[test]
fn copy_file_range_falls_back_to_replicated_writes() {
    let fx = mounted(|d| fs::write(d.join("src"), vec![42u8; 300_000]).unwrap());
    let mut src = File::open(fx.path("src")).unwrap();
    let mut dst = File::create(fx.path("dst")).unwrap();
    // std::io::copy between two files uses copy_file_range(2) first.
    let n = std::io::copy(&mut src, &mut dst).unwrap();
    assert_eq!(n, 300_000);
    drop(dst);
    assert_eq!(fs::read(fx.path("dst")).unwrap(), vec![42u8; 300_000]);

    let ops = fx.ops_settled();
    let h = handle_of(&ops, "dst");
    let total: usize = writes(&ops, h).iter().map(|(_, d)| d.len()).sum();
    assert_eq!(total, 300_000, "the copy must reach the stream as writes");
}

#[test]
fn fsync_of_a_read_only_open_and_of_a_directory_are_replicated() {
    let fx = mounted(|d| {
        fs::create_dir(d.join("d")).unwrap();
        fs::write(d.join("d/f"), b"x").unwrap();
    });
    File::open(fx.path("d/f")).unwrap().sync_all().unwrap();
    File::open(fx.path("d")).unwrap().sync_all().unwrap();
    File::open(fx.dir.path()).unwrap().sync_all().unwrap();
    let ops = fx.ops_settled();
    let h = handle_of(&ops, "d/f");
    assert!(ops.contains(&Op::Fsync {
        handle: h,
        datasync: false
    }));
    assert!(ops.contains(&Op::FsyncDir {
        path: Some(rel("d"))
    }));
    assert!(ops.contains(&Op::FsyncDir { path: None }));
}

#[test]
fn unmount_refuses_while_busy_and_succeeds_after() {
    let mut fx = mounted(|d| fs::write(d.join("f"), b"x").unwrap());
    let held = File::open(fx.path("f")).unwrap();
    let err = fx.mount.unmount().unwrap_err();
    assert!(
        matches!(err, rfs_fuse::overlay::OverlayError::Busy { .. }),
        "{err}"
    );
    assert_eq!(
        fs::read(fx.path("f")).unwrap(),
        b"x",
        "still mounted and serving"
    );
    drop(held);
    fx.mount.unmount().unwrap();
    fx.mount.unmount().unwrap(); // idempotent
}
