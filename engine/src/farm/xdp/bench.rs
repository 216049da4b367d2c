//! The filter's cost per packet, measured by the kernel with `BPF_PROG_TEST_RUN` (`repeat`
//! runs on one frame, mean time per run): the `cargo xtask bench farm` figures.
//!
//! Three frames, all TCP ACKs of established connections on a 256-bucket table where this node owns
//! half the buckets: one it accepts (flow known, MAC rewritten), one it drops (another node's
//! bucket), and one that is not farm traffic (sent to the node's own MAC).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

use super::packet::{self, ACK};
use super::sys;
use super::{
    BucketState, FilterConfig, FilterMode, Proto, Rule, TestRun, XdpError, XdpFilter, XdpObject,
    bucket_for,
};

/// Mean nanoseconds per packet, as `BPF_PROG_TEST_RUN` reports them: each includes the
/// test harness's own cost per run, measured alone as `baseline_ns` (an empty program).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchFigures {
    pub accept_ns: u32,
    pub drop_ns: u32,
    pub non_vip_ns: u32,
    pub baseline_ns: u32,
    /// Runs per figure.
    pub repeat: u32,
}

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
/// A MAC that is neither the virtual one nor the (pretend) interface's.
const OTHER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const BUCKETS: u32 = 256;

/// Loads `object` (not attached), sets it up as described above, and times each frame
/// (best of five batches of `repeat` runs, to shave off noise from the shared machine).
pub fn bench(object: &XdpObject, repeat: u32) -> Result<BenchFigures, XdpError> {
    let vmac = super::virtual_mac(IpAddr::V4(VIP));
    let mut config = FilterConfig::for_vip(IpAddr::V4(VIP));
    // The kernel runs the repetitions on one buffer, which the program may change: with the
    // interface MAC equal to the virtual one, the rewrite (still done) leaves an accepted
    // frame as it was, so every repetition takes the accept path, not just the first.
    config.interface_mac = Some(vmac);
    let seed = config.seed;
    let mut filter = XdpFilter::load_unattached(object, &config)?;
    filter.set_rules(&[Rule {
        port: 80,
        proto: Proto::Tcp,
        filter: FilterMode::OnAddr,
    }])?;
    let states: Vec<BucketState> = (0..BUCKETS)
        .map(|b| match b % 2 {
            0 => BucketState::Owned,
            _ => BucketState::NotOwned,
        })
        .collect();
    filter.set_owned_buckets(&states)?;
    let client_in = |owned: bool| {
        (1..=250u8)
            .map(|i| Ipv4Addr::new(192, 168, 7, i))
            .find(|c| {
                bucket_for(IpAddr::V4(*c), 0, FilterMode::OnAddr, seed, BUCKETS)
                    .is_some_and(|b| (b % 2 == 0) == owned)
            })
            .ok_or_else(|| XdpError::Invalid("no client address in the wanted bucket".into()))
    };
    let frame = |dst_mac, client: Ipv4Addr| {
        packet::frame(
            dst_mac,
            IpAddr::V4(client),
            40_000,
            IpAddr::V4(VIP),
            80,
            Some(ACK),
        )
    };
    let accept = frame(vmac, client_in(true)?);
    let drop = frame(vmac, client_in(false)?);
    let other = frame(OTHER_MAC, client_in(true)?);
    let mut time = |f: &[u8], want: u32| -> Result<u32, XdpError> {
        let first = filter.test_run(f, 1)?;
        if first.action != want {
            return Err(XdpError::Invalid(format!(
                "benchmark frame got action {}, expected {want}",
                first.action
            )));
        }
        (0..5)
            .map(|_| filter.test_run(f, repeat).map(|r| r.duration_ns))
            .try_fold(u32::MAX, |best, d| d.map(|d| best.min(d)))
    };
    let accept_ns = time(&accept, TestRun::PASS)?;
    let drop_ns = time(&drop, TestRun::DROP)?;
    let non_vip_ns = time(&other, TestRun::PASS)?;
    let empty = sys::load_trivial_xdp("bench_empty")?;
    let baseline_ns = (0..5)
        .map(|_| sys::test_run(empty.as_fd(), &accept, repeat).map(|r| r.duration_ns))
        .try_fold(u32::MAX, |best, d| d.map(|d| best.min(d)))?;
    Ok(BenchFigures {
        accept_ns,
        drop_ns,
        non_vip_ns,
        baseline_ns,
        repeat,
    })
}
