//! Script runner tests: real `/bin/sh` scripts in temporary module directories.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::*;

/// Generous: the machine is shared; these only guard against hangs.
const HANG_GUARD: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(300);

struct Fixture {
    _tmp: tempfile::TempDir,
    paths: ModulePaths,
    log: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("modules/web");
        let paths = ModulePaths {
            module_dir: root.clone(),
            bin_dir: root.join("bin"),
            state_dir: tmp.path().join("state/web"),
            log_dir: tmp.path().join("log/web"),
        };
        std::fs::create_dir_all(&paths.bin_dir).expect("bin dir");
        let log = paths.log_dir.join("application.log");
        Self {
            _tmp: tmp,
            paths,
            log,
        }
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        self.script_mode(name, &format!("#!/bin/sh\n{body}\n"), 0o755)
    }

    fn script_mode(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = self.paths.bin_dir.join(name);
        std::fs::write(&path, content).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn runner(&self, nice: Duration, force: Duration) -> ScriptRunner {
        let user = User {
            nicestoptimeout: nice,
            forcestoptimeout: force,
        };
        ScriptRunner::new("web", &self.paths, "node1", &user, self.log.clone())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.paths.bin_dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .to_string()
    }
}

async fn guarded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .expect("script runner hung")
}

/// Waits until process `pid` no longer exists.
async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + HANG_GUARD;
    while kill(Pid::from_raw(pid), None).is_ok() {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn success_is_logged_with_header_and_footer() {
    let fx = Fixture::new();
    fx.script("start_prim", "echo application says hello");
    let outcome = guarded(fx.runner(LONG, LONG).run("start_prim", &[], "prim")).await;
    assert!(
        matches!(outcome, ScriptOutcome::Succeeded { forced: false, .. }),
        "{outcome:?}"
    );
    assert!(
        outcome
            .describe()
            .starts_with("start_prim: exited 0 after "),
        "{}",
        outcome.describe()
    );

    let log = fx.log_text();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains(" start_prim prim: started (pid "),
        "{log}"
    );
    assert!(lines[0].ends_with(')'), "{log}");
    // RFC 3339 UTC timestamp with milliseconds first.
    assert_eq!(
        lines[0].find(' '),
        Some("2026-11-21T23:30:01.123Z".len()),
        "{log}"
    );
    assert!(
        lines[0].split(' ').next().is_some_and(|t| t.ends_with('Z')),
        "{log}"
    );
    assert_eq!(lines[1], "application says hello");
    assert!(lines[2].contains(" start_prim: exited 0 after "), "{log}");
}

#[tokio::test]
async fn exit_code_and_signal_are_failures() {
    let fx = Fixture::new();
    fx.script("start_prim", "echo oops >&2; exit 3");
    fx.script("start_second", "kill -TERM $$");
    let runner = fx.runner(LONG, LONG);

    let outcome = guarded(runner.run("start_prim", &[], "prim")).await;
    let ScriptOutcome::Failed {
        failure, forced, ..
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(*failure, ScriptFailure::ExitCode(3));
    assert!(!forced);
    assert!(
        outcome.describe().contains("exited 3"),
        "{}",
        outcome.describe()
    );
    assert!(fx.log_text().contains("oops\n"), "stderr goes to the log");

    let outcome = guarded(runner.run("start_second", &[], "second")).await;
    let ScriptOutcome::Failed { failure, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(*failure, ScriptFailure::Signal(libc::SIGTERM));
    assert!(
        outcome.describe().contains("SIGTERM"),
        "{}",
        outcome.describe()
    );
}

#[tokio::test]
async fn missing_script_is_not_an_error() {
    let fx = Fixture::new();
    let outcome = guarded(fx.runner(LONG, LONG).run("prestart", &[], "prim")).await;
    assert_eq!(
        outcome,
        ScriptOutcome::Missing {
            script: "prestart".into()
        }
    );
    assert!(fx.log_text().is_empty());
}

#[tokio::test]
async fn not_executable_or_unrunnable_scripts_fail_clearly() {
    let fx = Fixture::new();
    fx.script_mode("start_prim", "#!/bin/sh\nexit 0\n", 0o644);
    fx.script_mode("stop_prim", "#!/no/such/interpreter\nexit 0\n", 0o755);
    fx.script_mode("stop_second", "echo run by sh; exit 4\n", 0o755);
    std::fs::create_dir(fx.paths.bin_dir.join("poststop")).expect("dir");
    let runner = fx.runner(LONG, LONG);

    let outcome = guarded(runner.run("start_prim", &[], "prim")).await;
    let ScriptOutcome::Failed { failure, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        matches!(failure, ScriptFailure::NotRunnable(_)),
        "{failure:?}"
    );
    let text = outcome.describe();
    assert!(
        text.contains("not executable") && text.contains("start_prim"),
        "{text}"
    );

    let outcome = guarded(runner.run("stop_prim", &[], "stop")).await;
    assert!(
        matches!(
            &outcome,
            ScriptOutcome::Failed {
                failure: ScriptFailure::Spawn(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(
        outcome.describe().contains("could not be started"),
        "{}",
        outcome.describe()
    );
    let log = fx.log_text();
    assert!(log.contains("stop_prim stop: exec failed"), "{log}");

    // No `#!` line: run by /bin/sh, as a shell would.
    let outcome = guarded(runner.run("stop_second", &[], "stop")).await;
    assert!(
        matches!(
            &outcome,
            ScriptOutcome::Failed {
                failure: ScriptFailure::ExitCode(4),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(fx.log_text().contains("run by sh\n"));

    let outcome = guarded(runner.run("poststop", &[], "stop")).await;
    assert!(
        outcome.describe().contains("not a regular file"),
        "{}",
        outcome.describe()
    );

    let outcome = guarded(runner.run("../escape", &[], "stop")).await;
    assert!(
        outcome.describe().contains("invalid script name"),
        "{}",
        outcome.describe()
    );
}

#[tokio::test]
async fn environment_arguments_and_working_directory() {
    let fx = Fixture::new();
    fx.script(
        "start_prim",
        r#"{
echo "MODULE=$HAKIT_MODULE"
echo "NODE=$HAKIT_NODE"
echo "ROLE=$HAKIT_ROLE"
echo "MODULE_DIR=$HAKIT_MODULE_DIR"
echo "BIN_DIR=$HAKIT_BIN_DIR"
echo "STATE_DIR=$HAKIT_STATE_DIR"
echo "LOG_DIR=$HAKIT_LOG_DIR"
echo "PATH=$PATH"
echo "ARGS=$*"
echo "PWD=$(pwd -P)"
} > env.out"#,
    );
    let outcome = guarded(
        fx.runner(LONG, LONG)
            .run("start_prim", &["a", "b c"], "prim"),
    )
    .await;
    assert!(outcome.succeeded(), "{outcome:?}");

    let env = fx.read("env.out");
    let get = |key: &str| -> String {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing in {env}"))
            .to_string()
    };
    let p = &fx.paths;
    assert_eq!(get("MODULE"), "web");
    assert_eq!(get("NODE"), "node1");
    assert_eq!(get("ROLE"), "prim");
    assert_eq!(get("MODULE_DIR"), p.module_dir.display().to_string());
    assert_eq!(get("BIN_DIR"), p.bin_dir.display().to_string());
    assert_eq!(get("STATE_DIR"), p.state_dir.display().to_string());
    assert_eq!(get("LOG_DIR"), p.log_dir.display().to_string());
    assert_eq!(get("ARGS"), "a b c");
    let bin = p.bin_dir.canonicalize().expect("canonical bin dir");
    assert_eq!(get("PWD"), bin.display().to_string());
    let exe_dir = std::env::current_exe()
        .expect("current exe")
        .parent()
        .expect("exe dir")
        .display()
        .to_string();
    assert!(
        get("PATH").starts_with(&format!("{exe_dir}:")),
        "{}",
        get("PATH")
    );
}

#[tokio::test]
async fn background_child_does_not_block_run() {
    let fx = Fixture::new();
    // Like a start_prim launching the application: the child keeps the log open.
    fx.script(
        "start_prim",
        "sleep 30 &\necho $! > bg.pid\necho $$ > script.pid\nexit 0",
    );
    let outcome = guarded(fx.runner(LONG, LONG).run("start_prim", &[], "prim")).await;
    assert!(outcome.succeeded(), "{outcome:?}");

    let bg: i32 = fx.read("bg.pid").parse().expect("bg pid");
    let script: i32 = fx.read("script.pid").parse().expect("script pid");
    // The application survives its start script, in the script's process group.
    assert!(
        kill(Pid::from_raw(bg), None).is_ok(),
        "background child was killed"
    );
    assert_eq!(
        nix::unistd::getpgid(Some(Pid::from_raw(bg))),
        Ok(Pid::from_raw(script))
    );
    assert!(fx.log_text().contains(&format!("(pid {script})")));
    let _ = nix::sys::signal::killpg(Pid::from_raw(script), nix::sys::signal::Signal::SIGKILL);
}

#[tokio::test]
async fn graceful_stop_timeout_then_force() {
    let fx = Fixture::new();
    fx.script(
        "stop_prim",
        r#"if [ "$1" = force ]; then echo "forced stop role=$HAKIT_ROLE"; exit 0; fi
echo $$ > graceful.pid
sleep 30"#,
    );
    let outcome = guarded(fx.runner(SHORT, LONG).run_stop("stop_prim", "stop")).await;
    assert!(
        matches!(outcome, ScriptOutcome::Succeeded { forced: true, .. }),
        "{outcome:?}"
    );
    assert!(
        outcome.describe().contains("stop_prim force"),
        "{}",
        outcome.describe()
    );

    // The hung graceful run (and its `sleep`) was killed.
    let graceful: i32 = fx.read("graceful.pid").parse().expect("pid");
    wait_gone(graceful).await;
    let log = fx.log_text();
    assert!(log.contains("forced stop role=stop"), "{log}");
    assert!(log.contains("stop_prim stop: started"), "{log}");
    assert!(log.contains("stop_prim force stop: started"), "{log}");
    assert!(
        log.contains("stop_prim: not finished after 300 ms, process group killed"),
        "{log}"
    );
}

#[tokio::test]
async fn graceful_stop_that_finishes_is_not_forced() {
    let fx = Fixture::new();
    fx.script("stop_prim", r#"echo "args=[$*]""#);
    let outcome = guarded(fx.runner(LONG, LONG).run_stop("stop_prim", "stop")).await;
    assert!(
        matches!(outcome, ScriptOutcome::Succeeded { forced: false, .. }),
        "{outcome:?}"
    );
    assert!(fx.log_text().contains("args=[]"));
    assert!(!fx.log_text().contains("force"));
}

#[tokio::test]
async fn hung_scripts_are_killed_after_forcestoptimeout() {
    let fx = Fixture::new();
    fx.script("start_prim", "echo $$ > start.pid\nsleep 30");
    fx.script("stop_prim", "echo $$ > stop-$#.pid\nsleep 30");
    let runner = fx.runner(SHORT, SHORT);

    let outcome = guarded(runner.run("start_prim", &[], "prim")).await;
    assert_eq!(
        outcome,
        ScriptOutcome::TimedOut {
            script: "start_prim".into(),
            killed_after: SHORT,
            forced: false
        }
    );
    wait_gone(fx.read("start.pid").parse().expect("pid")).await;

    let outcome = guarded(runner.run_stop("stop_prim", "stop")).await;
    assert!(
        matches!(outcome, ScriptOutcome::TimedOut { forced: true, .. }),
        "{outcome:?}"
    );
    assert!(
        outcome.describe().contains("process group was killed"),
        "{}",
        outcome.describe()
    );
    wait_gone(fx.read("stop-0.pid").parse().expect("pid")).await;
    wait_gone(fx.read("stop-1.pid").parse().expect("pid")).await;
}

#[tokio::test]
async fn dropping_a_run_kills_the_script() {
    let fx = Fixture::new();
    fx.script("start_prim", "echo $$ > start.pid\nsleep 30");
    let runner = fx.runner(LONG, LONG);
    let pid_file = fx.paths.bin_dir.join("start.pid");
    let run = runner.run("start_prim", &[], "prim");
    let wait_pid = async {
        let deadline = Instant::now() + HANG_GUARD;
        while std::fs::read_to_string(&pid_file).map_or(true, |s| !s.ends_with('\n')) {
            assert!(Instant::now() < deadline, "script did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        outcome = run => panic!("finished early: {outcome:?}"),
        () = wait_pid => {}
    }
    wait_gone(fx.read("start.pid").parse().expect("pid")).await;
}

#[test]
fn header_composition() {
    let mut buf = [0u8; 512];
    let n = compose_header(&mut buf, b"T start_prim prim: started (pid ", 1234);
    assert_eq!(&buf[..n], b"T start_prim prim: started (pid 1234)\n");
    let n = compose_header(&mut buf, b"x", 0);
    assert_eq!(&buf[..n], b"x0)\n");
    let n = compose_header(&mut buf, b"y", u32::MAX);
    assert_eq!(&buf[..n], b"y4294967295)\n");
    let long = vec![b'a'; 1000];
    let n = compose_header(&mut buf, &long, 7);
    assert_eq!(n, 512);
    assert!(buf.ends_with(b"a7)\n"));
}

#[test]
fn durations_read_well() {
    assert_eq!(fmt_duration(Duration::from_millis(12)), "12 ms");
    assert_eq!(fmt_duration(Duration::from_millis(12_345)), "12.3 s");
}
