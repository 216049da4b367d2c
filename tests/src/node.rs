//! A lab host running the hakit daemon, driven through the hakit CLI.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Child;

use anyhow::{Result, anyhow, bail};

use crate::Signal;
use crate::hakit::State;
use crate::host::Host;
use crate::wait::{DEADLINE, abort, wait_until};

/// A host plus its `hakit daemon` process. Dropping it kills the daemon.
pub struct Node {
    host: Host,
    bin: PathBuf,
    daemon: Option<Child>,
    starts: u32,
}

impl Node {
    /// `bin` is the hakit binary (see [`crate::hakit_bin`]); no daemon runs yet.
    pub fn new(host: Host, bin: impl Into<PathBuf>) -> Node {
        Node {
            host,
            bin: bin.into(),
            daemon: None,
            starts: 0,
        }
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn name(&self) -> &str {
        self.host.name()
    }

    /// Runs `hakit <args>` on the node; its stdout, or an error with its stderr.
    pub fn hakit(&self, args: &[&str]) -> Result<String> {
        self.host.run_ok(self.command(args))
    }

    /// `hakit <args>` inside the node, whatever its exit status (to check a refusal).
    pub fn hakit_output(&self, args: &[&str]) -> Result<std::process::Output> {
        self.host.run(self.command(args))
    }

    /// `hakit <args>` as a command line for [`Host::run`] and friends.
    fn command<'a>(&'a self, args: &[&'a str]) -> Vec<&'a OsStr> {
        let mut command = vec![self.bin.as_os_str()];
        command.extend(args.iter().map(|a| OsStr::new(*a)));
        command
    }

    /// Starts `hakit daemon` (foreground); its output goes to `daemon-<n>.log` (see
    /// [`Node::daemon_log`]), a new file per start.
    pub fn start_daemon(&mut self) -> Result<()> {
        if let Some(pid) = self.daemon_pid() {
            bail!(
                "the daemon of {} is already running (pid {pid})",
                self.name()
            );
        }
        self.starts += 1;
        let log = format!("daemon-{}.log", self.starts);
        self.daemon = Some(self.host.spawn(self.command(&["daemon"]), &log)?);
        Ok(())
    }

    /// SIGKILLs the daemon (a crash) and reaps it.
    pub fn kill_daemon(&mut self) -> Result<()> {
        let Some(mut daemon) = self.daemon.take() else {
            bail!("no daemon running on {}", self.name());
        };
        self.host.kill(&mut daemon, Signal::SIGKILL)
    }

    /// SIGKILLs every process of the node at once (see [`Host::kill_everything`]) and reaps
    /// the daemon.
    pub fn kill_everything(&mut self) -> Result<usize> {
        let killed = self.host.kill_everything()?;
        if let Some(mut daemon) = self.daemon.take() {
            daemon.wait()?;
        }
        Ok(killed)
    }

    /// SIGTERMs the daemon (a clean shutdown: it stops its modules) and waits for it to exit.
    pub fn stop_daemon(&mut self) -> Result<()> {
        let Some(mut daemon) = self.daemon.take() else {
            bail!("no daemon running on {}", self.name());
        };
        self.host.kill(&mut daemon, Signal::SIGTERM)?;
        let mut status = None;
        wait_until(
            &format!("the daemon of {} to exit", self.name()),
            DEADLINE,
            || {
                status = daemon.try_wait()?;
                Ok(status.is_some())
            },
        )?;
        match status {
            Some(s) if s.success() => Ok(()),
            other => bail!("the daemon of {} exited with {other:?}", self.name()),
        }
    }

    /// The pid of the daemon started last, while it runs.
    pub fn daemon_pid(&mut self) -> Option<u32> {
        let daemon = self.daemon.as_mut()?;
        matches!(daemon.try_wait(), Ok(None)).then(|| daemon.id())
    }

    /// The output file of the daemon started last.
    pub fn daemon_log(&self) -> Result<PathBuf> {
        self.host
            .output_file(&format!("daemon-{}.log", self.starts.max(1)))
    }

    /// `hakit state -m <module> -lq`: the state from its exit code. The command is quiet, so
    /// anything on stderr, or an exit code outside 0..=4, is an error.
    pub fn state(&self, module: &str) -> Result<State> {
        let out = self
            .host
            .run(self.command(&["state", "-m", module, "-lq"]))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code().and_then(State::from_exit_code) {
            Some(state) if stderr.trim().is_empty() => Ok(state),
            _ => Err(anyhow!(
                "`hakit state -m {module} -lq` on {}: {}; stderr: {}",
                self.name(),
                out.status,
                stderr.trim()
            )),
        }
    }

    /// Waits until the module is in state `want`; gives up at once if the daemon exits.
    pub fn wait_state(&mut self, module: &str, want: State) -> Result<()> {
        let what = format!("{} to be {want} in module {module}", self.name());
        self.wait_state_matching(&what, module, |s| s == want)
            .map(drop)
    }

    /// Waits until `hakit state -l` shows the module in state `want` and Ready (a SECOND is
    /// Ready once the primary has recorded that it is in sync: only then may it take over).
    pub fn wait_ready(&self, module: &str, want: State) -> Result<()> {
        let expected = format!("{want} (Ready)");
        wait_until(
            &format!("{} to be {expected}", self.name()),
            DEADLINE,
            || {
                let line = self.hakit(&["state", "-m", module, "-l"])?;
                if line.contains(&expected) {
                    Ok(true)
                } else {
                    Err(anyhow!("state line {:?}", line.trim()))
                }
            },
        )
    }

    /// Waits until the daemon answers for the module, whatever the state, and returns it.
    pub fn wait_answer(&mut self, module: &str) -> Result<State> {
        let what = format!(
            "the daemon of {} to answer for module {module}",
            self.name()
        );
        self.wait_state_matching(&what, module, |_| true)
    }

    fn wait_state_matching(
        &mut self,
        what: &str,
        module: &str,
        accept: impl Fn(State) -> bool,
    ) -> Result<State> {
        let log = self.daemon_log()?;
        let mut seen = None;
        wait_until(what, DEADLINE, || {
            if self.daemon_pid().is_none() {
                return Err(abort(format!(
                    "the daemon of {} is not running (see {})",
                    self.name(),
                    log.display()
                )));
            }
            let state = self.state(module)?;
            seen = Some(state);
            if accept(state) {
                return Ok(true);
            }
            Err(anyhow!("state is {state}"))
        })?;
        seen.ok_or_else(|| anyhow!("no state observed"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.daemon_pid().is_some() {
            // Best effort: the lab's teardown kills it anyway.
            let _ = self.kill_daemon();
        }
    }
}
