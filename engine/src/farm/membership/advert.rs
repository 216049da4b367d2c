//! Views, their ids, and what a node tells its peers in every farm heartbeat.

use super::FarmState;
use super::config::FarmConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Names a view *and* the configuration its table is computed from: a 64-bit BLAKE3 hash of
/// the bucket count, every host of the farm group with its power, and the view's members.
/// Equal ids mean equal tables, so agreeing on the id is agreeing on the table, without
/// sending it. A content hash rather than a counter: nodes that restart, or that saw different
/// histories, still name the same view the same way, and nothing must be persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ViewId(pub u64);

/// Logs show the first 4 hex digits, like a short git hash: enough to compare by eye.
impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}", self.0 >> 48)
    }
}

/// A set of farm hosts that are up, healthy and hear each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub members: BTreeSet<String>,
    pub id: ViewId,
}

/// "{node1,node2} (id 7f3a)".
impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.members.iter().map(String::as_str).collect();
        write!(f, "{{{}}} (id {})", names.join(","), self.id)
    }
}

const VIEW_ID_CONTEXT: &str = "hakit farm 2025 view id v1";

/// Computes view ids for one configuration; the configuration part is hashed once.
#[derive(Debug, Clone)]
pub struct ViewIds {
    config: blake3::Hasher,
}

impl ViewIds {
    pub fn new(cfg: &FarmConfig) -> ViewIds {
        let mut hosts = cfg.hosts.clone();
        hosts.sort();
        let mut config = blake3::Hasher::new_derive_key(VIEW_ID_CONTEXT);
        config.update(&(cfg.buckets as u64).to_le_bytes());
        config.update(&(hosts.len() as u64).to_le_bytes());
        for host in &hosts {
            hash_name(&mut config, &host.name);
            config.update(&host.power.to_le_bytes());
        }
        ViewIds { config }
    }

    pub fn view(&self, members: BTreeSet<String>) -> View {
        let mut hasher = self.config.clone();
        hasher.update(&(members.len() as u64).to_le_bytes());
        for name in &members {
            hash_name(&mut hasher, name);
        }
        let mut le = [0u8; 8];
        le.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        View {
            members,
            id: ViewId(u64::from_le_bytes(le)),
        }
    }
}

/// Length-prefixed, so that no two lists of names hash the same bytes.
fn hash_name(hasher: &mut blake3::Hasher, name: &str) {
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
}

/// What a node tells its peers every pulse about one farm module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    /// Grows across daemon restarts: a new value means the sender restarted.
    pub incarnation: u64,
    /// Grows with every advert within an incarnation: with several networks, an older advert
    /// may arrive after a newer one and must not replace it.
    pub seq: u64,
    pub state: FarmState,
    /// Started and no checker failing: it wants to be in the view.
    pub healthy: bool,
    /// The peers whose heartbeats it currently receives. A node proposes a peer only if the
    /// peer hears it too, so that a one-way loss does not leave both waiting forever.
    pub hears: BTreeSet<String>,
    /// The view it proposes; a view is installed when every member proposes it.
    pub proposal: View,
    /// The view whose table it enforces, if any.
    pub installed: Option<View>,
}

impl crate::heartbeat::replay::Incarnated for Advert {
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
}
