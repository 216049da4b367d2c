//! `cargo xtask test`: the one command that checks everything (CI runs exactly this).
//!
//! fmt check, the farm XDP program (fmt, clippy, release build: `cargo xtask build-ebpf`),
//! clippy with warnings denied, build of every target, then `cargo test --workspace` with
//! `HAKIT_BIN` set to the freshly built daemon (the lab's integration tests run it),
//! `HAKIT_FARM_XDP_OBJECT` to the XDP object (the XDP tests load it) and `HAKIT_HEAVY` passed
//! through (heavier loops read it). Ends with one summary line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, cargo, describe, target_dir};
use crate::ebpf;

pub fn run() -> Result<()> {
    let start = Instant::now();
    step("format", cargo().args(["fmt", "--all", "--", "--check"]))?;
    let ebpf_start = Instant::now();
    ebpf::check().context("eBPF fmt/clippy check failed")?;
    let object = ebpf::build().context("eBPF build failed")?;
    println!("xtask test: ebpf ok ({:.1?})", ebpf_start.elapsed());
    step(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "build",
        cargo().args(["build", "--workspace", "--all-targets"]),
    )?;

    let bin = target_dir().join("debug").join("hakit");
    if !bin.is_file() {
        bail!("the build did not produce {}", bin.display());
    }
    let heavy = std::env::var("HAKIT_HEAVY").unwrap_or_default();
    println!(
        "xtask test: HAKIT_BIN={} HAKIT_HEAVY={}",
        bin.display(),
        if heavy.is_empty() { "(unset)" } else { &heavy }
    );
    let mut test = cargo();
    test.args(["test", "--workspace"])
        .env("HAKIT_BIN", &bin)
        .env("HAKIT_FARM_XDP_OBJECT", &object);
    let totals = run_tests(&mut test)?;
    println!(
        "xtask test: fmt, ebpf, clippy, build ok; tests {} in {:.1?}",
        if totals.failed == 0 { "ok" } else { "FAILED" },
        start.elapsed()
    );
    println!("{}", totals.summary_line());
    if totals.failed > 0 || !totals.success {
        bail!("tests failed (see the output above)");
    }
    Ok(())
}

fn step(name: &str, command: &mut Command) -> Result<()> {
    let start = Instant::now();
    cmd::run(command).with_context(|| format!("{name} check failed"))?;
    println!("xtask test: {name} ok ({:.1?})", start.elapsed());
    Ok(())
}

/// Test counts added up over every `test result:` line cargo test printed.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    success: bool,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }

    fn summary_line(&self) -> String {
        let mut line = format!("summary: {} passed, {} failed", self.passed, self.failed);
        if self.ignored > 0 {
            line.push_str(&format!(", {} skipped", self.ignored));
        }
        line
    }
}

/// Runs cargo test, echoing its stdout line by line while counting results.
fn run_tests(cmd: &mut Command) -> Result<Totals> {
    let line = describe(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let mut totals = Totals::default();
    if let Some(stdout) = child.stdout.take() {
        for out in BufReader::new(stdout).lines() {
            let out = out.with_context(|| format!("reading the output of `{line}`"))?;
            println!("{out}");
            totals.add(&out);
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{line}`"))?;
    totals.success = status.success();
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_add_up_result_lines() {
        let mut t = Totals::default();
        t.add("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        t.add("running 4 tests");
        assert_eq!((t.passed, t.failed, t.ignored), (5, 1, 1));
        assert_eq!(t.summary_line(), "summary: 5 passed, 1 failed, 1 skipped");
    }
}
