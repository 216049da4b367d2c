//! `cargo xtask <task>`: the project's automation (machine setup, the full test run, the lab demo, benchmarks).
//!
//! To add a task: write a module with a `run` function (and a `clap::Args` struct if it takes
//! options), then add one variant to [`Task`] and one arm to `main`.
#![forbid(unsafe_code)]

#[macro_use]
mod py;
mod bench;
mod bench_farm;
mod bench_mirror;
mod bench_resync;
mod bench_rfs;
mod cmd;
mod ebpf;
mod fio;
mod lab;
mod setup;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "hakit project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what builds and tests need (apt packages, rust-src, nightly, bpf-linker). Idempotent.
    Setup,
    /// fmt check, clippy, the XDP object, build, then every test of the workspace with
    /// HAKIT_BIN and HAKIT_FARM_XDP_OBJECT set.
    Test,
    /// The farm XDP program (release, BTF) at target/bpfel-unknown-none/release/farm-ebpf.
    BuildEbpf,
    /// The demo: two nodes and a client in network namespaces; failover of a web server.
    Lab(lab::Args),
    /// Benchmarks (release build): `failover`, `idle`, `mirror` (in the lab), `rfs` (fio on the
    /// overlay alone), `farm` (XDP ns/packet and death-to-table time in the lab).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Test => test::run(),
        Task::BuildEbpf => ebpf::run(),
        Task::Lab(args) => lab::run(&args),
        Task::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
