//! Map keys and values. Multi-byte addresses are kept as byte arrays in network order (as they
//! sit in the packet); ports are host-order numbers.

/// The filter's configuration (`FARM_CONFIG[0]`). Until `bucket_count` is non-zero the program
/// passes everything: a loaded but unconfigured filter is transparent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FarmConfig {
    /// IPv4 VIP, network order; used when [`config_flags::VIP4`] is set.
    pub vip4: [u8; 4],
    /// IPv6 VIP, network order; used when [`config_flags::VIP6`] is set.
    pub vip6: [u8; 16],
    /// Destination MAC of farm traffic (`5A:FE` + VIP bytes): only frames sent to it are
    /// filtered; a frame addressed to one node's own MAC was meant for that node alone.
    pub virtual_mac: [u8; 6],
    /// Written as the destination MAC of accepted frames, so the stack takes them as its own.
    pub interface_mac: [u8; 6],
    /// [`config_flags`] bits.
    pub flags: u32,
    /// Buckets in use (`1..=MAX_BUCKETS`); 0 = not configured.
    pub bucket_count: u32,
    /// Hash seed; every node of a farm must use the same.
    pub seed: u32,
    /// Activity epoch, advanced by userspace: flows seen are stamped with it (cheaper than a
    /// clock helper call), so userspace can tell which flows are still active.
    pub epoch: u32,
}

/// Bits of [`FarmConfig::flags`].
pub mod config_flags {
    /// `vip4` is set.
    pub const VIP4: u32 = 1;
    /// `vip6` is set.
    pub const VIP6: u32 = 1 << 1;
    /// Some rule has proto TCP (IP fragments of TCP to the VIP are then farm traffic: they
    /// carry no port to look up).
    pub const TCP_RULES: u32 = 1 << 2;
    /// Some rule has proto UDP.
    pub const UDP_RULES: u32 = 1 << 3;
}

/// IP protocol numbers the filter knows.
pub mod proto {
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// What this node does with one bucket (`FARM_BUCKETS[bucket]`, stored as `u32`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BucketState {
    /// Another node serves it: drop.
    #[default]
    NotOwned = 0,
    /// This node serves it: accept everything, remember the TCP connections it opens.
    Owned = 1,
    /// It moved away from this node: keep serving the TCP connections this node knows; drop
    /// new ones (SYN), unknown ones and UDP, which are the new owner's.
    Draining = 2,
    /// It moved to this node from a live one: accept new TCP connections (SYN), the ones known
    /// here, and UDP; drop other packets of unknown TCP connections (the old owner's).
    NewOnly = 3,
}

impl BucketState {
    /// The state stored as `raw`; unknown values read as `NotOwned`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Owned,
            2 => Self::Draining,
            3 => Self::NewOnly,
            _ => Self::NotOwned,
        }
    }
}

/// Key of `FARM_FLOWS`: one client TCP connection as the server side sees it (the VIP and service port
/// are the same for all flows of a filter, so they are left out).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address, network order: IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
    /// Client (source) port.
    pub port: u16,
    /// [`proto`] value.
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
}

/// Value of `FARM_FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    /// The bucket the flow hashed to (userspace counts the flows still active in a draining
    /// bucket to know when the drain is over).
    pub bucket: u32,
    /// [`FarmConfig::epoch`] when the flow was recorded or last seen while its bucket was
    /// changing hands.
    pub epoch: u32,
}

/// Per-CPU packet counters (`FARM_COUNTERS[0]`). `accepted + dropped` is the farm traffic
/// (frames to the virtual MAC and the VIP matching a rule); `passed` is everything else.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Farm packets this node took (destination MAC rewritten, passed up).
    pub accepted: u64,
    /// Farm packets left to other nodes.
    pub dropped: u64,
    /// Not farm traffic (other MACs, other addresses, ARP, non-matching ports, malformed).
    pub passed: u64,
    /// Of `accepted`: taken only because a draining bucket knew the flow.
    pub accepted_draining: u64,
    /// Of `dropped`: new or unknown flows (and all UDP) refused by a draining bucket.
    pub dropped_draining: u64,
    /// Of `dropped`: packets of unknown TCP flows refused by a new-only bucket (the old
    /// owner's).
    pub dropped_new_only: u64,
    /// TCP connections added to `FARM_FLOWS` (accepted SYNs).
    pub flows_recorded: u64,
    /// Flow insertions the kernel refused (should stay 0: the map is LRU).
    pub flow_record_failures: u64,
}

impl Counters {
    /// Field-wise sum (for adding up the per-CPU copies).
    pub const fn add(self, o: Self) -> Self {
        Self {
            accepted: self.accepted.wrapping_add(o.accepted),
            dropped: self.dropped.wrapping_add(o.dropped),
            passed: self.passed.wrapping_add(o.passed),
            accepted_draining: self.accepted_draining.wrapping_add(o.accepted_draining),
            dropped_draining: self.dropped_draining.wrapping_add(o.dropped_draining),
            dropped_new_only: self.dropped_new_only.wrapping_add(o.dropped_new_only),
            flows_recorded: self.flows_recorded.wrapping_add(o.flows_recorded),
            flow_record_failures: self
                .flow_record_failures
                .wrapping_add(o.flow_record_failures),
        }
    }
}

// The layouts the kernel sees: no implicit padding anywhere.
const _: () = assert!(size_of::<FarmConfig>() == 48);
const _: () = assert!(size_of::<FlowKey>() == 20);
const _: () = assert!(size_of::<FlowValue>() == 8);
const _: () = assert!(size_of::<Counters>() == 64);
