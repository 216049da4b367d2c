//! The farm XDP filter's cost per packet (`cargo xtask bench farm` runs this in release).
//!
//! Usage: `farm_xdp_bench [REPEAT]`; the object comes from `HAKIT_FARM_XDP_OBJECT` or the
//! build output (`cargo xtask build-ebpf`). Needs root (it loads a BPF program).

use std::process::ExitCode;

use hakit::farm::xdp::{XdpObject, bench};

fn main() -> ExitCode {
    let repeat = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let object = XdpObject::locate();
    match bench(&object, repeat) {
        Ok(f) => {
            let net = |ns: u32| ns.saturating_sub(f.baseline_ns);
            println!(
                "farm XDP filter, ns per packet (BPF_PROG_TEST_RUN, best of 5 x {} runs; \
                 the harness alone costs {} ns per run, subtracted in brackets):",
                f.repeat, f.baseline_ns
            );
            let lines = [
                (
                    "accept (owned bucket, established TCP, MAC rewritten)",
                    f.accept_ns,
                ),
                (
                    "drop   (another node's bucket)                      ",
                    f.drop_ns,
                ),
                (
                    "pass   (not farm traffic)                           ",
                    f.non_vip_ns,
                ),
            ];
            for (what, ns) in lines {
                println!("  {what}: {ns} ns ({} ns)", net(ns));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("farm_xdp_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
