//! The bucket → owner table: which farm node accepts the packets of which clients.
//!
//! The XDP filter hashes a client's address into one of N buckets and accepts the packet only
//! if this node owns the bucket. Every node computes the table on its own, from the agreed view
//! and the configured `power` of each host, so the computation must be a pure function of that
//! input: the same members in any order give the same table on every node, every architecture
//! and every version of hakit that keeps [`PERMUTATION_CONTEXT`].
//!
//! # How the table is filled
//!
//! Each configured host with power > 0 has a Maglev preference order over the buckets, a
//! permutation derived from its name only (`table/maglev.rs`); hosts take turns claiming
//! their next preferred free bucket. Balance is exact rather than statistical: each host's
//! number of buckets is fixed first by apportioning N to the powers (largest remainder,
//! `table/quota.rs`), and a host stops claiming once it holds its quota, so every member ends
//! within one bucket of its exact weighted share, in every view.
//!
//! A view that lacks some configured hosts is not filled from scratch (plain Maglev then
//! swaps buckets between members that stay): every bucket has a fixed ranking of the
//! configured hosts, and its owner is the first one present (`table/ranking.rs`). Removing a
//! member from the full farm moves exactly its buckets, and adding it back exactly the
//! buckets it regains; from views already missing hosts a few more move, to keep every member
//! within one bucket of its share (measured figures in `table/ranking.rs` and the tests). The
//! table therefore depends on the configured hosts as well as on the view, like it depends on
//! their powers: every node must have the same farm group (the view id covers it).
//!
//! # Size
//!
//! N is a power of two between [`MIN_BUCKETS`] (the model product's 256) and [`MAX_BUCKETS`]:
//! a power of two lets the data plane reduce its hash with a mask, and makes every odd step a
//! full-cycle permutation. One bucket is 1/N of the traffic: 256 suits the 2..16 nodes of a
//! typical farm (16 nodes: 16 buckets each, ±1); more buckets give finer balance for larger
//! farms at the cost of a larger map. Hashing a client address to a bucket is the data
//! plane's business; this module only maps buckets to owners.

mod maglev;
mod moves;
mod quota;
mod ranking;
#[cfg(test)]
mod tests;

pub use maglev::PERMUTATION_CONTEXT;
pub use moves::{BucketMove, Moves, diff};

use std::fmt;

/// The model product's bitmap size, and the default.
pub const DEFAULT_BUCKETS: usize = 256;
pub const MIN_BUCKETS: usize = 256;
pub const MAX_BUCKETS: usize = 1 << 16;
/// Hosts with power > 0 in one farm group (one bit each in the ranking's host sets).
pub const MAX_POWERED_HOSTS: usize = 64;

/// A host of the farm group as configured: `<host name="node1" power="2"/>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub name: String,
    /// Relative weight; 0 means the host is a member but receives no traffic.
    pub power: u32,
}

impl Member {
    pub fn new(name: impl Into<String>, power: u32) -> Member {
        Member {
            name: name.into(),
            power,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("bucket count {0} is not a power of two between {MIN_BUCKETS} and {MAX_BUCKETS}")]
    BucketCount(usize),
    #[error("host {0:?} appears twice in the farm group")]
    DuplicateMember(String),
    #[error("a farm host has an empty name")]
    EmptyName,
    #[error("{0} is in the view but not in the farm group")]
    UnknownMember(String),
    #[error("{0} hosts have power > 0; a farm group may have at most {MAX_POWERED_HOSTS}")]
    TooManyHosts(usize),
    #[error("cannot compare tables of {old} and {new} buckets")]
    SizeMismatch { old: usize, new: usize },
}

/// Why a table has no owner at all: every packet to the virtual IP is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyReason {
    /// The view has no member.
    NoMembers,
    /// Every member of the view has power 0.
    NoPower,
}

impl fmt::Display for EmptyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmptyReason::NoMembers => "the view has no member: no node accepts traffic",
            EmptyReason::NoPower => "every member of the view has power 0: no node accepts traffic",
        })
    }
}

/// Whether the table spreads traffic at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// Every bucket has an owner; `owners` members hold at least one.
    Serving {
        owners: usize,
    },
    Empty(EmptyReason),
}

/// One member's share, displayed as "85/256".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Load {
    pub owned: usize,
    pub total: usize,
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owned, self.total)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketTable {
    /// Sorted by name; power-0 members included (they show "0/256").
    members: Vec<Member>,
    /// Per bucket, an index into `members`; `None` only in an empty table.
    owners: Vec<Option<u32>>,
}

impl BucketTable {
    /// The table when all these members (any order) are in the view.
    pub fn build(
        members: impl IntoIterator<Item = Member>,
        buckets: usize,
    ) -> Result<BucketTable, TableError> {
        let hosts: Vec<Member> = members.into_iter().collect();
        let view: Vec<&str> = hosts.iter().map(|m| m.name.as_str()).collect();
        Self::for_view(&hosts, view, buckets)
    }

    /// The table for the members of `view` (any order), drawn from the configured farm group
    /// `hosts` (any order), which gives their powers and ranks the buckets.
    pub fn for_view<'a>(
        hosts: &[Member],
        view: impl IntoIterator<Item = &'a str>,
        buckets: usize,
    ) -> Result<BucketTable, TableError> {
        check_bucket_count(buckets)?;
        let mut hosts = hosts.to_vec();
        hosts.sort();
        for pair in hosts.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(TableError::DuplicateMember(pair[0].name.clone()));
            }
        }
        if hosts.iter().any(|m| m.name.is_empty()) {
            return Err(TableError::EmptyName);
        }
        let mut members = Vec::new();
        for name in view {
            match hosts.iter().find(|m| m.name == name) {
                Some(m) if !members.contains(m) => members.push(m.clone()),
                Some(_) => return Err(TableError::DuplicateMember(name.to_string())),
                None => return Err(TableError::UnknownMember(name.to_string())),
            }
        }
        members.sort();
        let powered: Vec<&Member> = hosts.iter().filter(|m| m.power > 0).collect();
        if powered.len() > MAX_POWERED_HOSTS {
            return Err(TableError::TooManyHosts(powered.len()));
        }
        let permutations: Vec<maglev::Permutation> = powered
            .iter()
            .map(|m| maglev::Permutation::of(&m.name, buckets))
            .collect();
        let present = powered
            .iter()
            .enumerate()
            .filter(|(_, m)| members.contains(m))
            .fold(0u64, |set, (i, _)| set | (1 << i));
        let ranked = ranking::Hosts {
            powers: powered.iter().map(|m| u64::from(m.power)).collect(),
            permutations: &permutations,
        };
        let owners = ranking::owners(&ranked, present, buckets)
            .into_iter()
            .map(|host| {
                let name = &powered[host?].name;
                members
                    .iter()
                    .position(|m| &m.name == name)
                    .map(|i| i as u32)
            })
            .collect();
        Ok(BucketTable { members, owners })
    }

    /// A table in which nobody owns anything: what a node enforces before its first view.
    pub fn empty(buckets: usize) -> Result<BucketTable, TableError> {
        Self::build([], buckets)
    }

    pub fn bucket_count(&self) -> usize {
        self.owners.len()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn owner(&self, bucket: usize) -> Option<&str> {
        let index = self.owners.get(bucket).copied().flatten()?;
        self.members.get(index as usize).map(|m| m.name.as_str())
    }

    /// The buckets `name` owns, in increasing order (what its XDP filter accepts).
    pub fn buckets_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        (0..self.owners.len()).filter(move |&b| self.owner(b) == Some(name))
    }

    /// `name`'s share; a name outside the table owns nothing.
    pub fn load(&self, name: &str) -> Load {
        Load {
            owned: self.buckets_of(name).count(),
            total: self.bucket_count(),
        }
    }

    pub fn status(&self) -> TableStatus {
        if self.members.is_empty() {
            TableStatus::Empty(EmptyReason::NoMembers)
        } else if self.members.iter().all(|m| m.power == 0) {
            TableStatus::Empty(EmptyReason::NoPower)
        } else {
            TableStatus::Serving {
                owners: self.members.iter().filter(|m| m.power > 0).count(),
            }
        }
    }

    /// "node1 85/256, node2 86/256, node3 0/256" (every member, by name).
    pub fn describe_loads(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{} {}", m.name, self.load(&m.name)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn check_bucket_count(buckets: usize) -> Result<(), TableError> {
    if buckets.is_power_of_two() && (MIN_BUCKETS..=MAX_BUCKETS).contains(&buckets) {
        Ok(())
    } else {
        Err(TableError::BucketCount(buckets))
    }
}
