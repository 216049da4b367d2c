//! Mounting the overlay in place over a replicated directory, and taking it down.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};

use super::core::OverlayCore;
use super::error::OverlayError;
use super::fs::Overlay;
use super::replicate::Replicator;
use crate::protocol::op::{Handle, RelPath};

/// `statfs` magic of a FUSE mount.
pub const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// Fewer threads serialise concurrent fsyncs and kill the backing journal's batching
/// (PLATFORM.md); below this the overlay uses this many anyway.
pub const MIN_THREADS: usize = 4;
/// How long a FUSE server already mounted on the directory may take to answer `statfs`
/// before it is declared unresponsive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Stale mounts can be stacked (several crashes in a row): clean at most this many.
const MAX_STALE_LAYERS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayOptions {
    /// The secondary's mount: every mutating request is answered EROFS.
    pub read_only: bool,
    /// FUSE worker threads (at least [`MIN_THREADS`]).
    pub n_threads: usize,
}

impl Default for OverlayOptions {
    fn default() -> Self {
        OverlayOptions {
            read_only: false,
            n_threads: 8,
        }
    }
}

/// A mounted overlay. [`MountedOverlay::unmount`] (or dropping it) unmounts and joins the
/// FUSE threads.
#[derive(Debug)]
pub struct MountedOverlay {
    dir: PathBuf,
    session: Option<BackgroundSession>,
    core: Arc<OverlayCore>,
}

/// What a mounted overlay has open for writing, for a new stream to adopt (see
/// [`crate::overlay::StreamAdopter`]). Cheap to clone; outlives nothing it needs.
#[derive(Debug, Clone)]
pub struct OpenHandles {
    core: Arc<OverlayCore>,
}

impl OpenHandles {
    /// Each file open for writing: its stream handle and current path (`None`: unlinked).
    pub fn snapshot(&self) -> Vec<(Handle, Option<RelPath>)> {
        self.core.stream_handles()
    }
}

/// Mount the overlay over `dir`, in place: a descriptor on `dir` is opened first, then the
/// FUSE file system is mounted over the same path and serves everything relative to that
/// descriptor, so the application keeps its paths and no data moves.
///
/// A stale FUSE mount left on `dir` by a crashed daemon (the path answers ENOTCONN) is
/// detached first; a *live* FUSE file system mounted there is refused (stacking a second
/// overlay would hide the first one's writes from replication).
///
/// Mount before the application starts: a process whose working directory or open files were
/// in `dir` before the mount keeps using the real files, bypassing replication.
pub fn mount_in_place(
    dir: &Path,
    replicator: Arc<dyn Replicator>,
    options: OverlayOptions,
) -> Result<MountedOverlay, OverlayError> {
    if let Err(source) = std::fs::metadata("/dev/fuse") {
        return Err(OverlayError::NoFuseDevice { source });
    }
    clean_stale(dir)?;
    let dir = dir
        .canonicalize()
        .map_err(|e| OverlayError::io(dir, "resolve the directory", e))?;
    let root = open_dir(&dir)?;
    let core = OverlayCore::new(root, replicator, options.read_only)
        .map(Arc::new)
        .map_err(|e| {
            OverlayError::io(
                &dir,
                "stat the directory",
                std::io::Error::from_raw_os_error(e.errno()),
            )
        })?;

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("hakit".into()),
        MountOption::Subtype("rfs".into()),
        // The kernel checks permissions from the attributes: the daemon runs as root and
        // must not be the one deciding.
        MountOption::DefaultPermissions,
    ];
    // Applications run as any user.
    config.acl = SessionACL::All;
    config.n_threads = Some(options.n_threads.max(MIN_THREADS));
    config.clone_fd = true;
    let session = fuser::Session::new(Overlay::new(Arc::clone(&core)), &dir, &config)
        .and_then(fuser::Session::spawn)
        .map_err(|e| OverlayError::io(&dir, "mount FUSE", e))?;
    Ok(MountedOverlay {
        dir,
        session: Some(session),
        core,
    })
}

impl MountedOverlay {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Aborts the FUSE connection (`umount2(MNT_FORCE)`, which FUSE answers by aborting):
    /// every request in progress fails in the application with ENOTCONN, none is answered
    /// afterwards. For a node that must stop serving while writes wait that its peer will
    /// never have. Unmount (or drop) afterwards as usual.
    pub fn abort(&self) -> Result<(), OverlayError> {
        match umount2(&self.dir, MntFlags::MNT_FORCE) {
            // Busy: the connection is aborted anyway; gone already: nothing to abort.
            Ok(()) | Err(Errno::EBUSY) | Err(Errno::EINVAL) => Ok(()),
            Err(e) => Err(OverlayError::io(
                &self.dir,
                "abort the FUSE connection",
                e.into(),
            )),
        }
    }

    pub fn open_handles(&self) -> OpenHandles {
        OpenHandles {
            core: Arc::clone(&self.core),
        }
    }

    /// Unmount and wait for the FUSE threads to finish. Fails with [`OverlayError::Busy`]
    /// (and stays mounted, so it can be retried) while files under the mount are in use.
    pub fn unmount(&mut self) -> Result<(), OverlayError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match umount2(&self.dir, MntFlags::empty()) {
            // EINVAL: no longer a mount point (unmounted from outside); just join.
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(Errno::EBUSY) => {
                self.session = Some(session);
                return Err(OverlayError::Busy {
                    dir: self.dir.clone(),
                });
            }
            Err(e) => {
                self.session = Some(session);
                return Err(OverlayError::io(&self.dir, "unmount", e.into()));
            }
        }
        session
            .join()
            .map_err(|e| OverlayError::io(&self.dir, "join the FUSE session", e))
    }
}

impl Drop for MountedOverlay {
    fn drop(&mut self) {
        if self.session.is_none() {
            return;
        }
        if let Err(e) = self.unmount() {
            log::warn!("rfs overlay: {e}; detaching lazily");
            if let Err(e) = umount2(&self.dir, MntFlags::MNT_DETACH) {
                log::warn!(
                    "rfs overlay: {}: lazy unmount failed: {e}",
                    self.dir.display()
                );
            }
            // The session keeps serving the files still open on the detached mount and ends
            // with them. Not dropped: fuser's own unmount-on-drop would now hit whatever is
            // mounted at the path underneath (possibly the application's volume).
            if let Some(session) = self.session.take() {
                std::mem::forget(session);
            }
        }
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd, OverlayError> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        OverlayError::io(
            dir,
            "open the directory",
            std::io::Error::from_raw_os_error(libc::EINVAL),
        )
    })?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(OverlayError::io(
            dir,
            "open the directory",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What is mounted on the directory.
#[derive(Debug)]
enum Probe {
    /// No FUSE mount on it: mount there.
    Plain,
    /// A FUSE file system whose server answers: never stack over it.
    LiveFuse,
    /// A FUSE mount whose server is gone (ENOTCONN; ECONNABORTED for a request that was
    /// pending when it died).
    Stale,
    Failed(Errno),
}

fn stale_errno(e: Errno) -> bool {
    matches!(e, Errno::ENOTCONN | Errno::ECONNABORTED)
}

fn probe_now(dir: &Path) -> Probe {
    use std::os::unix::fs::MetadataExt;
    let st = match nix::sys::statfs::statfs(dir) {
        Err(e) if stale_errno(e) => return Probe::Stale,
        Err(e) => return Probe::Failed(e),
        Ok(st) => st,
    };
    if st.filesystem_type().0 != FUSE_SUPER_MAGIC {
        return Probe::Plain;
    }
    // Inside some FUSE file system; is `dir` itself its mount point? A mount point has
    // another device than its parent (FUSE mounts always get their own).
    let dev = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| m.dev())
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    };
    let parent = dir.parent().unwrap_or(Path::new("/"));
    match (dev(dir), dev(parent)) {
        (Err(e), _) if stale_errno(e) => Probe::Stale,
        (Err(e), _) | (_, Err(e)) => Probe::Failed(e),
        (Ok(own), Ok(up)) if own != up => Probe::LiveFuse,
        _ => Probe::Plain,
    }
}

/// [`probe_now`] in a helper thread: a hung FUSE server would block the caller forever.
/// `None` when it did not answer in time (the helper thread stays blocked until it does).
fn probe(dir: &Path) -> Option<Probe> {
    let (tx, rx) = mpsc::channel();
    let path = dir.to_path_buf();
    std::thread::Builder::new()
        .name("rfs-probe".into())
        .spawn(move || {
            let _ = tx.send(probe_now(&path));
        })
        .ok()?;
    rx.recv_timeout(PROBE_TIMEOUT).ok()
}

/// Detach stale FUSE mounts (crashed server) from `dir`; refuse a live or hung one.
pub fn clean_stale(dir: &Path) -> Result<(), OverlayError> {
    for _ in 0..MAX_STALE_LAYERS {
        match probe(dir) {
            None => {
                return Err(OverlayError::Unresponsive {
                    dir: dir.to_path_buf(),
                });
            }
            Some(Probe::Stale) => {
                log::warn!(
                    "rfs overlay: {}: stale FUSE mount (server gone), detaching it",
                    dir.display()
                );
                umount2(dir, MntFlags::MNT_DETACH)
                    .map_err(|e| OverlayError::io(dir, "detach the stale mount", e.into()))?;
            }
            Some(Probe::Failed(e)) => return Err(OverlayError::io(dir, "probe", e.into())),
            Some(Probe::LiveFuse) => {
                return Err(OverlayError::AlreadyMounted {
                    dir: dir.to_path_buf(),
                });
            }
            Some(Probe::Plain) => return Ok(()),
        }
    }
    Err(OverlayError::StaleMountPersists {
        dir: dir.to_path_buf(),
        attempts: MAX_STALE_LAYERS,
    })
}
