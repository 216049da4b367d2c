//! The command line at its edge: what scripts and administrators type, exit codes included.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn hakit(roots: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hakit"))
        .arg("--conf-root")
        .arg(roots.join("etc"))
        .arg("--state-root")
        .arg(roots.join("state"))
        .arg("--log-root")
        .arg(roots.join("log"))
        .args(args)
        .output()
        .unwrap()
}

fn roots_with_module(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(format!("etc/modules/{name}/conf"))).unwrap();
    fs::write(
        dir.path()
            .join(format!("etc/modules/{name}/conf/userconfig.xml")),
        "<safe/>",
    )
    .unwrap();
    dir
}

#[test]
fn printi_and_printe_write_the_module_log_of_a_configured_module_only() {
    let roots = roots_with_module("web");
    assert!(
        hakit(roots.path(), &["printi", "-m", "web", "started", "ok"])
            .status
            .success()
    );
    assert!(
        hakit(roots.path(), &["printe", "-m", "web", "disk full"])
            .status
            .success()
    );
    let log = fs::read_to_string(roots.path().join("log/web/module.log")).unwrap();
    assert!(
        log.contains(" I script: started ok") && log.contains(" E script: disk full"),
        "{log}"
    );
    for bad in ["../escape", "nope"] {
        let out = hakit(roots.path(), &["printi", "-m", bad, "x"]);
        assert_eq!(out.status.code(), Some(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("no module named {bad:?}")) && stderr.contains("web"),
            "{stderr}"
        );
    }
    assert!(!roots.path().join("escape").exists() && !roots.path().join("log/nope").exists());
}

#[test]
fn usage_errors_never_look_like_a_state_exit_code() {
    let roots = roots_with_module("web");
    // clap's own usage error would be 2 (= ALONE for `state -lq`); hakit answers 10.
    let out = hakit(roots.path(), &["state", "-m"]);
    assert_eq!(out.status.code(), Some(10));
    // No daemon: an error, not a state.
    let out = hakit(roots.path(), &["state", "-m", "web", "-lq"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `hakit daemon` running"));
}

#[test]
fn config_check_fails_without_touching_anything() {
    let roots = roots_with_module("web");
    let out = hakit(roots.path(), &["config", "check"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster.xml"));
    assert!(!roots.path().join("state").exists() && !roots.path().join("log").exists());
}
