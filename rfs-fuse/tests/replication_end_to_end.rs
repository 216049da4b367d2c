//! The whole write path on one machine: an application works in two directories, each under
//! its own FUSE overlay; every mutation travels over the module's one link to the receiver of
//! its root, applying it to a second directory; at the end each pair of trees is identical
//! (content, modes, owners, times, xattrs, links). Real FUSE, real sockets, real file systems.

use rfs_fuse::compare::compare_trees;
use rfs_fuse::link::{Hello, ServeOptions, StreamReplicator, serve};
use rfs_fuse::overlay::{OverlayOptions, mount_in_place};
use rfs_fuse::protocol::AckLevel;
use rfs_fuse::receiver::Receiver;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt, symlink};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn workload(root: &Path) {
    fs::create_dir_all(root.join("db/wal")).unwrap();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("db/wal/0001"))
        .unwrap();
    for i in 0..200 {
        writeln!(
            log,
            "record {i:05} checksum {:08x}",
            (i as u32).wrapping_mul(2654435761)
        )
        .unwrap();
        if i % 50 == 0 {
            log.sync_data().unwrap();
        }
    }
    drop(log);
    let big = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(root.join("db/table"))
        .unwrap();
    big.write_at(&vec![0xab; 1 << 20], 0).unwrap();
    big.write_at(b"far away", 5 << 20).unwrap();
    big.set_len(3 << 20).unwrap();
    big.sync_all().unwrap();
    drop(big);
    let mut f = fs::File::create(root.join("config.tmp")).unwrap();
    f.write_all(b"version = 2\n").unwrap();
    f.seek(SeekFrom::Start(8)).unwrap();
    f.write_all(b"3").unwrap();
    drop(f);
    fs::rename(root.join("config.tmp"), root.join("config")).unwrap();
    fs::hard_link(root.join("config"), root.join("config.bak")).unwrap();
    symlink("db/table", root.join("current")).unwrap();
    fs::set_permissions(root.join("config"), fs::Permissions::from_mode(0o600)).unwrap();
    nix::unistd::chown(
        &root.join("db/table"),
        Some(nix::unistd::Uid::from_raw(70)),
        Some(nix::unistd::Gid::from_raw(70)),
    )
    .unwrap();
    for i in 0..100 {
        fs::write(
            root.join(format!("db/wal/seg{i:03}")),
            format!("segment {i}"),
        )
        .unwrap();
    }
    for i in 0..50 {
        fs::remove_file(root.join(format!("db/wal/seg{i:03}"))).unwrap();
    }
    fs::create_dir(root.join("scratch")).unwrap();
    fs::remove_dir(root.join("scratch")).unwrap();
    fs::rename(root.join("db/wal"), root.join("db/journal")).unwrap();
    // The root's own metadata, through the mount: owner, mode, xattrs, then times (last:
    // entry changes move the root's mtime).
    nix::unistd::chown(
        root,
        Some(nix::unistd::Uid::from_raw(71)),
        Some(nix::unistd::Gid::from_raw(72)),
    )
    .unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o1751)).unwrap();
    xattr::set(root, "user.root-tag", b"top");
    xattr::set(root, "trusted.gone", b"x");
    xattr::remove(root, "trusted.gone");
    let t = nix::sys::time::TimeSpec::new(1_234_567_890, 5);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        root,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

mod xattr {
    use std::ffi::CString;
    use std::path::Path;

    fn c(s: &[u8]) -> CString {
        CString::new(s).unwrap()
    }

    pub fn set(path: &Path, name: &str, value: &[u8]) {
        let (p, n) = (c(path.as_os_str().as_encoded_bytes()), c(name.as_bytes()));
        // SAFETY: NUL-terminated strings alive for the call; `value` readable for its length.
        let rc = unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(
            rc,
            0,
            "setxattr {name}: {}",
            std::io::Error::last_os_error()
        );
    }

    pub fn remove(path: &Path, name: &str) {
        let (p, n) = (c(path.as_os_str().as_encoded_bytes()), c(name.as_bytes()));
        // SAFETY: NUL-terminated strings alive for the call.
        let rc = unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
        assert_eq!(
            rc,
            0,
            "removexattr {name}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Two replicated directories, each under its own mount, worked on concurrently: their
/// operations interleave in the module's one stream and each lands in its own root.
#[test]
fn every_mutation_reaches_the_secondary_and_the_trees_end_identical() {
    const ROOTS: usize = 2;
    let primaries: Vec<_> = (0..ROOTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let secondaries: Vec<_> = (0..ROOTS).map(|_| tempfile::tempdir().unwrap()).collect();
    for dir in primaries.iter().chain(&secondaries) {
        fs::write(dir.path().join("existing"), b"was here before the mount").unwrap();
    }

    let (primary_end, secondary_end) = UnixStream::pair().unwrap();
    let secondary_dirs: Vec<_> = secondaries.iter().map(|d| d.path().to_path_buf()).collect();
    let server = thread::spawn(move || {
        let mut receivers: Vec<Receiver> = secondary_dirs
            .iter()
            .map(|dir| Receiver::open(dir).unwrap())
            .collect();
        let reader = secondary_end.try_clone().unwrap();
        serve(
            reader,
            secondary_end,
            &mut receivers,
            ServeOptions::new("web", AckLevel::Applied),
        )
    });
    let hello = Hello {
        module: "web".into(),
        node: "node1".into(),
        session: 1,
        roots: ROOTS as u16,
    };
    let reader = primary_end.try_clone().unwrap();
    let replicator =
        StreamReplicator::start(reader, primary_end, hello, Duration::from_secs(10)).unwrap();
    let replicator = Arc::new(replicator);
    let mut mounts: Vec<_> = primaries
        .iter()
        .zip(0..)
        .map(|(dir, root)| {
            let hook = Arc::new(replicator.root(root));
            mount_in_place(dir.path(), hook, OverlayOptions::default()).unwrap()
        })
        .collect();

    thread::scope(|scope| {
        for dir in &primaries {
            scope.spawn(|| workload(dir.path()));
        }
    });

    for mount in &mut mounts {
        mount.unmount().unwrap();
    }
    let stats = replicator.stats();
    replicator.close();
    let end = server.join().unwrap().unwrap();
    assert!(stats.ops_sent > 1000, "{stats:?}");
    assert!(!replicator.is_broken(), "{stats:?}");
    use std::os::unix::fs::MetadataExt;
    for (primary, secondary) in primaries.iter().zip(&secondaries) {
        // The root's own metadata arrived (compare_trees checks mode, owner and xattrs; the
        // times are checked here, before its reading moves the atime).
        let root = fs::symlink_metadata(secondary.path()).unwrap();
        assert_eq!(root.mode() & 0o7777, 0o1751);
        assert_eq!((root.uid(), root.gid()), (71, 72));
        assert_eq!((root.mtime(), root.mtime_nsec()), (1_234_567_890, 5));
        assert_eq!((root.atime(), root.atime_nsec()), (1_234_567_890, 5));
        let diffs = compare_trees(primary.path(), secondary.path()).unwrap();
        assert!(
            diffs.is_empty(),
            "the replicas differ after {stats:?} / {end:?}:\n{diffs:#?}"
        );
    }
}
