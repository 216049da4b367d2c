//! What the lab needs from the machine: root and a few tools. Missing ones are an error that says
//! what to install, never a reason to skip.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, bail};

/// Tools the lab runs, with the Debian package that provides each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("mount", "mount"),
    ("sleep", "coreutils"),
    ("sh", "dash"),
];

pub fn check() -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    match CHECKED.get_or_init(find_missing) {
        Ok(()) => Ok(()),
        Err(msg) => bail!("{msg}"),
    }
}

fn find_missing() -> Result<(), String> {
    let mut problems = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        problems.push("the lab must run as root (it creates network and mount namespaces)".into());
    }
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(tool, package)| format!("{tool} (package {package})"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing tools: {}", missing.join(", ")));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the lab cannot run: {}. Install what is missing with `cargo xtask setup` (as root)",
        problems.join("; ")
    ))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_file(&dir.join(tool))))
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}
