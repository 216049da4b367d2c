//! The guardian: a small child process that outlives a daemon killed without warning
//! (SIGKILL, OOM killer, crash). The daemon tells it what this node holds (virtual IPs, a
//! running application); if the daemon's pipe closes without a goodbye, the guardian stops
//! the application with `stop_prim` and removes the virtual IPs, so that the peer — which
//! takes over after the heartbeat timeout — is the only node serving. Without it, a dead
//! daemon would leave its application and address answering clients beside the new primary.
//! For a farm module it runs `stop_both`, removes the VIP from `lo` and puts back the ARP
//! sysctls it changed (the XDP filter and the promiscuous mode die with the daemon).

use crate::config::{Mode, Roots, load_all};
use crate::modlog::{Source, append_line};
use crate::scripts::ScriptRunner;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

/// The daemon's side: a pipe to the guardian process.
#[derive(Debug)]
pub struct Guardian {
    stdin: Mutex<Option<ChildStdin>>,
    _child: Child,
}

impl Guardian {
    /// Start `hakit guardian` with the daemon's roots and node name.
    pub fn spawn(roots: &Roots, node: &str) -> std::io::Result<Guardian> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("guardian")
            .arg("--node")
            .arg(node)
            .env("HAKIT_CONF_ROOT", &roots.conf)
            .env("HAKIT_STATE_ROOT", &roots.state)
            .env("HAKIT_LOG_ROOT", &roots.log)
            .stdin(Stdio::piped())
            // Its own process group: a Ctrl-C meant for the daemon must not reach it.
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Guardian {
            stdin: Mutex::new(stdin),
            _child: child,
        })
    }

    /// `held|released <module> vip <addr>`, `held|released <module> app`,
    /// `held <module> sysctl <path> <old value>` or `released <module> sysctl <path>`.
    pub fn note(&self, line: &str) {
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pipe) = stdin.as_mut()
            && let Err(e) = writeln!(pipe, "{line}")
        {
            eprintln!("guardian unreachable ({e}): a daemon crash would leave resources held");
            *stdin = None;
        }
    }

    /// Clean exit: the guardian leaves everything as it is and exits.
    pub fn goodbye(&self) {
        self.note("bye");
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// What the daemon holds, per module.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    pub app: BTreeSet<String>,
    pub vips: BTreeMap<String, BTreeSet<IpAddr>>,
    /// Per module, sysctls changed and the values to put back.
    pub sysctls: BTreeMap<String, BTreeMap<PathBuf, String>>,
}

impl Holdings {
    /// Apply one line from the daemon; `Ok(true)` on goodbye.
    pub fn apply(&mut self, line: &str) -> Result<bool, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["bye"] => return Ok(true),
            ["held", m, "app"] => {
                self.app.insert(m.to_string());
            }
            ["released", m, "app"] => {
                self.app.remove(*m);
            }
            ["held", m, "vip", addr] => {
                let addr = addr.parse().map_err(|e| format!("{line:?}: {e}"))?;
                self.vips.entry(m.to_string()).or_default().insert(addr);
            }
            ["released", m, "vip", addr] => {
                let addr: IpAddr = addr.parse().map_err(|e| format!("{line:?}: {e}"))?;
                self.vips.entry(m.to_string()).or_default().remove(&addr);
            }
            ["held", m, "sysctl", path, value] => {
                let path = sysctl_path(path).ok_or_else(|| format!("{line:?}: not a sysctl"))?;
                self.sysctls
                    .entry(m.to_string())
                    .or_default()
                    .insert(path, value.to_string());
            }
            ["released", m, "sysctl", path] => {
                if let Some(held) = self.sysctls.get_mut(*m) {
                    held.remove(Path::new(path));
                }
            }
            _ => return Err(format!("unknown guardian instruction {line:?}")),
        }
        Ok(false)
    }
}

/// Only network sysctls may be written back.
fn sysctl_path(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    let plain = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )
    });
    (plain && path.starts_with("/proc/sys/net/")).then(|| path.to_path_buf())
}

/// The guardian process: `hakit guardian --node N`. Reads the daemon's notes until goodbye
/// (exit quietly) or end of input (the daemon died: release everything).
pub fn run(roots: &Roots, node: &str) -> i32 {
    let mut held = Holdings::default();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match held.apply(&line) {
            Ok(true) => return 0,
            Ok(false) => {}
            Err(e) => eprintln!("guardian: {e}"),
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guardian: cannot start its runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(release_all(roots, node, held))
}

async fn release_all(roots: &Roots, node: &str, held: Holdings) -> i32 {
    let config = match load_all(roots) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("guardian: configuration unreadable, removing addresses only: {errors:?}");
            for addr in held.vips.values().flatten() {
                let _ = crate::net::del_vip(*addr).await;
            }
            return 1;
        }
    };
    for module in &config.modules {
        let name = &module.name;
        let log = |text: &str| {
            let _ = append_line(&module.paths.log_dir, Source::Engine, text);
        };
        let sysctls = held.sysctls.get(name).cloned().unwrap_or_default();
        if !held.app.contains(name)
            && held.vips.get(name).is_none_or(|v| v.is_empty())
            && sysctls.is_empty()
        {
            detach_dead_mounts(module, &log);
            continue;
        }
        log("the daemon died without stopping: the guardian releases what it held");
        if held.app.contains(name) {
            let runner = ScriptRunner::new(
                name,
                &module.paths,
                node,
                &module.user,
                module.paths.log_dir.join("application.log"),
            );
            let script = match module.mode {
                Mode::Mirror => "stop_prim",
                Mode::Farm => "stop_both",
            };
            let outcome = runner.run_stop(script, "stop").await;
            log(&format!("guardian: {script}: {}", outcome.describe()));
        }
        for addr in held.vips.get(name).into_iter().flatten() {
            match crate::net::del_vip(*addr).await {
                Ok(_) => log(&format!("guardian: removed virtual IP {addr}")),
                Err(e) => log(&format!("guardian: cannot remove virtual IP {addr}: {e}")),
            }
        }
        for (path, value) in sysctls {
            match std::fs::write(&path, &value) {
                Ok(()) => log(&format!("guardian: {} back to {value}", path.display())),
                Err(e) => log(&format!("guardian: cannot restore {}: {e}", path.display())),
            }
        }
        detach_dead_mounts(module, &log);
    }
    0
}

/// The dead daemon's overlays answer every access with ENOTCONN: detach them, so that the
/// replicated directories show their real files again (the next daemon mounts afresh).
fn detach_dead_mounts(module: &crate::config::Module, log: &dyn Fn(&str)) {
    for replicated in module.rfs.iter().flat_map(|rfs| &rfs.replicated) {
        let dir = &replicated.dir;
        match rfs_fuse::overlay::clean_stale(dir) {
            Ok(()) => log(&format!(
                "guardian: {} no longer covered by the dead daemon's mount",
                dir.display()
            )),
            Err(e) => log(&format!("guardian: {}: {e}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_follow_the_notes() {
        let mut h = Holdings::default();
        assert_eq!(h.apply("held web app"), Ok(false));
        assert_eq!(h.apply("held web vip 10.0.0.10"), Ok(false));
        assert_eq!(h.apply("released web app"), Ok(false));
        assert!(h.app.is_empty());
        assert_eq!(h.vips["web"].len(), 1);
        assert_eq!(h.apply("released web vip 10.0.0.10"), Ok(false));
        assert!(h.vips["web"].is_empty());
        assert!(
            h.apply("held web vip not-an-ip")
                .unwrap_err()
                .contains("not-an-ip")
        );
        assert!(h.apply("dance").is_err());
        let sysctl = "/proc/sys/net/ipv4/conf/eth0/arp_ignore";
        assert_eq!(h.apply(&format!("held web sysctl {sysctl} 0")), Ok(false));
        assert_eq!(h.sysctls["web"][Path::new(sysctl)], "0");
        assert!(h.apply("held web sysctl /etc/passwd 0").is_err());
        assert!(h.apply("held web sysctl /proc/sys/net/../../x 0").is_err());
        assert_eq!(h.apply(&format!("released web sysctl {sysctl}")), Ok(false));
        assert!(h.sysctls["web"].is_empty());
        assert_eq!(h.apply("bye"), Ok(true));
    }
}
