//! The per-packet decision: is it farm traffic, which bucket, and what this node's state for
//! that bucket says about it.

use aya_ebpf::programs::XdpContext;
use farm_ebpf_common::{
    BucketState, FarmConfig, FlowKey, FlowValue, MAX_BUCKETS, bucket_of, client_hash_v4,
    client_hash_v6, config_flags, port_mode, port_slot, proto,
};

use crate::parse::{self, ETH_P_IPV4, ETH_P_IPV6};
use crate::{FARM_BUCKETS, FARM_FLOWS, FARM_PORTS, count_flow_record};

pub enum Verdict {
    /// Not farm traffic: leave it to the stack untouched.
    Pass,
    /// This node serves it.
    Accept { bucket: u32, draining: bool },
    /// Another node serves it.
    Drop(DropReason),
}

pub enum DropReason {
    NotOwned,
    Draining,
    NewOnly,
}

/// The client side of a farm packet, once it is known to be one.
struct Client {
    key: FlowKey,
    /// TCP SYN without ACK: the packet opens a new connection.
    syn: bool,
    fragment: bool,
}

#[inline(always)]
pub fn decide(ctx: &XdpContext, config: &FarmConfig) -> Verdict {
    let count = config.bucket_count;
    if count == 0 || count > MAX_BUCKETS {
        return Verdict::Pass;
    }
    let Some(eth) = parse::eth(ctx) else {
        return Verdict::Pass;
    };
    // Cheapest test first: non-farm traffic leaves after one 6-byte comparison.
    if eth.dst != config.virtual_mac {
        return Verdict::Pass;
    }
    let mut key = FlowKey::default();
    let hash_and_client = match eth.ether_type {
        ETH_P_IPV4 if config.flags & config_flags::VIP4 != 0 => {
            let mut src = [0u8; 4];
            let Some(ip) = parse::ipv4(ctx, eth.l3, config.vip4, &mut src) else {
                return Verdict::Pass;
            };
            if !ip.dst_matches {
                return Verdict::Pass;
            }
            key.addr[..4].copy_from_slice(&src);
            key.family = 4;
            client(ctx, config, &ip, key).map(|(c, on_port)| {
                let port = on_port.then_some(c.key.port);
                (client_hash_v4(src, port, config.seed), c)
            })
        }
        ETH_P_IPV6 if config.flags & config_flags::VIP6 != 0 => {
            let Some(ip) = parse::ipv6(ctx, eth.l3, config.vip6, &mut key.addr) else {
                return Verdict::Pass;
            };
            if !ip.dst_matches {
                return Verdict::Pass;
            }
            key.family = 6;
            let addr = key.addr;
            client(ctx, config, &ip, key).map(|(c, on_port)| {
                let port = on_port.then_some(c.key.port);
                (client_hash_v6(addr, port, config.seed), c)
            })
        }
        _ => None,
    };
    let Some((hash, client)) = hash_and_client else {
        return Verdict::Pass;
    };
    let Some(bucket) = bucket_of(hash, count) else {
        return Verdict::Pass;
    };
    let state = FARM_BUCKETS
        .get(bucket)
        .map_or(BucketState::NotOwned, |s| BucketState::from_raw(*s));
    by_state(state, bucket, &client, config.epoch)
}

/// The transport part: rule lookup, ports, SYN. Returns the client and whether the rule hashes
/// the port too; `None` if the packet is not farm traffic (no rule, truncated header).
#[inline(always)]
fn client(
    ctx: &XdpContext,
    config: &FarmConfig,
    ip: &parse::Ip,
    mut key: FlowKey,
) -> Option<(Client, bool)> {
    key.proto = ip.proto;
    if ip.fragment {
        // Later fragments carry no ports: every fragment of a datagram is bucketed by the
        // client address alone, so that they all reach the same node.
        let wanted = match ip.proto {
            proto::TCP => config_flags::TCP_RULES,
            proto::UDP => config_flags::UDP_RULES,
            _ => return None,
        };
        if config.flags & wanted == 0 {
            return None;
        }
        let c = Client {
            key,
            syn: false,
            fragment: true,
        };
        return Some((c, false));
    }
    let (src_port, dst_port, syn) = match ip.proto {
        proto::TCP => parse::tcp(ctx, ip.l4)?,
        proto::UDP => {
            let (s, d) = parse::udp(ctx, ip.l4)?;
            (s, d, false)
        }
        _ => return None,
    };
    let (word, shift) = port_slot(ip.proto, dst_port)?;
    let mode = (*FARM_PORTS.get(word)? >> shift) & port_mode::MASK;
    if mode == port_mode::NONE {
        return None;
    }
    key.port = src_port;
    let c = Client {
        key,
        syn,
        fragment: false,
    };
    Some((c, mode == port_mode::ON_PORT))
}

/// The verdict for a farm packet in `bucket`, given this node's state for it.
///
/// Flows are TCP connections: remembered when their SYN is accepted, looked up only while a
/// bucket changes hands (draining, new-only). Established traffic of an owned bucket does no
/// flow work at all (a lookup costs ~30 ns, the rest of the decision ~10 ns). UDP has no
/// connection to keep: it moves at once (a draining bucket drops it, a new-only bucket takes
/// it), so no datagram is ever delivered twice.
#[inline(always)]
fn by_state(state: BucketState, bucket: u32, c: &Client, epoch: u32) -> Verdict {
    let accept = Verdict::Accept {
        bucket,
        draining: false,
    };
    let tcp = c.key.proto == proto::TCP;
    match state {
        BucketState::NotOwned => Verdict::Drop(DropReason::NotOwned),
        BucketState::Owned => {
            if c.syn {
                record(&c.key, bucket, epoch);
            }
            accept
        }
        BucketState::Draining => {
            // TCP fragments (rare: TCP avoids fragmentation) stay with the old owner until
            // the drain ends; UDP moves at once, fragments included.
            if tcp && (c.fragment || (!c.syn && touch(&c.key, epoch))) {
                Verdict::Accept {
                    bucket,
                    draining: true,
                }
            } else {
                Verdict::Drop(DropReason::Draining)
            }
        }
        BucketState::NewOnly => {
            if !tcp {
                return accept;
            }
            if c.fragment {
                return Verdict::Drop(DropReason::NewOnly);
            }
            if c.syn {
                record(&c.key, bucket, epoch);
                return accept;
            }
            if touch(&c.key, epoch) {
                accept
            } else {
                // An established connection this node never saw: the old owner's.
                Verdict::Drop(DropReason::NewOnly)
            }
        }
    }
}

/// Marks a known flow as seen in `epoch`; false if the flow is unknown.
#[inline(always)]
fn touch(key: &FlowKey, epoch: u32) -> bool {
    let Some(v) = FARM_FLOWS.get_ptr_mut(key) else {
        return false;
    };
    // SAFETY: `v` points at a live LRU value; a racing writer on another CPU can at worst
    // leave the previous epoch. Skipping equal writes keeps the cache line clean.
    unsafe {
        if (*v).epoch != epoch {
            (*v).epoch = epoch;
        }
    }
    true
}

#[inline(always)]
fn record(key: &FlowKey, bucket: u32, epoch: u32) {
    let value = FlowValue { bucket, epoch };
    count_flow_record(FARM_FLOWS.insert(key, value, 0).is_ok());
}
