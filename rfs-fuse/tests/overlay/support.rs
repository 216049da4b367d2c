//! Mount fixtures and small libc helpers for the overlay tests.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rfs_fuse::overlay::{MountedOverlay, OverlayOptions, Recorder, mount_in_place};
use rfs_fuse::protocol::op::{Handle, Op, RelPath};

/// Fail (never skip) when the machine cannot run real FUSE tests.
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the overlay tests need real FUSE (load the fuse module)"
    );
    assert!(
        nix::unistd::geteuid().is_root(),
        "the overlay tests mount FUSE file systems and must run as root"
    );
}

/// A directory with the overlay mounted over it, replicating into a [`Recorder`].
pub struct Fixture {
    // Field order matters: the mount goes before the directory is removed.
    pub mount: MountedOverlay,
    pub recorder: Arc<Recorder>,
    pub dir: tempfile::TempDir,
}

pub fn mounted(setup: impl FnOnce(&Path)) -> Fixture {
    mounted_with(OverlayOptions::default(), setup)
}

pub fn mounted_with(options: OverlayOptions, setup: impl FnOnce(&Path)) -> Fixture {
    require_fuse();
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let recorder = Arc::new(Recorder::new());
    let mount = mount_in_place(dir.path(), recorder.clone(), options).expect("mount_in_place");
    Fixture {
        mount,
        recorder,
        dir,
    }
}

impl Fixture {
    /// A path through the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Unmount and hand back the plain directory.
    pub fn unmount(mut self) -> tempfile::TempDir {
        self.mount.unmount().expect("unmount");
        self.dir
    }

    /// Wait until the recorded operations satisfy `done` (releases reach the daemon
    /// asynchronously after close(2)), then return them.
    pub fn ops_when(&self, done: impl Fn(&[Op]) -> bool) -> Vec<Op> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ops = self.recorder.ops();
            if done(&ops) || Instant::now() > deadline {
                return ops;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The operations once every stream handle has been closed.
    pub fn ops_settled(&self) -> Vec<Op> {
        self.ops_when(|ops| open_handles(ops).is_empty())
    }
}

pub fn rel(s: &str) -> RelPath {
    RelPath::new(s.as_bytes()).expect("valid relative path")
}

/// Stream handles opened and not closed; panics on a handle used outside Open/Create..Close.
pub fn open_handles(ops: &[Op]) -> Vec<Handle> {
    let mut open: Vec<Handle> = Vec::new();
    for op in ops {
        match op {
            Op::Open { handle, .. } | Op::Create { handle, .. } => {
                assert!(
                    !open.contains(handle),
                    "handle {handle} opened twice: {ops:#?}"
                );
                open.push(*handle);
            }
            Op::Write { handle, .. }
            | Op::SetLen { handle, .. }
            | Op::Fallocate { handle, .. }
            | Op::Fsync { handle, .. } => {
                assert!(
                    open.contains(handle),
                    "handle {handle} used while not open: {op:?}"
                );
            }
            Op::Close { handle } => {
                assert!(
                    open.contains(handle),
                    "handle {handle} closed while not open"
                );
                open.retain(|h| h != handle);
            }
            _ => {}
        }
    }
    open
}

/// The handle under which `path` was opened or created (the last time).
pub fn handle_of(ops: &[Op], path: &str) -> Handle {
    let want = rel(path);
    ops.iter()
        .rev()
        .find_map(|op| match op {
            Op::Open { handle, path } | Op::Create { handle, path, .. } if *path == want => {
                Some(*handle)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Open/Create of {path}: {ops:#?}"))
}

/// `(offset, data)` of every write through `handle`.
pub fn writes(ops: &[Op], handle: Handle) -> Vec<(u64, Vec<u8>)> {
    ops.iter()
        .filter_map(|op| match op {
            Op::Write {
                handle: h,
                offset,
                data,
            } if *h == handle => Some((*offset, data.to_vec())),
            _ => None,
        })
        .collect()
}

pub fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    r.expect_err("expected an error")
        .raw_os_error()
        .expect("an OS error")
}

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in test paths")
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn renameat2(from: &Path, to: &Path, flags: u32) -> io::Result<()> {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: both strings are NUL-terminated and outlive the call.
    check(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    })
}

/// `touch`: both times set to "now" (UTIME_NOW) by the kernel.
pub fn touch_now(p: &Path) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: NUL-terminated path; a null `times` means "now" for both.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) })
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let (c, n) = (cpath(p), CString::new(name).expect("name"));
    // SAFETY: NUL-terminated strings, `value` readable for its length.
    check(unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

pub fn get_xattr(p: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (c, n) = (cpath(p), CString::new(name).expect("name"));
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated strings, `buf` writable for its length.
    let ret = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(ret as usize);
    Ok(buf)
}

pub fn list_xattr(p: &Path) -> io::Result<Vec<String>> {
    let c = cpath(p);
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated path, `buf` writable for its length.
    let ret = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(ret as usize);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

pub fn remove_xattr(p: &Path, name: &str) -> io::Result<()> {
    let (c, n) = (cpath(p), CString::new(name).expect("name"));
    // SAFETY: NUL-terminated strings.
    check(unsafe { libc::removexattr(c.as_ptr(), n.as_ptr()) })
}

pub fn mkfifo(p: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::mkfifo(c.as_ptr(), mode) })
}
