//! A daemon that died (or hangs) with the overlay mounted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rfs_fuse::overlay::{
    FUSE_SUPER_MAGIC, NoReplication, OverlayError, OverlayOptions, Recorder, mount_in_place,
};
use rfs_fuse::protocol::op::Op;

use crate::support::*;

const CHILD_ENV: &str = "RFS_OVERLAY_TEST_CHILD_DIR";
const CHILD_TEST: &str = "stale::child_process_body";

/// Not a test by itself: the body of the child process started by the test below (it does
/// nothing unless started with the environment variable).
#[test]
fn child_process_body() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let _mount = mount_in_place(
        Path::new(&dir),
        Arc::new(NoReplication),
        OverlayOptions::default(),
    )
    .expect("child mount");
    println!("MOUNTED");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Kills the child and detaches whatever it left, whatever happens in the test.
struct Cleanup {
    child: Child,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn spawn_mounting_child(dir: &Path) -> Cleanup {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                // libtest prints "test <name> ... " without a newline first.
                Ok(l) if l.trim_end().ends_with("MOUNTED") => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let cleanup = Cleanup {
        child,
        dir: dir.to_path_buf(),
    };
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the child did not mount in time");
    cleanup
}

/// SIGSTOP is asynchronous: wait until every thread of `pid` is stopped, so that the
/// server cannot answer the next request.
fn wait_all_stopped(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let all = tasks.map(|t| t.unwrap().path()).all(|t| {
            let stat = std::fs::read_to_string(t.join("stat")).unwrap_or_default();
            // The state follows the parenthesised command name.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        });
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "the child did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_crashed_or_hung_server_is_handled_and_mount_in_place_recovers() {
    require_fuse();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep"), b"survives").unwrap();
    let mut child = spawn_mounting_child(dir.path());
    let magic = nix::sys::statfs::statfs(dir.path())
        .unwrap()
        .filesystem_type()
        .0;
    assert_eq!(magic, FUSE_SUPER_MAGIC);

    // A live overlay is never stacked over.
    let recorder = Arc::new(Recorder::new());
    let err = mount_in_place(dir.path(), recorder.clone(), OverlayOptions::default()).unwrap_err();
    assert!(matches!(err, OverlayError::AlreadyMounted { .. }), "{err}");

    // A hung server: mount_in_place gives up after its probe timeout instead of hanging.
    let pid = Pid::from_raw(child.child.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    wait_all_stopped(pid.as_raw());
    let started = Instant::now();
    let err = mount_in_place(dir.path(), recorder.clone(), OverlayOptions::default()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
    assert!(matches!(err, OverlayError::Unresponsive { .. }), "{err}");

    // Crash: SIGKILL. The path now answers ENOTCONN...
    child.child.kill().unwrap();
    child.child.wait().unwrap();
    assert_eq!(
        nix::sys::statfs::statfs(dir.path()).unwrap_err(),
        Errno::ENOTCONN
    );
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap_err().raw_os_error(),
        Some(libc::ENOTCONN)
    );

    // ...and mount_in_place cleans up and mounts again.
    let mut mount = mount_in_place(dir.path(), recorder.clone(), OverlayOptions::default())
        .expect("mount over the stale mount");
    assert_eq!(std::fs::read(dir.path().join("keep")).unwrap(), b"survives");
    std::fs::write(dir.path().join("after"), b"new").unwrap();
    mount.unmount().unwrap();
    assert!(
        recorder
            .ops()
            .iter()
            .any(|op| matches!(op, Op::Create { path, .. } if *path == rel("after")))
    );
    assert_eq!(std::fs::read(dir.path().join("after")).unwrap(), b"new");
    // Nothing left mounted on the directory.
    let magic = nix::sys::statfs::statfs(dir.path())
        .unwrap()
        .filesystem_type()
        .0;
    assert_ne!(magic, FUSE_SUPER_MAGIC);
}
