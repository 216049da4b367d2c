//! `cargo xtask setup`: everything a fresh Debian 12 machine needs to build hakit and run its lab.
//! Each step checks first and skips what is already there.

use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::cmd::{self, cargo, stdout_of};

/// Lab tools (ip, ping, fuse, fio, bc, curl, ps, killall, modprobe), the applications the lab
/// runs on replicated directories (Python 3 with its sqlite3 module, the sqlite3 shell, the
/// PostgreSQL server with its contrib modules such as amcheck) and bpf-linker's LLVM 22.
const APT_PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "fuse3",
    "fio",
    "bc",
    "curl",
    "procps",
    "psmisc",
    "kmod",
    "python3",
    "sqlite3",
    "postgresql",
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
];
const BPF_LINKER_VERSION: &str = "0.13.0";
/// `/usr/bin/llvm-config` is LLVM 14 on Debian 12: bpf-linker must be pointed at LLVM 22.
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn run() -> Result<()> {
    let start = Instant::now();
    apt_packages()?;
    rust_src("stable")?;
    nightly()?;
    bpf_linker()?;
    println!("setup: done in {:.1?}", start.elapsed());
    Ok(())
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        println!("setup: apt packages present ({})", APT_PACKAGES.join(" "));
        return Ok(());
    }
    println!("setup: installing apt packages: {}", missing.join(" "));
    cmd::run(apt_get().args(["update"]))?;
    cmd::run(apt_get().args(["install", "-y"]).args(&missing))
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.args(["-o", "DPkg::Lock::Timeout=600"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn dpkg_installed(package: &str) -> bool {
    stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.trim() == "install ok installed")
}

fn rust_src(toolchain: &str) -> Result<()> {
    let installed = stdout_of(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        toolchain,
    ]))
    .is_some_and(|list| list.lines().any(|l| l.starts_with("rust-src")));
    if installed {
        println!("setup: rust-src present for {toolchain}");
        return Ok(());
    }
    println!("setup: adding rust-src to {toolchain}");
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        toolchain,
    ]))
}

fn nightly() -> Result<()> {
    let present = stdout_of(Command::new("rustup").args(["toolchain", "list"]))
        .is_some_and(|list| list.lines().any(|l| l.starts_with("nightly-")));
    if present {
        return rust_src("nightly");
    }
    // The eBPF build itself uses stable (RUSTC_BOOTSTRAP=1 for build-std, see ebpf.rs); nightly
    // stays for nightly-only tools.
    println!("setup: installing the nightly toolchain");
    cmd::run(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn bpf_linker() -> Result<()> {
    let version = stdout_of(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.split_whitespace().any(|w| w == BPF_LINKER_VERSION) {
        println!("setup: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    println!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes)");
    let path = std::env::var("PATH").unwrap_or_default();
    cmd::run(
        cargo()
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env("PATH", format!("{LLVM_PREFIX}/bin:{path}"))
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
            ])
            .args(["--no-default-features", "--features", "llvm-22"]),
    )
}
