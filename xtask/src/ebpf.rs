//! `cargo xtask build-ebpf`: the farm XDP program, compiled for `bpfel-unknown-none`.
//!
//! `farm-ebpf/` is its own workspace (excluded from the main one), built in release with the
//! stable toolchain: `RUSTC_BOOTSTRAP=1` unlocks `-Z build-std=core` (rust-src must be
//! installed: `cargo xtask setup`), and bpf-linker 0.13 links it (its LLVM 22 matches rustc's).
//! The rustflags put BTF in the object, which the kernel and aya use for map and program
//! metadata. The object lands at [`object_path`]; the engine finds it there (or wherever
//! `HAKIT_FARM_XDP_OBJECT` points).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::cmd::{self, cargo, target_dir, workspace_root};

const TARGET: &str = "bpfel-unknown-none";
/// BTF in the object: debug info, `--btf` for bpf-linker, and the target arch cfg aya-ebpf's
/// helpers need (this build runs on x86_64 only: the CI and lab machines).
const RUSTFLAGS: &[&str] = &[
    "--cfg=bpf_target_arch=\"x86_64\"",
    "-Cdebuginfo=2",
    "-Clink-arg=--btf",
];

/// Where `cargo xtask build-ebpf` leaves the XDP object.
pub fn object_path() -> PathBuf {
    target_dir().join(TARGET).join("release").join("farm-ebpf")
}

pub fn run() -> Result<()> {
    let start = Instant::now();
    let object = build()?;
    println!("build-ebpf: {} ({:.1?})", object.display(), start.elapsed());
    Ok(())
}

/// Builds the object and returns its path.
pub fn build() -> Result<PathBuf> {
    cmd::run(&mut ebpf_cargo("build"))?;
    let object = object_path();
    if !object.is_file() {
        bail!("the eBPF build did not produce {}", object.display());
    }
    Ok(object)
}

/// `cargo fmt --check` and clippy (warnings denied) on the eBPF crate, which the workspace-wide
/// commands do not see.
pub fn check() -> Result<()> {
    cmd::run(cargo().args([
        "fmt",
        "--manifest-path",
        "farm-ebpf/Cargo.toml",
        "--",
        "--check",
    ]))?;
    cmd::run(ebpf_cargo("clippy").args(["--", "-D", "warnings"]))
}

/// `cargo <sub>` on the eBPF crate for the BPF target, with the flags above.
fn ebpf_cargo(sub: &str) -> Command {
    let mut c = cargo();
    c.args([sub, "--release", "--target", TARGET, "-Z", "build-std=core"])
        .arg("--manifest-path")
        .arg(workspace_root().join("farm-ebpf").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir())
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\x1f"))
        .env_remove("RUSTFLAGS");
    c
}
