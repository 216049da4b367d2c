//! hakit farm XDP filter. Every node of a farm receives every frame sent to the farm's virtual
//! MAC; this program keeps the frames of the buckets this node owns (destination MAC rewritten
//! to the interface's, so the stack takes them) and drops the others, which another node keeps.
//! Anything that is not farm traffic is passed untouched.
//!
//! Userspace (`hakit::farm::xdp`) fills the maps; the layouts and the bucket hash come from
//! `farm-ebpf-common`. The hot path never logs, never panics (a panic path would be an
//! infinite loop that the verifier rejects at load time) and makes at most one helper call
//! (the flow map): the config, rule table, bucket states and per-CPU counters are arrays,
//! whose lookups the verifier inlines.
#![no_std]
#![no_main]

mod decide;
mod parse;

use aya_ebpf::bindings::xdp_action::{XDP_DROP, XDP_PASS};
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::{Array, LruHashMap, PerCpuArray};
use aya_ebpf::programs::XdpContext;
use farm_ebpf_common::{
    Counters, FLOW_CAPACITY, FarmConfig, FlowKey, FlowValue, MAX_BUCKETS, PORT_WORDS,
};

use decide::Verdict;

#[map(name = "FARM_CONFIG")]
static FARM_CONFIG: Array<FarmConfig> = Array::with_max_entries(1, 0);

#[map(name = "FARM_PORTS")]
static FARM_PORTS: Array<u64> = Array::with_max_entries(PORT_WORDS, 0);

#[map(name = "FARM_BUCKETS")]
static FARM_BUCKETS: Array<u32> = Array::with_max_entries(MAX_BUCKETS, 0);

#[map(name = "FARM_FLOWS")]
static FARM_FLOWS: LruHashMap<FlowKey, FlowValue> = LruHashMap::with_max_entries(FLOW_CAPACITY, 0);

#[map(name = "FARM_COUNTERS")]
static FARM_COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "FARM_BUCKET_HITS")]
static FARM_BUCKET_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_BUCKETS, 0);

#[xdp]
pub fn farm_xdp(ctx: XdpContext) -> u32 {
    let Some(config) = FARM_CONFIG.get(0) else {
        return XDP_PASS;
    };
    let verdict = decide::decide(&ctx, config);
    let counters = FARM_COUNTERS.get_ptr_mut(0);
    match verdict {
        Verdict::Pass => {
            bump(counters, |c| c.passed += 1);
            XDP_PASS
        }
        Verdict::Accept { bucket, draining } => {
            parse::set_dst_mac(&ctx, config.interface_mac);
            bump(counters, |c| {
                c.accepted += 1;
                if draining {
                    c.accepted_draining += 1;
                }
            });
            if let Some(hits) = FARM_BUCKET_HITS.get_ptr_mut(bucket) {
                // SAFETY: a per-CPU array slot of this CPU; XDP runs with migration disabled,
                // so nothing else writes it concurrently.
                unsafe { *hits += 1 };
            }
            XDP_PASS
        }
        Verdict::Drop(reason) => {
            bump(counters, |c| {
                c.dropped += 1;
                match reason {
                    decide::DropReason::NotOwned => {}
                    decide::DropReason::Draining => c.dropped_draining += 1,
                    decide::DropReason::NewOnly => c.dropped_new_only += 1,
                }
            });
            XDP_DROP
        }
    }
}

/// Applies `f` to this CPU's counters, if the slot exists.
#[inline(always)]
fn bump(counters: Option<*mut Counters>, f: impl FnOnce(&mut Counters)) {
    if let Some(c) = counters {
        // SAFETY: this CPU's slot of a per-CPU array (see above): exclusive while we run.
        f(unsafe { &mut *c });
    }
}

/// Flow bookkeeping counters, bumped from `decide`.
#[inline(always)]
pub(crate) fn count_flow_record(ok: bool) {
    bump(FARM_COUNTERS.get_ptr_mut(0), |c| {
        if ok {
            c.flows_recorded += 1;
        } else {
            c.flow_record_failures += 1;
        }
    });
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable by construction; if a panic path ever survives optimisation, this infinite
    // loop makes the verifier refuse the program at load time instead of misbehaving.
    loop {}
}
