//! What the farm XDP program (`farm-ebpf`) and its loader (`hakit::farm::xdp`) must agree on:
//! map names and sizes, the `#[repr(C)]` layouts of map keys and values, and the bucket hash.
//!
//! Every type is plain old data with explicit padding (no `bool`, no implicit holes) because the
//! kernel copies them byte for byte between the two sides. The hash lives here, not in the
//! program, so that userspace computes exactly the bucket the program computes (tests,
//! diagnostics: "which node serves client X?").
#![no_std]

mod hash;
#[cfg(feature = "user")]
mod pod;
mod ports;
mod types;

pub use hash::{DEFAULT_SEED, bucket_of, client_hash_v4, client_hash_v6, murmur3_words};
pub use ports::{PORT_WORDS, port_mode, port_slot};
pub use types::{BucketState, Counters, FarmConfig, FlowKey, FlowValue, config_flags, proto};

/// The XDP function's name in the object (`#[xdp] fn farm_xdp`), also the kernel program name
/// the loader uses to recognise a stale attachment left by an earlier hakit daemon.
pub const PROGRAM_NAME: &str = "farm_xdp";

/// Most buckets a table may have. The model product uses 256; Maglev-style tables want a size
/// well above 100 × the node count, so 4096 leaves room for a few dozen nodes while the
/// per-CPU per-bucket counters stay at 32 KiB per CPU.
pub const MAX_BUCKETS: u32 = 4096;
/// TCP connections remembered (LRU: the least recently used are forgotten first; an owned
/// bucket's connections are recorded at their SYN and not touched again until the bucket
/// moves, so this bounds how many connections opened since a bucket was last moved can
/// survive its next move). 128 Ki entries ≈ 11 MiB of kernel memory.
pub const FLOW_CAPACITY: u32 = 131_072;

/// Map names (the `static`s of the program), as the loader looks them up.
pub mod maps {
    /// `Array<FarmConfig>`, one entry.
    pub const CONFIG: &str = "FARM_CONFIG";
    /// `Array<u64>`, [`crate::PORT_WORDS`] entries: the rules (see [`crate::port_slot`]).
    pub const PORTS: &str = "FARM_PORTS";
    /// `Array<u32>` of [`crate::BucketState`] values, [`crate::MAX_BUCKETS`] entries.
    pub const BUCKETS: &str = "FARM_BUCKETS";
    /// `LruHashMap<FlowKey, FlowValue>`.
    pub const FLOWS: &str = "FARM_FLOWS";
    /// `PerCpuArray<Counters>`, one entry.
    pub const COUNTERS: &str = "FARM_COUNTERS";
    /// `PerCpuArray<u64>`: packets accepted per bucket.
    pub const BUCKET_ACCEPTS: &str = "FARM_BUCKET_HITS";
}
