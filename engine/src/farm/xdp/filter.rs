//! [`XdpFilter`]: one loaded farm program, its maps, and (usually) its attachment.

use std::collections::HashSet;
use std::os::fd::AsFd;

use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData, PerCpuArray};
use aya::programs::Xdp;
use farm_ebpf_common::{
    BucketState, Counters, FarmConfig, FlowKey, FlowValue, MAX_BUCKETS, PORT_WORDS, PROGRAM_NAME,
    config_flags, maps, port_mode, port_slot,
};

use super::attach::{self, AttachMode, Attachment};
use super::sys::{self, TestRun};
use super::{FilterConfig, Rule, XdpError, XdpObject, netlink};

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver, before any socket buffer is allocated (the fast path).
    Native,
    /// In the stack (SKB mode): for drivers without XDP support; same decisions, slower.
    Generic,
}

/// A loaded farm XDP program. Dropping it detaches it; until [`set_owned_buckets`] gives it a
/// table it passes every frame untouched (frames to the virtual MAC are then discarded by the
/// stack as addressed to another host: the node serves nothing, which is the safe default).
///
/// [`set_owned_buckets`]: XdpFilter::set_owned_buckets
pub struct XdpFilter {
    // Maps first: fields drop in order, and the program (in `ebpf`) should go last.
    config_map: Array<MapData, FarmConfig>,
    ports_map: Array<MapData, u64>,
    buckets_map: Array<MapData, u32>,
    flows_map: HashMap<MapData, FlowKey, FlowValue>,
    counters_map: PerCpuArray<MapData, Counters>,
    hits_map: PerCpuArray<MapData, u64>,
    /// What the maps hold, so updates write only what changed.
    config: FarmConfig,
    rules: Vec<Rule>,
    ports: Vec<u64>,
    buckets: Vec<BucketState>,
    attachment: Option<Attachment>,
    ebpf: Ebpf,
}

impl std::fmt::Debug for XdpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpFilter")
            .field("config", &self.config)
            .field("rules", &self.rules)
            .field("buckets", &self.buckets.len())
            .field("attachment", &self.attachment)
            .finish_non_exhaustive()
    }
}

impl XdpFilter {
    /// Loads the program, installs `config`, and attaches it to `ifname` in
    /// [`AttachMode::Auto`]: native mode, or generic mode if the driver refuses or is veth
    /// (see [`mode`](Self::mode)). An XDP program left on the interface by an earlier hakit
    /// daemon is detached first; anybody else's is not touched ([`XdpError::Busy`]).
    pub fn load(object: &XdpObject, ifname: &str, config: &FilterConfig) -> Result<Self, XdpError> {
        Self::load_in_mode(object, ifname, config, AttachMode::Auto)
    }

    /// [`load`](Self::load) with an explicit attach mode.
    pub fn load_in_mode(
        object: &XdpObject,
        ifname: &str,
        config: &FilterConfig,
        mode: AttachMode,
    ) -> Result<Self, XdpError> {
        let ifindex = nix::net::if_::if_nametoindex(ifname)
            .map_err(|_| XdpError::UnknownInterface(ifname.into()))?;
        let link = netlink::link_state(ifindex)?;
        let mac = config.interface_mac.or(link.mac).ok_or_else(|| {
            XdpError::Invalid(format!("{ifname} has no MAC address: not an Ethernet link"))
        })?;
        let mut filter = Self::load_with_mac(object, config, mac)?;
        let prog = filter.program()?;
        filter.attachment = Some(attach::attach(prog, ifname, ifindex, &link, mode)?);
        Ok(filter)
    }

    /// Loads the program and installs `config` without attaching it anywhere: for
    /// [`test_run`](Self::test_run) and benchmarks. `config.interface_mac` must be set.
    pub fn load_unattached(object: &XdpObject, config: &FilterConfig) -> Result<Self, XdpError> {
        let mac = config.interface_mac.ok_or_else(|| {
            XdpError::Invalid("interface_mac is required without an interface".into())
        })?;
        Self::load_with_mac(object, config, mac)
    }

    fn load_with_mac(
        object: &XdpObject,
        config: &FilterConfig,
        interface_mac: [u8; 6],
    ) -> Result<Self, XdpError> {
        let raw = config.raw(interface_mac)?;
        let bytes = object.bytes()?;
        raise_memlock();
        let mut ebpf = Ebpf::load(&bytes).map_err(|e| XdpError::Object(Box::new(e)))?;
        let mut filter = Self {
            config_map: take(&mut ebpf, maps::CONFIG)?,
            ports_map: take(&mut ebpf, maps::PORTS)?,
            buckets_map: take(&mut ebpf, maps::BUCKETS)?,
            flows_map: take(&mut ebpf, maps::FLOWS)?,
            counters_map: take(&mut ebpf, maps::COUNTERS)?,
            hits_map: take(&mut ebpf, maps::BUCKET_ACCEPTS)?,
            config: raw,
            rules: Vec::new(),
            ports: vec![0; PORT_WORDS as usize],
            buckets: Vec::new(),
            attachment: None,
            ebpf,
        };
        filter.program()?.load().map_err(XdpError::program)?;
        filter.write_config()?;
        Ok(filter)
    }

    pub(super) fn program(&mut self) -> Result<&mut Xdp, XdpError> {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .ok_or(XdpError::NoProgram(PROGRAM_NAME))
    }

    /// The kernel's id of the loaded program (as `bpftool prog` shows it).
    pub fn program_id(&mut self) -> Result<u32, XdpError> {
        let info = self.program()?.info().map_err(XdpError::program)?;
        Ok(info.id())
    }

    /// Native or generic; `None` when not attached.
    pub fn mode(&self) -> Option<XdpMode> {
        self.attachment.as_ref().map(|a| a.mode)
    }

    /// The id of a stale hakit program this filter detached when it attached, if any.
    pub fn replaced_stale(&self) -> Option<u32> {
        self.attachment.as_ref().and_then(|a| a.replaced)
    }

    /// Changes the VIP, MACs or seed; the bucket states and rules stay.
    pub fn set_config(&mut self, config: &FilterConfig) -> Result<(), XdpError> {
        let mac = config.interface_mac.unwrap_or(self.config.interface_mac);
        let mut raw = config.raw(mac)?;
        raw.bucket_count = self.config.bucket_count;
        raw.epoch = self.config.epoch;
        raw.flags |= self.config.flags & (config_flags::TCP_RULES | config_flags::UDP_RULES);
        self.config = raw;
        self.write_config()
    }

    /// Replaces the rules. Port 0 stands for every port of its protocol (a rule for a
    /// specific port wins over it); a (port, proto) may appear only once. Only the words of the
    /// rule table that change are written, each atomically: a packet racing the update sees,
    /// for its port, either the old rule or the new one.
    pub fn set_rules(&mut self, rules: &[Rule]) -> Result<(), XdpError> {
        let mut seen = HashSet::new();
        if let Some(dup) = rules.iter().find(|r| !seen.insert((r.port, r.proto))) {
            return Err(XdpError::Invalid(format!(
                "two rules for port {} {:?}",
                dup.port, dup.proto
            )));
        }
        let table = port_table(rules);
        for (i, (new, old)) in (0u32..).zip(table.iter().zip(&self.ports)) {
            if new != old {
                self.ports_map
                    .set(i, new, 0)
                    .map_err(XdpError::map(maps::PORTS))?;
            }
        }
        self.ports = table;
        let proto_flags = rules.iter().fold(0, |f, r| f | r.proto_flag());
        self.config.flags &= !(config_flags::TCP_RULES | config_flags::UDP_RULES);
        self.config.flags |= proto_flags;
        self.rules = rules.to_vec();
        self.write_config()
    }

    /// The rules installed last.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Installs this node's state for every bucket: `states.len()` is the table size
    /// (1..=[`MAX_BUCKETS`]; every node must use the same). Only changed entries are written.
    /// A new table size changes every client's bucket, so it is written before the size.
    pub fn set_owned_buckets(&mut self, states: &[BucketState]) -> Result<(), XdpError> {
        let count = u32::try_from(states.len())
            .ok()
            .filter(|n| (1..=MAX_BUCKETS).contains(n))
            .ok_or_else(|| {
                XdpError::Invalid(format!(
                    "{} buckets: the table must have 1 to {MAX_BUCKETS}",
                    states.len()
                ))
            })?;
        for (i, state) in (0u32..).zip(states) {
            if self.buckets.get(i as usize) != Some(state) {
                self.buckets_map
                    .set(i, *state as u32, 0)
                    .map_err(XdpError::map(maps::BUCKETS))?;
            }
        }
        self.buckets = states.to_vec();
        if self.config.bucket_count != count {
            self.config.bucket_count = count;
            self.write_config()?;
        }
        Ok(())
    }

    /// The bucket states installed last (empty before the first table).
    pub fn owned_buckets(&self) -> &[BucketState] {
        &self.buckets
    }

    /// Packet counters since load, summed over the CPUs.
    pub fn counters(&self) -> Result<Counters, XdpError> {
        let per_cpu = self
            .counters_map
            .get(&0, 0)
            .map_err(XdpError::map(maps::COUNTERS))?;
        Ok(per_cpu.iter().fold(Counters::default(), |a, c| a.add(*c)))
    }

    /// Packets accepted per bucket since load (summed over the CPUs), for the table in use.
    pub fn bucket_accepts(&self) -> Result<Vec<u64>, XdpError> {
        (0..self.config.bucket_count)
            .map(|b| {
                let v = self
                    .hits_map
                    .get(&b, 0)
                    .map_err(XdpError::map(maps::BUCKET_ACCEPTS))?;
                Ok(v.iter().sum())
            })
            .collect()
    }

    /// Per bucket, the remembered TCP connections that were recorded (SYN) or seen while
    /// their bucket was draining or new-only since the previous call; then starts a new
    /// period. Call it periodically on a draining bucket: once it reports 0 for a period
    /// long enough (a few keepalive intervals), the old connections are gone and the bucket
    /// can be released. Walks the whole flow map (two syscalls per flow): seconds apart, not
    /// per packet.
    pub fn flow_activity(&mut self) -> Result<Vec<u32>, XdpError> {
        let epoch = self.config.epoch;
        let mut counts = vec![0u32; self.config.bucket_count as usize];
        for entry in self.flows_map.iter() {
            let Ok((_, flow)) = entry else {
                // An entry evicted while we walk: skip it.
                continue;
            };
            if flow.epoch == epoch
                && let Some(c) = counts.get_mut(flow.bucket as usize)
            {
                *c += 1;
            }
        }
        self.config.epoch = epoch.wrapping_add(1);
        self.write_config()?;
        Ok(counts)
    }

    /// Runs the program on `packet` (≥ 14 bytes) `repeat` times with `BPF_PROG_TEST_RUN`,
    /// with the maps as they are: what the filter would do with that frame, and how fast.
    pub fn test_run(&mut self, packet: &[u8], repeat: u32) -> Result<TestRun, XdpError> {
        let prog = self.program()?;
        let fd = prog.fd().map_err(XdpError::program)?;
        sys::test_run(fd.as_fd(), packet, repeat)
    }

    /// Detaches the program (dropping the filter does the same, ignoring errors).
    pub fn detach(mut self) -> Result<(), XdpError> {
        self.detach_inner()
    }

    fn detach_inner(&mut self) -> Result<(), XdpError> {
        let Some(a) = self.attachment.take() else {
            return Ok(());
        };
        let prog = self.program()?;
        prog.detach(a.link).map_err(XdpError::program)
    }

    fn write_config(&mut self) -> Result<(), XdpError> {
        self.config_map
            .set(0, self.config, 0)
            .map_err(XdpError::map(maps::CONFIG))
    }
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        // Unloading the program would detach it anyway; this makes the order explicit.
        let _ = self.detach_inner();
    }
}

/// The `FARM_PORTS` words for `rules`: wildcards first, specific ports over them.
fn port_table(rules: &[Rule]) -> Vec<u64> {
    let mut table = vec![0u64; PORT_WORDS as usize];
    let mut set = |r: &Rule, port: u16| {
        if let Some((word, shift)) = port_slot(r.ip_proto(), port)
            && let Some(w) = table.get_mut(word as usize)
        {
            *w = (*w & !(port_mode::MASK << shift)) | (r.mode() << shift);
        }
    };
    for r in rules.iter().filter(|r| r.port == 0) {
        for port in 0..=u16::MAX {
            set(r, port);
        }
    }
    for r in rules.iter().filter(|r| r.port != 0) {
        set(r, r.port);
    }
    table
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, XdpError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or_else(|| {
        XdpError::map(name)(aya::maps::MapError::InvalidName { name: name.into() })
    })?;
    T::try_from(map).map_err(XdpError::map(name))
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. Newer ones (and the ones this runs
/// on) use the memory cgroup, and the call fails without CAP_SYS_RESOURCE: harmless, ignored.
fn raise_memlock() {
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        nix::sys::resource::RLIM_INFINITY,
        nix::sys::resource::RLIM_INFINITY,
    );
}

// The daemon keeps the filter in async tasks.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<XdpFilter>();
};
