//! Every operation applied to a fresh root on the real file system, checked with std calls.

mod common;

use bytes::Bytes;
use common::{Fixture, OWNER, lgetxattr, lstat, rel};
use nix::errno::Errno;
use rfs_fuse::protocol::op::{Op, Owner, SetAttr, Timestamp};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn create(handle: u64, path: &str, mode: u32) -> Op {
    Op::Create {
        handle,
        path: rel(path),
        mode,
        owner: OWNER,
        exclusive: true,
    }
}

fn write(handle: u64, offset: u64, data: &[u8]) -> Op {
    Op::Write {
        handle,
        offset,
        data: Bytes::copy_from_slice(data),
    }
}

#[test]
fn create_sets_exact_mode_and_owner_despite_umask() {
    let mut fx = Fixture::new();
    // Set-user-ID survives: the owner is set before the mode.
    fx.ok(create(1, "f", 0o4751));
    fx.ok(Op::Close { handle: 1 });
    let m = lstat(&fx.at("f"));
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o4751);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(fx.rx.open_handles(), 0);
}

#[test]
fn exclusive_create_of_existing_fails_and_changes_nothing() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"keep").unwrap();
    let before = lstat(&fx.at("f"));
    let e = fx.err(create(1, "f", 0o600));
    assert_eq!(e.errno(), Errno::EEXIST);
    assert!(!e.is_refused());
    assert!(
        e.to_string().starts_with("Create #1 f (exclusive): "),
        "{e}"
    );
    assert_eq!(fs::read(fx.at("f")).unwrap(), b"keep");
    assert_eq!(lstat(&fx.at("f")).mode(), before.mode());
    assert_eq!(fx.rx.open_handles(), 0);
}

#[test]
fn plain_create_of_existing_opens_it_unchanged() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"abcdef").unwrap();
    let before = lstat(&fx.at("f"));
    fx.ok(Op::Create {
        handle: 7,
        path: rel("f"),
        mode: 0o777,
        owner: OWNER,
        exclusive: false,
    });
    fx.ok(write(7, 2, b"XY"));
    fx.ok(Op::Close { handle: 7 });
    let after = lstat(&fx.at("f"));
    assert_eq!(fs::read(fx.at("f")).unwrap(), b"abXYef");
    assert_eq!(after.mode(), before.mode());
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
}

#[test]
fn open_write_setlen_fsync_close() {
    let mut fx = Fixture::new();
    fs::create_dir(fx.at("d")).unwrap();
    fs::write(fx.at("d/f"), b"0123456789").unwrap();
    fx.ok(Op::Open {
        handle: 3,
        path: rel("d/f"),
    });
    fx.ok(write(3, 8, b"abcdef"));
    fx.ok(Op::Fsync {
        handle: 3,
        datasync: true,
    });
    assert_eq!(fs::read(fx.at("d/f")).unwrap(), b"01234567abcdef");
    fx.ok(Op::SetLen { handle: 3, len: 4 });
    fx.ok(Op::Fsync {
        handle: 3,
        datasync: false,
    });
    fx.ok(Op::Close { handle: 3 });
    assert_eq!(fs::read(fx.at("d/f")).unwrap(), b"0123");
}

#[test]
fn writes_through_a_handle_follow_a_renamed_file() {
    let mut fx = Fixture::new();
    fx.ok(create(1, "a", 0o644));
    fx.ok(Op::Rename {
        from: rel("a"),
        to: rel("b"),
        flags: 0,
    });
    fx.ok(write(1, 0, b"moved"));
    fx.ok(Op::Close { handle: 1 });
    assert_eq!(fs::read(fx.at("b")).unwrap(), b"moved");
}

#[test]
fn open_of_directory_symlink_and_fifo() {
    let mut fx = Fixture::new();
    fs::create_dir(fx.at("d")).unwrap();
    fs::write(fx.at("f"), b"").unwrap();
    std::os::unix::fs::symlink("f", fx.at("l")).unwrap();
    nix::unistd::mkfifo(&fx.at("p"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = fx.err(Op::Open {
        handle: 1,
        path: rel("d"),
    });
    assert_eq!(e.errno(), Errno::EISDIR);
    let e = fx.err(Op::Open {
        handle: 1,
        path: rel("l"),
    });
    assert_eq!(e.errno(), Errno::ELOOP);
    assert!(e.is_refused());
    // A FIFO is never opened (that would block the stream), only refused.
    let e = fx.err(Op::Open {
        handle: 1,
        path: rel("p"),
    });
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(e.is_refused());
    let e = fx.err(Op::Open {
        handle: 1,
        path: rel("missing"),
    });
    assert_eq!(e.errno(), Errno::ENOENT);
    assert_eq!(fx.rx.open_handles(), 0);
}

#[test]
fn write_far_into_an_empty_file_keeps_a_hole() {
    let mut fx = Fixture::new();
    fx.ok(create(1, "sparse", 0o600));
    fx.ok(write(1, 1 << 20, &[0xAB; 4096]));
    fx.ok(Op::Fsync {
        handle: 1,
        datasync: false,
    });
    fx.ok(Op::Close { handle: 1 });
    let m = lstat(&fx.at("sparse"));
    assert_eq!(m.len(), (1 << 20) + 4096);
    assert!(m.blocks() * 512 <= 64 * 1024, "{} blocks", m.blocks());
}

#[test]
fn fallocate_allocates_and_punches_holes() {
    let mut fx = Fixture::new();
    fx.ok(create(1, "f", 0o600));
    fx.ok(Op::Fallocate {
        handle: 1,
        mode: 0,
        offset: 0,
        len: 1 << 20,
    });
    assert_eq!(lstat(&fx.at("f")).len(), 1 << 20);
    fx.ok(write(1, 0, &vec![0xAB; 1 << 20]));
    fx.ok(Op::Fsync {
        handle: 1,
        datasync: false,
    });
    let before = lstat(&fx.at("f")).blocks();
    fx.ok(Op::Fallocate {
        handle: 1,
        mode: libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        offset: 256 << 10,
        len: 512 << 10,
    });
    fx.ok(Op::Close { handle: 1 });
    let m = lstat(&fx.at("f"));
    assert_eq!(m.len(), 1 << 20);
    assert!(
        (before - m.blocks()) * 512 >= 512 << 10,
        "{before} -> {} blocks",
        m.blocks()
    );
    let data = fs::read(fx.at("f")).unwrap();
    assert!(data[..256 << 10].iter().all(|b| *b == 0xAB));
    assert!(data[256 << 10..768 << 10].iter().all(|b| *b == 0));
    assert!(data[768 << 10..].iter().all(|b| *b == 0xAB));
}

#[test]
fn mkdir_exact_mode_and_owner() {
    let mut fx = Fixture::new();
    fx.ok(Op::Mkdir {
        path: rel("d"),
        mode: 0o2751,
        owner: OWNER,
    });
    fx.ok(Op::Mkdir {
        path: rel("d/e"),
        mode: 0o700,
        owner: Owner { uid: 0, gid: 0 },
    });
    let m = lstat(&fx.at("d"));
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o2751);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    let e = fx.err(Op::Mkdir {
        path: rel("d"),
        mode: 0o755,
        owner: OWNER,
    });
    assert_eq!(e.errno(), Errno::EEXIST);
    assert_eq!(lstat(&fx.at("d")).mode() & 0o7777, 0o2751);
}

#[test]
fn mknod_fifo_socket_and_device() {
    let mut fx = Fixture::new();
    fx.ok(Op::Mknod {
        path: rel("fifo"),
        mode: libc::S_IFIFO | 0o640,
        rdev: 0,
        owner: OWNER,
    });
    fx.ok(Op::Mknod {
        path: rel("sock"),
        mode: libc::S_IFSOCK | 0o604,
        rdev: 0,
        owner: OWNER,
    });
    let null = nix::sys::stat::makedev(1, 3);
    fx.ok(Op::Mknod {
        path: rel("null"),
        mode: libc::S_IFCHR | 0o660,
        rdev: null,
        owner: OWNER,
    });
    let m = lstat(&fx.at("fifo"));
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert!(lstat(&fx.at("sock")).file_type().is_socket());
    assert_eq!(lstat(&fx.at("sock")).mode() & 0o7777, 0o604);
    let m = lstat(&fx.at("null"));
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), null);
    assert_eq!(m.mode() & 0o7777, 0o660);
}

#[test]
fn symlink_is_stored_verbatim_and_owned() {
    let mut fx = Fixture::new();
    fx.ok(Op::Symlink {
        path: rel("l"),
        target: "../../anything/at/all".into(),
        owner: OWNER,
    });
    let m = lstat(&fx.at("l"));
    assert!(m.file_type().is_symlink());
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(
        fs::read_link(fx.at("l")).unwrap().to_str(),
        Some("../../anything/at/all")
    );
}

#[test]
fn hard_links_share_the_inode_and_link_symlinks_themselves() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"x").unwrap();
    std::os::unix::fs::symlink("f", fx.at("l")).unwrap();
    fs::create_dir(fx.at("d")).unwrap();
    fx.ok(Op::Link {
        existing: rel("f"),
        new: rel("d/g"),
    });
    let (f, g) = (lstat(&fx.at("f")), lstat(&fx.at("d/g")));
    assert_eq!(f.ino(), g.ino());
    assert_eq!(g.nlink(), 2);
    fx.ok(Op::Link {
        existing: rel("l"),
        new: rel("l2"),
    });
    assert_eq!(lstat(&fx.at("l2")).ino(), lstat(&fx.at("l")).ino());
    assert!(lstat(&fx.at("l2")).file_type().is_symlink());
    let e = fx.err(Op::Link {
        existing: rel("f"),
        new: rel("d/g"),
    });
    assert_eq!(e.errno(), Errno::EEXIST);
}

#[test]
fn unlink_and_rmdir_are_safe_to_repeat() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"x").unwrap();
    fs::create_dir_all(fx.at("d/e")).unwrap();
    fx.ok(Op::Unlink { path: rel("f") });
    assert!(!fx.at("f").exists());
    let e = fx.err(Op::Unlink { path: rel("f") });
    assert_eq!(e.errno(), Errno::ENOENT);
    assert_eq!(
        e.to_string(),
        format!("Unlink f: removing the entry: {}", Errno::ENOENT)
    );
    let e = fx.err(Op::Rmdir { path: rel("d") });
    assert_eq!(e.errno(), Errno::ENOTEMPTY);
    let e = fx.err(Op::Unlink { path: rel("d") });
    assert_eq!(e.errno(), Errno::EISDIR);
    fx.ok(Op::Rmdir { path: rel("d/e") });
    fx.ok(Op::Rmdir { path: rel("d") });
    assert_eq!(fx.err(Op::Rmdir { path: rel("d") }).errno(), Errno::ENOENT);
}

#[test]
fn rename_plain_noreplace_exchange() {
    let mut fx = Fixture::new();
    fs::write(fx.at("a"), b"A").unwrap();
    fs::write(fx.at("b"), b"B").unwrap();
    fs::create_dir(fx.at("d")).unwrap();
    let e = fx.err(Op::Rename {
        from: rel("a"),
        to: rel("b"),
        flags: libc::RENAME_NOREPLACE,
    });
    assert_eq!(e.errno(), Errno::EEXIST);
    assert_eq!(fs::read(fx.at("a")).unwrap(), b"A");
    assert_eq!(fs::read(fx.at("b")).unwrap(), b"B");
    fx.ok(Op::Rename {
        from: rel("a"),
        to: rel("b"),
        flags: libc::RENAME_EXCHANGE,
    });
    assert_eq!(fs::read(fx.at("a")).unwrap(), b"B");
    assert_eq!(fs::read(fx.at("b")).unwrap(), b"A");
    fx.ok(Op::Rename {
        from: rel("a"),
        to: rel("d/c"),
        flags: libc::RENAME_NOREPLACE,
    });
    assert_eq!(fs::read(fx.at("d/c")).unwrap(), b"B");
    fx.ok(Op::Rename {
        from: rel("d/c"),
        to: rel("b"),
        flags: 0,
    });
    assert_eq!(fs::read(fx.at("b")).unwrap(), b"B");
    assert!(!fx.at("d/c").exists());
    let e = fx.err(Op::Rename {
        from: rel("b"),
        to: rel("c"),
        flags: libc::RENAME_WHITEOUT,
    });
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(e.is_refused());
    assert!(
        e.to_string().starts_with("Rename b -> c (flags 0x4): "),
        "{e}"
    );
    assert!(fx.at("b").exists());
}

const ATIME: Timestamp = Timestamp {
    sec: 1_000_000_000,
    nsec: 123_456_789,
};
const MTIME: Timestamp = Timestamp {
    sec: 1_500_000_000,
    nsec: 987_654_321,
};

#[test]
fn setattr_size_mode_owner_times() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"0123456789").unwrap();
    fx.ok(Op::SetAttr {
        path: Some(rel("f")),
        attr: SetAttr {
            mode: Some(0o6750),
            uid: Some(1234),
            gid: Some(5678),
            size: Some(3),
            atime: Some(ATIME),
            mtime: Some(MTIME),
        },
    });
    let m = lstat(&fx.at("f"));
    assert_eq!(m.mode() & 0o7777, 0o6750);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 987_654_321));
    assert_eq!(fs::read(fx.at("f")).unwrap(), b"012");
    // Only mtime: atime is left alone (reading above may have moved it: relatime);
    // growing extends with zeros.
    let atime_before = lstat(&fx.at("f")).atime_nsec();
    fx.ok(Op::SetAttr {
        path: Some(rel("f")),
        attr: SetAttr {
            size: Some(5),
            mtime: Some(ATIME),
            ..SetAttr::default()
        },
    });
    let m = lstat(&fx.at("f"));
    assert_eq!(m.atime_nsec(), atime_before);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!(fs::read(fx.at("f")).unwrap(), b"012\0\0");
}

#[test]
fn setattr_on_a_directory_and_a_device() {
    let mut fx = Fixture::new();
    fs::create_dir(fx.at("d")).unwrap();
    nix::unistd::mkfifo(&fx.at("p"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for name in ["d", "p"] {
        fx.ok(Op::SetAttr {
            path: Some(rel(name)),
            attr: SetAttr {
                mode: Some(0o1705),
                gid: Some(42),
                mtime: Some(MTIME),
                ..SetAttr::default()
            },
        });
        let m = lstat(&fx.at(name));
        assert_eq!(m.mode() & 0o7777, 0o1705, "{name}");
        assert_eq!((m.uid(), m.gid()), (0, 42), "{name}");
        assert_eq!(m.mtime(), 1_500_000_000, "{name}");
    }
    let e = fx.err(Op::SetAttr {
        path: Some(rel("d")),
        attr: SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    });
    assert_eq!(e.errno(), Errno::EISDIR);
}

#[test]
fn setattr_on_a_symlink_acts_on_the_link() {
    let mut fx = Fixture::new();
    fs::write(fx.at("target"), b"t").unwrap();
    std::os::unix::fs::symlink("target", fx.at("l")).unwrap();
    let target_before = lstat(&fx.at("target"));
    fx.ok(Op::SetAttr {
        path: Some(rel("l")),
        attr: SetAttr {
            mode: Some(0o600),
            uid: Some(1234),
            gid: Some(5678),
            atime: Some(ATIME),
            mtime: Some(MTIME),
            size: None,
        },
    });
    let link = lstat(&fx.at("l"));
    assert_eq!((link.uid(), link.gid()), (1234, 5678));
    assert_eq!(link.mode() & 0o7777, 0o777, "a symlink's mode is ignored");
    assert_eq!(
        (link.mtime(), link.mtime_nsec()),
        (1_500_000_000, 987_654_321)
    );
    let target = lstat(&fx.at("target"));
    assert_eq!(target.mode(), target_before.mode());
    assert_eq!(target.uid(), target_before.uid());
    assert_eq!(target.mtime(), target_before.mtime());
    assert_eq!(target.ctime_nsec(), target_before.ctime_nsec());
    // Truncating through a symlink is refused rather than followed.
    let e = fx.err(Op::SetAttr {
        path: Some(rel("l")),
        attr: SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    });
    assert_eq!(e.errno(), Errno::ELOOP);
    assert_eq!(fs::read(fx.at("target")).unwrap(), b"t");
}

fn xattrs_on_file_and_symlink(base: &std::path::Path) {
    let mut fx = Fixture::new_in(base);
    fs::write(fx.at("f"), b"x").unwrap();
    std::os::unix::fs::symlink("f", fx.at("l")).unwrap();
    let set = |path: &str, name: &str, value: &[u8], flags| Op::SetXattr {
        path: Some(rel(path)),
        name: name.into(),
        value: Bytes::copy_from_slice(value),
        flags,
    };
    fx.ok(set("f", "user.color", b"blue", 0));
    fx.ok(set("f", "trusted.t", b"on file", 0));
    fx.ok(set("l", "trusted.t", b"on link", 0));
    assert_eq!(
        lgetxattr(&fx.at("f"), "user.color").as_deref(),
        Some(&b"blue"[..])
    );
    assert_eq!(
        lgetxattr(&fx.at("f"), "trusted.t").as_deref(),
        Some(&b"on file"[..])
    );
    assert_eq!(
        lgetxattr(&fx.at("l"), "trusted.t").as_deref(),
        Some(&b"on link"[..])
    );
    let e = fx.err(set("f", "user.color", b"red", libc::XATTR_CREATE));
    assert_eq!(e.errno(), Errno::EEXIST);
    fx.ok(Op::RemoveXattr {
        path: Some(rel("l")),
        name: "trusted.t".into(),
    });
    assert_eq!(lgetxattr(&fx.at("l"), "trusted.t"), None);
    assert_eq!(
        lgetxattr(&fx.at("f"), "trusted.t").as_deref(),
        Some(&b"on file"[..])
    );
    fx.ok(Op::RemoveXattr {
        path: Some(rel("f")),
        name: "user.color".into(),
    });
    assert_eq!(lgetxattr(&fx.at("f"), "user.color"), None);
    let e = fx.err(Op::RemoveXattr {
        path: Some(rel("f")),
        name: "user.color".into(),
    });
    assert_eq!(e.errno(), Errno::ENODATA);
}

#[test]
fn xattrs_on_a_file_and_a_symlink_itself() {
    xattrs_on_file_and_symlink(&std::env::temp_dir());
}

#[test]
fn xattrs_on_tmpfs() {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        xattrs_on_file_and_symlink(shm);
    }
}

#[test]
fn fsyncdir_root_and_subdirectory() {
    let mut fx = Fixture::new();
    fs::create_dir(fx.at("d")).unwrap();
    fs::write(fx.at("f"), b"").unwrap();
    fx.ok(Op::FsyncDir { path: None });
    fx.ok(Op::FsyncDir {
        path: Some(rel("d")),
    });
    assert_eq!(
        fx.err(Op::FsyncDir {
            path: Some(rel("f"))
        })
        .errno(),
        Errno::ENOTDIR
    );
}

#[test]
fn receiver_from_a_descriptor() {
    let fx = Fixture::new();
    let fd = nix::fcntl::open(
        &fx.root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let mut rx = rfs_fuse::receiver::Receiver::from_fd(fd).unwrap();
    rx.apply(&Op::Mkdir {
        path: rel("via-fd"),
        mode: 0o755,
        owner: OWNER,
    })
    .unwrap();
    assert!(fx.at("via-fd").is_dir());
    fs::write(fx.at("file"), b"").unwrap();
    let file = fs::File::open(fx.at("file")).unwrap();
    let e = rfs_fuse::receiver::Receiver::from_fd(file.into()).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOTDIR);
    let e = rfs_fuse::receiver::Receiver::open(&fx.at("missing")).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
}

#[test]
fn setattr_on_the_root_itself() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"").unwrap();
    let f_before = lstat(&fx.at("f"));
    // Owner before mode: the set-group-ID bit survives the chown.
    fx.ok(Op::SetAttr {
        path: None,
        attr: SetAttr {
            mode: Some(0o2750),
            uid: Some(1234),
            gid: Some(5678),
            atime: Some(ATIME),
            mtime: Some(MTIME),
            size: None,
        },
    });
    let m = lstat(&fx.root);
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o2750);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 987_654_321));
    let f = lstat(&fx.at("f"));
    assert_eq!(f.mode(), f_before.mode(), "entries are untouched");
    assert_eq!((f.uid(), f.gid()), (f_before.uid(), f_before.gid()));
}

#[test]
fn setattr_size_on_the_root_fails_changing_nothing() {
    let mut fx = Fixture::new();
    fx.ok(Op::SetAttr {
        path: None,
        attr: SetAttr {
            mode: Some(0o700),
            ..SetAttr::default()
        },
    });
    let e = fx.err(Op::SetAttr {
        path: None,
        attr: SetAttr {
            mode: Some(0o755),
            uid: Some(1234),
            size: Some(0),
            mtime: Some(MTIME),
            ..SetAttr::default()
        },
    });
    assert_eq!(e.errno(), Errno::EISDIR);
    assert!(e.to_string().starts_with("SetAttr (root): "), "{e}");
    let m = lstat(&fx.root);
    assert_eq!(m.mode() & 0o7777, 0o700);
    assert_ne!(m.uid(), 1234);
    assert_ne!(m.mtime(), 1_500_000_000);
}

#[test]
fn xattrs_on_the_root_itself() {
    let mut fx = Fixture::new();
    fs::write(fx.at("f"), b"").unwrap();
    fx.ok(Op::SetXattr {
        path: None,
        name: "trusted.root".into(),
        value: Bytes::from_static(b"top"),
        flags: 0,
    });
    assert_eq!(
        lgetxattr(&fx.root, "trusted.root").as_deref(),
        Some(&b"top"[..])
    );
    assert_eq!(lgetxattr(&fx.at("f"), "trusted.root"), None);
    let e = fx.err(Op::SetXattr {
        path: None,
        name: "trusted.root".into(),
        value: Bytes::from_static(b"again"),
        flags: libc::XATTR_CREATE,
    });
    assert_eq!(e.errno(), Errno::EEXIST);
    assert!(
        e.to_string().starts_with("SetXattr (root) trusted.root: "),
        "{e}"
    );
    fx.ok(Op::RemoveXattr {
        path: None,
        name: "trusted.root".into(),
    });
    assert_eq!(lgetxattr(&fx.root, "trusted.root"), None);
    let e = fx.err(Op::RemoveXattr {
        path: None,
        name: "trusted.root".into(),
    });
    assert_eq!(e.errno(), Errno::ENODATA);
}
