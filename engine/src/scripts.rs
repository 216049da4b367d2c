//! Runs a module's `bin/` scripts (`prestart`, `start_prim`, `stop_prim`, ...).
//!
//! # The scripts' contract
//!
//! A script is an executable file in the module's `bin/` directory (one without a `#!` line
//! is run by `/bin/sh`). It runs:
//! - with its working directory set to that `bin/` directory, standard input `/dev/null`,
//!   standard output and error appended to the module's application log;
//! - as the leader of its own process group (what it leaves running in the background, such
//!   as the application started by `start_prim`, stays in that group);
//! - with these environment variables on top of hakit's own environment:
//!   - `HAKIT_MODULE`: the module name;
//!   - `HAKIT_NODE`: this node's name;
//!   - `HAKIT_ROLE`: the transition being made: `prim`, `second`, `stop`, ...;
//!   - `HAKIT_MODULE_DIR`, `HAKIT_BIN_DIR`, `HAKIT_STATE_DIR`, `HAKIT_LOG_DIR`: the module's
//!     directories;
//!   - `PATH`: the directory of the running `hakit` executable first, so that a script can
//!     log with `hakit printi "message"` / `hakit printe "message"`.
//!
//! Start scripts are killed (their whole process group) if not finished after
//! `forcestoptimeout`. Stop scripts are called without arguments first; if not finished after
//! `nicestoptimeout`, their process group is killed and they are called again with the
//! argument `force`, which is killed after `forcestoptimeout`.
//!
//! hakit writes one line to the application log before each run and one after it.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

use crate::config::{ModulePaths, User};

/// Used when hakit's own environment has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a script run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// No such file in `bin/`: not an error, most scripts are optional.
    Missing { script: String },
    /// Exited with code 0. `forced`: this was the `force` run, after the graceful stop did
    /// not finish within `nicestoptimeout`.
    Succeeded {
        script: String,
        duration: Duration,
        forced: bool,
    },
    /// Did not succeed: non-zero exit, killed by a signal, or could not be started.
    Failed {
        script: String,
        failure: ScriptFailure,
        duration: Duration,
        forced: bool,
    },
    /// Not finished in time: its process group was killed.
    TimedOut {
        script: String,
        killed_after: Duration,
        forced: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptFailure {
    ExitCode(i32),
    Signal(i32),
    /// The file exists but cannot be run (not executable, not a regular file, bad name).
    NotRunnable(String),
    /// `exec` or `wait` failed (e.g. the `#!` interpreter does not exist).
    Spawn(String),
}

impl ScriptOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }

    /// One line for the module log, e.g. "start_prim: exited 0 after 12 ms".
    pub fn describe(&self) -> String {
        let forced = |script: &str, forced: bool| {
            if forced {
                format!(
                    "{script}: graceful stop did not finish in time and was killed; {script} force"
                )
            } else {
                script.to_string()
            }
        };
        match self {
            Self::Missing { script } => format!("{script}: not present, skipped"),
            Self::Succeeded {
                script,
                duration,
                forced: f,
            } => format!(
                "{}: exited 0 after {}",
                forced(script, *f),
                fmt_duration(*duration)
            ),
            Self::Failed {
                script,
                failure,
                duration,
                forced: f,
            } => {
                let what = match failure {
                    ScriptFailure::ExitCode(code) => {
                        format!("exited {code} after {}", fmt_duration(*duration))
                    }
                    ScriptFailure::Signal(sig) => format!(
                        "killed by signal {sig} ({}) after {}",
                        signal_name(*sig),
                        fmt_duration(*duration)
                    ),
                    ScriptFailure::NotRunnable(why) => format!("cannot be run: {why}"),
                    ScriptFailure::Spawn(why) => format!("could not be started: {why}"),
                };
                format!("{}: {what}", forced(script, *f))
            }
            Self::TimedOut {
                script,
                killed_after,
                forced: f,
            } => format!(
                "{}: not finished after {}, its process group was killed",
                forced(script, *f),
                fmt_duration(*killed_after)
            ),
        }
    }
}

/// Runs the scripts of one module on this node. See the module documentation for the
/// environment and conditions a script runs in.
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    module: String,
    node: String,
    paths: ModulePaths,
    nicestoptimeout: Duration,
    forcestoptimeout: Duration,
    app_log: PathBuf,
    path_env: OsString,
}

impl ScriptRunner {
    /// `app_log` is normally `<log_dir>/application.log`.
    pub fn new(
        module: &str,
        paths: &ModulePaths,
        node: &str,
        user: &User,
        app_log: PathBuf,
    ) -> Self {
        let inherited = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let path_env = match exe_dir {
            Some(dir) => {
                let mut p = dir.into_os_string();
                p.push(":");
                p.push(&inherited);
                p
            }
            None => inherited,
        };
        Self {
            module: module.to_string(),
            node: node.to_string(),
            paths: paths.clone(),
            nicestoptimeout: user.nicestoptimeout,
            forcestoptimeout: user.forcestoptimeout,
            app_log,
            path_env,
        }
    }

    /// Runs `bin/<script> args...`, killed after `forcestoptimeout`.
    pub async fn run(&self, script: &str, args: &[&str], role: &str) -> ScriptOutcome {
        match self
            .attempt(script, args, role, self.forcestoptimeout)
            .await
        {
            Attempt::Done(result) => result.into_outcome(script, false),
            Attempt::TimedOut(killed_after) => ScriptOutcome::TimedOut {
                script: script.to_string(),
                killed_after,
                forced: false,
            },
        }
    }

    /// Runs a stop script: gracefully first; if not finished after `nicestoptimeout`, its
    /// process group is killed and it is run again as `<script> force`, killed after
    /// `forcestoptimeout`.
    pub async fn run_stop(&self, script: &str, role: &str) -> ScriptOutcome {
        match self.attempt(script, &[], role, self.nicestoptimeout).await {
            Attempt::Done(result) => result.into_outcome(script, false),
            Attempt::TimedOut(_) => {
                match self
                    .attempt(script, &["force"], role, self.forcestoptimeout)
                    .await
                {
                    Attempt::Done(result) => result.into_outcome(script, true),
                    Attempt::TimedOut(killed_after) => ScriptOutcome::TimedOut {
                        script: script.to_string(),
                        killed_after,
                        forced: true,
                    },
                }
            }
        }
    }

    /// One run of the script, at most `limit` long.
    async fn attempt(&self, script: &str, args: &[&str], role: &str, limit: Duration) -> Attempt {
        let path = match self.runnable(script) {
            Ok(Some(path)) => path,
            Ok(None) => return Attempt::Done(RunResult::Missing),
            Err(failure) => return Attempt::Done(RunResult::Failed(failure, Duration::ZERO)),
        };
        let log = self.open_log();
        let output = |log: &Option<File>| {
            log.as_ref()
                .and_then(|f| f.try_clone().ok())
                .map_or_else(Stdio::null, Stdio::from)
        };
        let mut cmd = Command::new(&path);
        cmd.args(args)
            .current_dir(&self.paths.bin_dir)
            .env("HAKIT_MODULE", &self.module)
            .env("HAKIT_NODE", &self.node)
            .env("HAKIT_ROLE", role)
            .env("HAKIT_MODULE_DIR", &self.paths.module_dir)
            .env("HAKIT_BIN_DIR", &self.paths.bin_dir)
            .env("HAKIT_STATE_DIR", &self.paths.state_dir)
            .env("HAKIT_LOG_DIR", &self.paths.log_dir)
            .env("PATH", &self.path_env)
            .stdin(Stdio::null())
            .stdout(output(&log))
            .stderr(output(&log))
            .process_group(0);
        let command_line = std::iter::once(script)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");

        let stamp = humantime::format_rfc3339_millis(SystemTime::now());
        header_from_child(
            &mut cmd,
            log.as_ref().and_then(|f| f.try_clone().ok()),
            format!("{stamp} {command_line} {role}: started (pid "),
        );
        let start = Instant::now();
        let mut child = match spawn_retrying_busy(&mut cmd).await {
            Ok(child) => child,
            Err(e) => {
                log_line(&log, &format!("{command_line} {role}: exec failed: {e}"));
                return Attempt::Done(RunResult::Failed(
                    ScriptFailure::Spawn(e.to_string()),
                    start.elapsed(),
                ));
            }
        };
        let Some(pid) = child.id() else {
            return Attempt::Done(RunResult::Failed(
                ScriptFailure::Spawn("exited before its pid could be read".into()),
                start.elapsed(),
            ));
        };
        // Kills the group if this future is dropped before the script ends.
        let mut group = ProcessGroup::new(pid);

        match tokio::time::timeout(limit, child.wait()).await {
            Ok(Ok(status)) => {
                // What the script left running in the background is meant to stay.
                group.disarm();
                let duration = start.elapsed();
                log_line(
                    &log,
                    &format!(
                        "{script}: {} after {}",
                        describe_status(status),
                        fmt_duration(duration)
                    ),
                );
                Attempt::Done(RunResult::Exited(status, duration))
            }
            Ok(Err(e)) => {
                group.kill();
                let _ = child.wait().await;
                log_line(
                    &log,
                    &format!("{script}: waiting for it failed: {e}; process group killed"),
                );
                Attempt::Done(RunResult::Failed(
                    ScriptFailure::Spawn(format!("wait: {e}")),
                    start.elapsed(),
                ))
            }
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                log_line(
                    &log,
                    &format!(
                        "{script}: not finished after {}, process group killed",
                        fmt_duration(limit)
                    ),
                );
                Attempt::TimedOut(limit)
            }
        }
    }

    /// `Ok(None)` if the script does not exist; the failure if it cannot be run.
    fn runnable(&self, script: &str) -> Result<Option<PathBuf>, ScriptFailure> {
        if script.is_empty() || script.contains('/') || script == "." || script == ".." {
            return Err(ScriptFailure::NotRunnable(format!(
                "invalid script name {script:?}"
            )));
        }
        let path = self.paths.bin_dir.join(script);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ScriptFailure::NotRunnable(format!(
                    "{}: {e}",
                    path.display()
                )));
            }
        };
        if !meta.is_file() {
            return Err(ScriptFailure::NotRunnable(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let mode = meta.permissions().mode();
        if mode & 0o111 == 0 {
            return Err(ScriptFailure::NotRunnable(format!(
                "{} is not executable (mode {:o}); chmod +x it",
                path.display(),
                mode & 0o7777
            )));
        }
        Ok(Some(path))
    }

    /// The application log, opened for appending; `None` if it cannot be (the script still
    /// runs: stopping the application matters more than its output).
    fn open_log(&self) -> Option<File> {
        if let Some(dir) = self.app_log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.app_log)
            .ok()
    }
}

enum Attempt {
    Done(RunResult),
    TimedOut(Duration),
}

enum RunResult {
    Missing,
    Exited(ExitStatus, Duration),
    Failed(ScriptFailure, Duration),
}

impl RunResult {
    fn into_outcome(self, script: &str, forced: bool) -> ScriptOutcome {
        let script = script.to_string();
        match self {
            Self::Missing => ScriptOutcome::Missing { script },
            Self::Exited(status, duration) if status.success() => ScriptOutcome::Succeeded {
                script,
                duration,
                forced,
            },
            Self::Exited(status, duration) => {
                let failure = match (status.code(), status.signal()) {
                    (Some(code), _) => ScriptFailure::ExitCode(code),
                    (None, Some(sig)) => ScriptFailure::Signal(sig),
                    (None, None) => ScriptFailure::Spawn(format!("unknown wait status {status}")),
                };
                ScriptOutcome::Failed {
                    script,
                    failure,
                    duration,
                    forced,
                }
            }
            Self::Failed(failure, duration) => ScriptOutcome::Failed {
                script,
                failure,
                duration,
                forced,
            },
        }
    }
}

/// A child's process group, killed with SIGKILL when dropped unless disarmed.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Option<Pid>,
}

impl ProcessGroup {
    /// The group led by `pid` (a child spawned with `process_group(0)`). A pid of 0 or 1
    /// (never a child's) gives a group that kills nothing: killpg(0) would hit hakit itself.
    pub(crate) fn new(pid: u32) -> Self {
        Self {
            pgid: i32::try_from(pid)
                .ok()
                .filter(|&p| p > 1)
                .map(Pid::from_raw),
        }
    }

    /// SIGKILL to every process of the group (no-op if already done or disarmed).
    /// Safe after the leader was reaped: a pid stays reserved while a group uses it.
    pub(crate) fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes the child write the "started (pid N)" line to the log itself, after fork and before
/// exec: written by the parent after spawning, it could land after the script's first output.
/// Installed even without a log, so that every script is started the same way (fork, then
/// execvp: a script without `#!` is run by `/bin/sh`).
fn header_from_child(cmd: &mut Command, log: Option<File>, prefix: String) {
    let prefix = prefix.into_bytes();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // work is allowed: it calls getpid(2), copies bytes into a stack buffer and makes one
    // write(2) on an already open descriptor; it neither allocates nor takes any lock.
    unsafe {
        cmd.pre_exec(move || {
            let mut line = [0u8; 512];
            if let Some(log) = &log {
                let len = compose_header(&mut line, &prefix, std::process::id());
                let _ = (&*log).write(&line[..len]);
            }
            Ok(())
        });
    }
}

/// `prefix`, then `pid` in decimal, then ")\n", into `buf` without allocating (the prefix is
/// cut if too long). Returns the length written.
fn compose_header(buf: &mut [u8; 512], prefix: &[u8], pid: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut n = pid;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    let keep = prefix.len().min(buf.len() - digits.len() - 2);
    buf[..keep].copy_from_slice(&prefix[..keep]);
    let mut len = keep;
    buf[len..len + digits.len()].copy_from_slice(digits);
    len += digits.len();
    buf[len..len + 2].copy_from_slice(b")\n");
    len + 2
}

/// Spawns `cmd`, retrying briefly on ETXTBSY: the file is being written, or another
/// thread's fork still holds a writable descriptor of it for an instant.
async fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

fn log_line(log: &Option<File>, text: &str) {
    if let Some(mut file) = log.as_ref() {
        let stamp = humantime::format_rfc3339_millis(SystemTime::now());
        let _ = file.write_all(format!("{stamp} {text}\n").as_bytes());
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        (None, None) => format!("ended ({status})"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    Signal::try_from(sig).map_or("unknown", Signal::as_str)
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
#[path = "scripts_tests.rs"]
mod tests;
