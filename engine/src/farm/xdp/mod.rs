//! The farm's XDP data plane, from userspace: load the `farm-ebpf` object, attach it to the LAN
//! interface, fill its maps (configuration, rules, bucket states), read its counters.
//!
//! Every node receives every frame sent to the farm's virtual MAC; the program keeps the
//! buckets this node owns and drops the rest (see `farm-ebpf/src/main.rs`). The bucket of a
//! client is [`bucket_for`] (the same function the program runs). Which buckets this node owns
//! is decided elsewhere (the membership); this module only installs the decision.
//!
//! The object is not built with the engine (it needs bpf-linker): `cargo xtask build-ebpf`
//! produces it, and [`XdpObject::locate`] finds it. Without it the engine still builds and
//! runs mirror modules; only loading a filter fails, with [`XdpError::ObjectMissing`].
//!
//! Use, from the membership side:
//! 1. `XdpFilter::load(&XdpObject::locate(), lan_if, &FilterConfig::for_vip(vip))` (report
//!    [`XdpFilter::mode`]); `set_rules` from the `<rule>` elements. Until the first table the
//!    filter passes everything, and the stack ignores frames to the virtual MAC: the node
//!    serves nothing.
//! 2. `set_owned_buckets(&table)` with one [`BucketState`] per bucket (the same table size on
//!    every node), on every agreed view.
//! 3. A bucket moving between two live nodes: the old owner marks it `Draining`, the new one
//!    `NewOnly`; the old owner calls [`XdpFilter::flow_activity`] every few seconds and, when
//!    the bucket shows no active connection for long enough, both switch to `NotOwned` /
//!    `Owned`. A bucket whose owner died goes straight to `Owned`.
//! 4. [`XdpFilter::counters`] and [`XdpFilter::bucket_accepts`] for metrics; drop or
//!    [`XdpFilter::detach`] on stop.

mod attach;
mod bench;
mod config;
mod error;
mod filter;
mod netlink;
mod object;
mod packet;
mod sys;

pub use attach::AttachMode;
pub use bench::{BenchFigures, bench};
pub use config::{FilterConfig, FilterMode, Proto, Rule, bucket_for, virtual_mac};
pub use error::XdpError;
pub use farm_ebpf_common::{BucketState, Counters, MAX_BUCKETS};
pub use filter::{XdpFilter, XdpMode};
pub use object::{OBJECT_ENV, XdpObject};
pub use sys::TestRun;

#[cfg(test)]
mod tests;
