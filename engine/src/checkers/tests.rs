//! Real probes and checker tasks: loopback TCP and ICMP, a network namespace for an
//! unreachable witness, real child processes.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::probes::{ping_probe, probe_witnesses, tcp_probe};
use super::runner::{CheckerReport, spawn_check, spawn_errd};
use crate::config::{Check, CheckAction, CheckClass, CheckKind, Errd, ProcCheck};
use crate::net::testns::{in_new_netns, link_up};

/// Generous: the machine is shared; these only guard against hangs.
const PATIENCE: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

async fn next_report(rx: &mut mpsc::Receiver<CheckerReport>) -> CheckerReport {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("no checker report in time")
        .expect("checker ended")
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check(ident: &str, kind: CheckKind, interval: Duration) -> Check {
    Check {
        ident: ident.into(),
        kind,
        when: CheckClass::Prim,
        action: CheckAction::Restart,
        interval,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn tcp_probe_listening_and_closed_ports() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tcp_probe(ip("127.0.0.1"), port, PATIENCE)
        .await
        .expect("listening port");

    drop(listener);
    let err = tcp_probe(ip("127.0.0.1"), port, PATIENCE)
        .await
        .expect_err("closed port");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("refused"),
        "{err}"
    );
}

#[tokio::test]
async fn ping_loopback() {
    ping_probe(ip("127.0.0.1"), Duration::from_secs(10))
        .await
        .expect("127.0.0.1 answers ICMP echo (needs root)");
}

#[test]
fn witnesses_one_reachable_one_not() {
    in_new_netns(|| async {
        // Only lo, up: 10.77.9.9 has no route at all.
        link_up("lo").await;
        let verdict = probe_witnesses(&[ip("127.0.0.1"), ip("10.77.9.9")], PATIENCE).await;
        assert_eq!(
            verdict.reachable,
            vec![ip("127.0.0.1")],
            "{}",
            verdict.describe()
        );
        assert_eq!(verdict.unreachable.len(), 1, "{}", verdict.describe());
        let (addr, why) = &verdict.unreachable[0];
        assert_eq!(*addr, ip("10.77.9.9"));
        // Refused by the kernel at once, not a timeout.
        assert!(why.contains("unreachable"), "{why}");
        assert!(verdict.any_reachable());
        let text = verdict.describe();
        assert!(
            text.contains("reachable: 127.0.0.1") && text.contains("10.77.9.9 ("),
            "{text}"
        );

        let err = ping_probe(ip("10.77.9.9"), PATIENCE)
            .await
            .expect_err("no route");
        assert!(err.contains("10.77.9.9"), "{err}");
        assert!(
            !probe_witnesses(&[ip("10.77.9.9")], PATIENCE)
                .await
                .any_reachable()
        );
    });
}

#[tokio::test]
async fn custom_program_that_exits_is_one_failure() {
    let (tx, mut rx) = mpsc::channel(8);
    let kind = CheckKind::Custom {
        exec: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), "exit 3".into()],
    };
    // Restarted only after an hour: exactly one report here.
    let handle = spawn_check(&check("app", kind, Duration::from_secs(3600)), tx);
    let report = next_report(&mut rx).await;
    assert_eq!(report.ident, "app");
    assert!(report.failing);
    assert_eq!(report.action, CheckAction::Restart);
    assert!(
        report.detail.contains("exited with code 3"),
        "{}",
        report.detail
    );
    assert!(report.detail.contains("/bin/sh"), "{}", report.detail);
    handle.abort();
    let _ = handle.await;
    assert!(
        rx.recv().await.is_none(),
        "a single report for a single exit"
    );
}

#[tokio::test]
async fn custom_program_restarted_recovers_and_is_killed_on_abort() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("flag");
    let pid_file = dir.path().join("pid");
    // First run fails, the second keeps running.
    let script = format!(
        "if [ -e {flag} ]; then echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; exec sleep 30; else touch {flag}; exit 1; fi",
        flag = flag.display(),
        pid = pid_file.display()
    );
    let kind = CheckKind::Custom {
        exec: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script],
    };
    let (tx, mut rx) = mpsc::channel(8);
    let handle = spawn_check(&check("app", kind, Duration::from_millis(200)), tx);

    let failed = next_report(&mut rx).await;
    assert!(
        failed.failing && failed.detail.contains("exited with code 1"),
        "{failed:?}"
    );
    let recovered = next_report(&mut rx).await;
    assert!(!recovered.failing, "{recovered:?}");
    assert!(
        recovered.detail.contains("running again"),
        "{}",
        recovered.detail
    );

    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    handle.abort();
    let _ = handle.await;
    wait_gone(pid).await;
}

#[tokio::test]
async fn tcp_check_reports_failure_then_recovery() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let kind = CheckKind::Tcp {
        addr: ip("127.0.0.1"),
        port,
    };
    let (tx, mut rx) = mpsc::channel(8);
    let handle = spawn_check(&check("web", kind, Duration::from_millis(50)), tx);
    // Healthy: nothing is reported until the port closes.
    drop(listener);
    let failed = next_report(&mut rx).await;
    assert!(
        failed.failing && failed.detail.contains("refused"),
        "{failed:?}"
    );
    let _listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind the same port");
    let recovered = next_report(&mut rx).await;
    assert!(!recovered.failing, "{recovered:?}");
    assert_eq!(recovered.ident, "web");
    handle.abort();
}

#[tokio::test]
async fn errd_absent_then_present() {
    let name = format!("sleep 27.{}", std::process::id());
    let errd = Errd {
        polltimer: Duration::from_millis(50),
        procs: vec![ProcCheck {
            name: name.clone(),
            atleast: 1,
            atmax: Some(1),
            action: CheckAction::Stopstart,
            class: CheckClass::Prim,
        }],
    };
    let (tx, mut rx) = mpsc::channel(8);
    let handle = spawn_errd(&errd, tx);

    let failed = next_report(&mut rx).await;
    assert_eq!(failed.ident, format!("errd:{name}"));
    assert!(failed.failing);
    assert_eq!(failed.action, CheckAction::Stopstart);
    assert_eq!(
        failed.detail,
        format!("process {name}: 0 running, at least 1 expected")
    );

    let mut child = tokio::process::Command::new("sleep")
        .arg(format!("27.{}", std::process::id()))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sleep");
    let recovered = next_report(&mut rx).await;
    assert!(!recovered.failing, "{recovered:?}");
    assert_eq!(
        recovered.detail,
        format!("process {name}: 1 running (between 1 and 1 expected)")
    );

    let _ = child.kill().await;
    handle.abort();
}
