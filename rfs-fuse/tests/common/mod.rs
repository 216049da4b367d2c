//! Helpers shared by the receiver's integration tests: a fresh root in a temp dir, a strict
//! umask (so that exact modes cannot come from a lenient one), stat and xattr readers.
#![allow(dead_code)]

use rfs_fuse::protocol::op::{Op, Owner, RelPath};
use rfs_fuse::receiver::{ApplyError, Receiver};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Once;

pub const OWNER: Owner = Owner {
    uid: 1234,
    gid: 5678,
};

/// Every test process runs with umask 077: modes must come out exact anyway.
pub fn strict_umask() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    });
}

pub fn rel(path: &str) -> RelPath {
    RelPath::new(path.as_bytes()).unwrap()
}

/// A temp dir holding `root/` (the replica) and `outside/` (which must never change).
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
    pub rx: Receiver,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::new_in(&std::env::temp_dir())
    }

    pub fn new_in(base: &Path) -> Fixture {
        strict_umask();
        let tmp = tempfile::tempdir_in(base).unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("f"), b"secret").unwrap();
        fs::create_dir(outside.join("sub")).unwrap();
        let rx = Receiver::open(&root).unwrap();
        Fixture {
            tmp,
            root,
            outside,
            rx,
        }
    }

    pub fn at(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    pub fn ok(&mut self, op: Op) {
        if let Err(e) = self.rx.apply(&op) {
            panic!("{op:?} failed: {e}");
        }
    }

    pub fn err(&mut self, op: Op) -> ApplyError {
        match self.rx.apply(&op) {
            Ok(()) => panic!("{op:?} succeeded, expected an error"),
            Err(e) => e,
        }
    }
}

pub fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap()
}

/// The value of an xattr of `path` itself (not following a symlink).
pub fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let cpath = CString::new(path.as_os_str().as_bytes()).unwrap();
    let cname = CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and alive; `buf` is writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::ENODATA), "{err}");
        return None;
    }
    buf.truncate(n.unsigned_abs());
    Some(buf)
}

/// Everything observable about a tree without reading xattrs: ctime catches any metadata
/// change (chmod, chown, xattrs, times), mtime and size any data change, the names any entry
/// added or removed.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let m = lstat(&path);
        out.insert(
            path.clone(),
            format!(
                "ino {} mode {:o} {}:{} size {} nlink {} mtime {}.{} ctime {}.{}",
                m.ino(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.size(),
                m.nlink(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            ),
        );
        if m.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    out
}

/// Unmounts (lazily) when dropped.
pub struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A tmpfs mounted at `at` until the guard drops. Privileged (root): fails loudly rather than
/// skipping when it cannot mount.
pub fn mount_tmpfs(at: &Path) -> Unmount {
    nix::mount::mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap_or_else(|e| {
        panic!(
            "cannot mount a tmpfs at {} (run as root): {e}",
            at.display()
        )
    });
    Unmount(at.to_path_buf())
}
