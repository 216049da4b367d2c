//! Removing namespaces and folders: a lab's own at drop, and those left by labs of dead processes.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec;
use crate::names::owner_pid;

const NETNS_DIR: &str = "/run/netns";

/// Serializes `ip netns add/del` within this process: concurrent first uses of `/run/netns` by
/// iproute2 can race, and two labs must not clean the same stale namespace at once.
pub(crate) fn netns_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where labs keep their hosts' folders: `<tmp>/hakit-lab/<prefix>-<lab name>/<host>/`.
pub(crate) fn labs_dir() -> PathBuf {
    std::env::temp_dir().join("hakit-lab")
}

pub(crate) fn netns_exists(ns: &str) -> bool {
    Path::new(NETNS_DIR).join(ns).exists()
}

/// Removes the namespaces and folders of labs whose creating process no longer exists: their
/// processes are killed, their namespaces deleted. Labs of live processes are left alone.
pub fn cleanup_stale() -> Result<()> {
    let _guard = netns_lock();
    for ns in list_dir(Path::new(NETNS_DIR))? {
        if let Some(pid) = owner_pid(&ns)
            && !pid_alive(pid)
        {
            eprintln!("hakit-lab: removing stale namespace {ns} (its lab's process {pid} is gone)");
            remove_netns(&ns)?;
        }
    }
    for name in list_dir(&labs_dir())? {
        if let Some(pid) = owner_pid(&name)
            && !pid_alive(pid)
        {
            let dir = labs_dir().join(&name);
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the stale lab folder {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Kills every process in namespace `ns`, then deletes it.
pub(crate) fn remove_netns(ns: &str) -> Result<()> {
    // Another process's lab may be cleaning the same leftovers at the same moment: a namespace
    // that vanished under us is removed, which is all we want.
    let gone = |result: Result<()>| match result {
        Err(_) if !netns_exists(ns) => Ok(()),
        other => other,
    };
    gone(kill_netns_processes(ns))?;
    gone(exec::root("ip", &["netns", "delete", ns]).map(drop))
}

/// SIGKILLs every process in network namespace `ns`, again until none is left.
pub(crate) fn kill_netns_processes(ns: &str) -> Result<()> {
    for _ in 0..500 {
        let out = exec::root("ip", &["netns", "pids", ns])?;
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            // ESRCH: it ended meanwhile, which is what we want.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sleep(Duration::from_millis(20));
    }
    bail!("processes of namespace {ns} survive SIGKILL")
}

fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}
