//! Owners for a view: each bucket's fixed ranking of the configured hosts, then an exact
//! rebalance.
//!
//! Plain Maglev over the view's members moves more than a departed member's buckets: the
//! others' claiming turns shift and they swap buckets among themselves (measured at 256
//! buckets: up to 13 buckets beyond 1.1 × the departed share with 8 hosts, 23 with 16).
//! Here every bucket instead ranks the configured hosts, and its owner is the first ranked
//! host in the view. Removing a host then moves only its buckets and adding one only
//! the buckets it gains: no bucket changes hands between two hosts that stay, except for
//! the rebalance below.
//!
//! The rankings are built level by level so that views are balanced as well:
//! - level 1: all buckets are shared between all hosts by the Maglev fill with exact quotas;
//! - the buckets whose first choices form the set S (in any order) are the *group* S: exactly
//!   the buckets that view `hosts \ S` must hand out again. Their next choice is a Maglev fill
//!   of the group between the hosts outside S, each receiving what view `hosts \ S` still owes
//!   it: its exact quota there minus what the groups strictly inside S already gave it.
//!
//! A group's choices depend only on S, never on the view being computed: that is what makes
//! the rankings fixed. They balance well only while few hosts are absent, though: a host's
//! buckets in a view include its buckets in every larger view, and once many hosts are absent
//! these unions exceed its quota. So rankings stop after [`RANKED_LEVELS`] choices; buckets
//! whose ranked choices are all absent, and any surplus left by rounding, are then handed out
//! by [`rebalance`] to reach the exact quotas. The full farm and single removals from it need
//! no rebalance (exactly the departed share moves); a second removal moves at most 7 buckets
//! more than the share (measured, 2..16 hosts). The level count
//! was chosen by measurement (table tests, every view): with 3, removing a member from any
//! view moves at most 1.1 × its share + 3 buckets for up to 8 hosts, + 15 for 16; deeper
//! rankings balance worse and so rebalance more (16 hosts: + 28 with 4 levels, + 49 unbounded).

use super::maglev::{self, Permutation};
use super::quota::apportion;
use std::collections::BTreeMap;

/// How many choices each bucket's ranking holds.
pub const RANKED_LEVELS: usize = 3;

/// The configured hosts with power > 0, sorted by name, at most 64 (one bit each in a set).
pub(super) struct Hosts<'a> {
    pub powers: Vec<u64>,
    pub permutations: &'a [Permutation],
}

/// A set of host indices, bit i for host i.
type HostSet = u64;

struct Group {
    absent: HostSet,
    /// How many buckets of the group each host was given.
    given: Vec<usize>,
}

/// Per bucket, the index of its owning host when the hosts in `present` are up; `None` for
/// every bucket when `present` is empty.
pub(super) fn owners(hosts: &Hosts<'_>, present: HostSet, buckets: usize) -> Vec<Option<usize>> {
    let mut owner = vec![None; buckets];
    if present == 0 {
        return owner;
    }
    let mut done: Vec<Group> = Vec::new();
    let mut level: BTreeMap<HostSet, Vec<usize>> = BTreeMap::from([(0, (0..buckets).collect())]);
    for _ in 0..RANKED_LEVELS {
        let mut next: BTreeMap<HostSet, Vec<usize>> = BTreeMap::new();
        for (absent, group) in level {
            let quotas = owed(hosts, absent, group.len(), &done, buckets);
            let mut given = vec![0; hosts.powers.len()];
            for (bucket, host) in maglev::fill(&group, hosts.permutations, &quotas) {
                given[host] += 1;
                if present & (1 << host) != 0 {
                    owner[bucket] = Some(host);
                } else {
                    next.entry(absent | (1 << host)).or_default().push(bucket);
                }
            }
            done.push(Group { absent, given });
        }
        level = next;
    }
    rebalance(hosts, present, &mut owner, buckets);
    owner
}

/// What view `hosts \ absent` still owes each host, scaled to the `size` buckets of group
/// `absent`: its exact quota in that view minus what the groups strictly inside `absent` gave
/// it. The debts sum to `size` unless rounding made some host overshoot; then the group is
/// shared in proportion to the positive debts.
fn owed(
    hosts: &Hosts<'_>,
    absent: HostSet,
    size: usize,
    done: &[Group],
    buckets: usize,
) -> Vec<usize> {
    let weights = powers_of(hosts, !absent);
    let mut debts: Vec<u64> = apportion(&weights, buckets)
        .into_iter()
        .map(|t| t as u64)
        .collect();
    for earlier in done
        .iter()
        .filter(|g| g.absent & !absent == 0 && g.absent != absent)
    {
        for (debt, &given) in debts.iter_mut().zip(&earlier.given) {
            *debt = debt.saturating_sub(given as u64);
        }
    }
    apportion(&debts, size)
}

/// Brings every present host to its exact quota: unowned buckets and the least preferred
/// buckets of hosts above their quota go, by the Maglev fill, to the hosts below it. Views
/// missing fewer than [`RANKED_LEVELS`] hosts are exact already and nothing moves.
fn rebalance(hosts: &Hosts<'_>, present: HostSet, owner: &mut [Option<usize>], buckets: usize) {
    let target = apportion(&powers_of(hosts, present), buckets);
    let mut held: Vec<Vec<usize>> = vec![Vec::new(); target.len()];
    let mut pool = Vec::new();
    for (bucket, o) in owner.iter().enumerate() {
        match o {
            Some(host) => held[*host].push(bucket),
            None => pool.push(bucket),
        }
    }
    for (host, mine) in held.iter_mut().enumerate() {
        if mine.len() > target[host] {
            mine.sort_by_key(|&b| std::cmp::Reverse(hosts.permutations[host].position(b)));
            pool.extend(mine.drain(..mine.len() - target[host]));
        }
    }
    let quotas: Vec<usize> = held
        .iter()
        .zip(&target)
        .map(|(mine, &t)| t.saturating_sub(mine.len()))
        .collect();
    pool.sort_unstable();
    for (bucket, host) in maglev::fill(&pool, hosts.permutations, &quotas) {
        owner[bucket] = Some(host);
    }
}

/// The hosts' powers, 0 for hosts outside `set`.
fn powers_of(hosts: &Hosts<'_>, set: HostSet) -> Vec<u64> {
    (0..hosts.powers.len())
        .map(|i| {
            if set & (1 << i) != 0 {
                hosts.powers[i]
            } else {
                0
            }
        })
        .collect()
}
