//! Long-running checker tasks. They observe and report changes to the module; the module's
//! state machine decides what to do.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::errd::count_processes;
use super::probes::{ping_probe, tcp_probe};
use crate::config::{Check, CheckAction, CheckKind, Errd, ProcCheck};
use crate::scripts::ProcessGroup;

/// Shortest period a checker runs with, whatever the configuration says.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// A change of a checker's state: its first failure, or its recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerReport {
    /// The check's `ident`, or `errd:<proc name>`.
    pub ident: String,
    pub failing: bool,
    /// What was seen, e.g. "process nginx: 0 running, at least 1 expected".
    pub detail: String,
    pub action: CheckAction,
}

/// Starts a checker. It starts healthy and reports only changes (first failure, recovery).
/// - tcp / ping: one probe every `interval` (the first one interval after the start), each
///   bounded by `timeout`;
/// - custom: the program runs (in its own process group, stdin `/dev/null`, output
///   inherited) and is expected to keep running: its exit, whatever the code, is a failure;
///   it is restarted after `interval`, and counts as recovered once it has been running for
///   `interval` again.
///
/// Aborting the handle stops the checker and kills a custom program's process group. The
/// checker also ends when the receiver is dropped.
pub fn spawn_check(check: &Check, tx: Sender<CheckerReport>) -> JoinHandle<()> {
    let check = check.clone();
    tokio::spawn(async move {
        let mut reporter = Reporter::new(check.ident.clone(), check.action, tx);
        match &check.kind {
            CheckKind::Tcp { addr, port } => {
                let what = format!("tcp {addr}:{port}");
                let mut ticker = ticker(check.interval);
                loop {
                    ticker.tick().await;
                    let seen = tcp_probe(*addr, *port, check.timeout).await;
                    if !reporter.probed(&what, seen).await {
                        return;
                    }
                }
            }
            CheckKind::Ping { addr } => {
                let what = format!("ping {addr}");
                let mut ticker = ticker(check.interval);
                loop {
                    ticker.tick().await;
                    let seen = ping_probe(*addr, check.timeout).await;
                    if !reporter.probed(&what, seen).await {
                        return;
                    }
                }
            }
            CheckKind::Custom { exec, args } => {
                custom_loop(&mut reporter, exec, args, check.interval.max(MIN_PERIOD)).await;
            }
        }
    })
}

async fn custom_loop(
    reporter: &mut Reporter,
    exec: &std::path::Path,
    args: &[String],
    interval: Duration,
) {
    let what = format!("custom {}", exec.display());
    loop {
        let spawned = Command::new(exec)
            .args(args)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                if !reporter
                    .observe(true, format!("{what}: cannot start: {e}"))
                    .await
                {
                    return;
                }
                tokio::time::sleep(interval).await;
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        // Killed with everything the program started if this task is aborted.
        let mut group = ProcessGroup::new(pid);
        let waited = if reporter.failing {
            tokio::select! {
                status = child.wait() => status,
                () = tokio::time::sleep(interval) => {
                    let detail = format!("{what}: running again (pid {pid})");
                    if !reporter.observe(false, detail).await {
                        return;
                    }
                    child.wait().await
                }
            }
        } else {
            child.wait().await
        };
        // What it left behind must not pile up across restarts.
        group.kill();
        let how = match waited {
            Ok(status) => match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                (None, None) => format!("ended ({status})"),
            },
            Err(e) => format!("could not be waited for: {e}"),
        };
        if !reporter
            .observe(true, format!("{what} (pid {pid}) {how}"))
            .await
        {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Starts the process watcher of `<errd>`: every `polltimer`, each `<proc>`'s count is
/// compared with `atleast` / `atmax`; ident `errd:<name>`. Reports only changes. Ends at
/// once if there is no `<proc>`, or when the receiver is dropped.
pub fn spawn_errd(errd: &Errd, tx: Sender<CheckerReport>) -> JoinHandle<()> {
    let errd = errd.clone();
    tokio::spawn(async move {
        if errd.procs.is_empty() {
            return;
        }
        let mut reporters: Vec<Reporter> = errd
            .procs
            .iter()
            .map(|p| Reporter::new(format!("errd:{}", p.name), p.action, tx.clone()))
            .collect();
        drop(tx);
        let mut ticker = ticker(errd.polltimer);
        loop {
            ticker.tick().await;
            let names: Vec<String> = errd.procs.iter().map(|p| p.name.clone()).collect();
            let counts = tokio::task::spawn_blocking(move || {
                names
                    .iter()
                    .map(|n| count_processes(n).map_err(|e| format!("cannot scan /proc: {e}")))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_else(|e| vec![Err(format!("process scan failed: {e}")); errd.procs.len()]);
            for ((proc, count), reporter) in errd.procs.iter().zip(counts).zip(&mut reporters) {
                let (failing, detail) = judge(proc, count);
                if !reporter.observe(failing, detail).await {
                    return;
                }
            }
        }
    })
}

/// Whether a process count is out of bounds, and what was seen.
fn judge(proc: &ProcCheck, count: Result<u32, String>) -> (bool, String) {
    let name = &proc.name;
    let n = match count {
        Ok(n) => n,
        Err(e) => return (true, format!("process {name}: {e}")),
    };
    if n < proc.atleast {
        return (
            true,
            format!(
                "process {name}: {n} running, at least {} expected",
                proc.atleast
            ),
        );
    }
    if let Some(max) = proc.atmax
        && n > max
    {
        return (
            true,
            format!("process {name}: {n} running, at most {max} expected"),
        );
    }
    let bounds = match proc.atmax {
        Some(max) => format!("between {} and {max}", proc.atleast),
        None => format!("at least {}", proc.atleast),
    };
    (
        false,
        format!("process {name}: {n} running ({bounds} expected)"),
    )
}

/// Ticks every `period`, the first time one period from now: a checker started with the
/// application (right after start_prim) gives it that long to come up before judging it.
fn ticker(period: Duration) -> tokio::time::Interval {
    let period = period.max(MIN_PERIOD);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// One checker's last reported state; sends only changes.
struct Reporter {
    ident: String,
    action: CheckAction,
    failing: bool,
    tx: Sender<CheckerReport>,
}

impl Reporter {
    fn new(ident: String, action: CheckAction, tx: Sender<CheckerReport>) -> Self {
        Self {
            ident,
            action,
            failing: false,
            tx,
        }
    }

    /// Reports a probe's result if it changes the state. False if nobody listens any more.
    async fn probed(&mut self, what: &str, seen: Result<(), String>) -> bool {
        match seen {
            Ok(()) => {
                self.observe(false, format!("{what}: answering again"))
                    .await
            }
            Err(e) => self.observe(true, e).await,
        }
    }

    /// False if nobody listens any more.
    async fn observe(&mut self, failing: bool, detail: String) -> bool {
        if failing == self.failing {
            return !self.tx.is_closed();
        }
        self.failing = failing;
        let report = CheckerReport {
            ident: self.ident.clone(),
            failing,
            detail,
            action: self.action,
        };
        self.tx.send(report).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CheckClass;

    fn proc(atleast: u32, atmax: Option<u32>) -> ProcCheck {
        ProcCheck {
            name: "nginx".into(),
            atleast,
            atmax,
            action: CheckAction::Restart,
            class: CheckClass::Prim,
        }
    }

    #[test]
    fn judging_counts() {
        assert_eq!(
            judge(&proc(1, None), Ok(0)),
            (true, "process nginx: 0 running, at least 1 expected".into())
        );
        assert_eq!(
            judge(&proc(1, Some(3)), Ok(5)),
            (true, "process nginx: 5 running, at most 3 expected".into())
        );
        assert_eq!(
            judge(&proc(1, Some(3)), Ok(2)),
            (
                false,
                "process nginx: 2 running (between 1 and 3 expected)".into()
            )
        );
        assert!(judge(&proc(0, None), Err("cannot scan /proc: x".into())).0);
    }
}
