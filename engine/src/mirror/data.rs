//! Data generations: what each node persists about its copy of the data, and how two
//! nodes' records are compared to decide who is up to date (the idea of DRBD's UUIDs).
//!
//! A node starts a new generation whenever it begins serving without a synchronised peer
//! (ALONE). `synced` remembers the last generation both nodes held together, so that when
//! they meet again each can tell whether the other moved on since, or whether both did
//! (split brain).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One generation of a module's data. `counter` grows by one at every new generation;
/// `tag` is random so that two nodes starting a generation from the same parent (split brain)
/// never produce equal generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Generation {
    pub counter: u64,
    pub tag: u64,
}

impl Generation {
    /// "No history": a node that never held data for this module.
    pub const NONE: Generation = Generation { counter: 0, tag: 0 };

    pub fn is_none(self) -> bool {
        self == Generation::NONE
    }

    /// The generation that follows `self`, made unique by `tag` (a random number).
    pub fn next(self, tag: u64) -> Generation {
        Generation {
            counter: self.counter + 1,
            tag: tag | 1,
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            f.write_str("none")
        } else {
            write!(f, "{}.{:04x}", self.counter, self.tag & 0xffff)
        }
    }
}

/// The role this node held when its record was last written: it says how fresh the data
/// may be when the node starts again without hearing its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LastRole {
    /// Never started with data.
    Never,
    /// Served with no synchronised peer: nobody can hold newer data (short of a split brain).
    Alone,
    /// Served with a synchronised secondary, which may have taken over since.
    Prim,
    /// Was secondary: the primary may have gone on writing since.
    Second,
    /// Stopped while a synchronised secondary was ready to take over: known to be stale.
    HandedOver,
}

/// What a node persists about its copy of a module's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    pub generation: Generation,
    /// The last generation this node held in common with its peer.
    pub synced: Generation,
    /// The generation `generation` followed (an ancestor, like `synced`): a peer still at
    /// it is behind, whether or not it was recorded in sync (its copy may have completed
    /// just before the stream broke).
    #[serde(default)]
    pub previous: Generation,
    /// False from the start of a resynchronisation into this node until its end: a copy
    /// half-way through a resync is not a usable copy.
    pub consistent: bool,
    pub last_role: LastRole,
}

impl Default for DataRecord {
    fn default() -> Self {
        DataRecord {
            generation: Generation::NONE,
            synced: Generation::NONE,
            previous: Generation::NONE,
            consistent: true,
            last_role: LastRole::Never,
        }
    }
}

/// How my data compares with the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Neither node has history.
    BothEmpty,
    /// Same generation: the copies are equal (when both are consistent).
    Same,
    /// The peer's data is a later generation of mine (or I have none): I am behind.
    PeerNewer,
    /// My data is a later generation of the peer's (or it has none): the peer is behind.
    MineNewer,
    /// Both moved on from a common point, or share no history at all: split brain.
    Diverged,
}

impl DataRecord {
    pub fn relation_to(&self, peer: &DataRecord) -> Relation {
        let mine = self.generation;
        let theirs = peer.generation;
        match (mine.is_none(), theirs.is_none()) {
            (true, true) => Relation::BothEmpty,
            (true, false) => Relation::PeerNewer,
            (false, true) => Relation::MineNewer,
            (false, false) if mine == theirs => Relation::Same,
            (false, false) if peer.descends_from(mine) => Relation::PeerNewer,
            (false, false) if self.descends_from(theirs) => Relation::MineNewer,
            (false, false) => Relation::Diverged,
        }
    }

    /// Whether `ancestor` is a generation this node's data grew from.
    fn descends_from(&self, ancestor: Generation) -> bool {
        ancestor == self.synced || ancestor == self.previous
    }

    /// May this node start serving without hearing its peer, on its own?
    /// Only if it was the only server when it stopped and its copy is complete.
    pub fn may_start_alone_unattended(&self) -> bool {
        self.consistent && self.last_role == LastRole::Alone
    }

    /// May the administrator's `prim` (not `primforce`) start this node as primary?
    /// Refused when the node may have missed writes.
    pub fn prim_refusal(&self) -> Option<&'static str> {
        if !self.consistent {
            return Some("its copy of the data is incomplete: a resynchronisation was interrupted");
        }
        match self.last_role {
            LastRole::Never | LastRole::Alone | LastRole::Prim => None,
            LastRole::Second => {
                Some("it was SECOND when it stopped: the primary may have written since")
            }
            LastRole::HandedOver => {
                Some("it handed the primary role over to its peer, which may have written since")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(generation: u64, synced: u64) -> DataRecord {
        let g = |c: u64| Generation {
            counter: c,
            tag: if c == 0 { 0 } else { c * 10 + 1 },
        };
        DataRecord {
            generation: g(generation),
            synced: g(synced),
            previous: g(generation.saturating_sub(1)),
            consistent: true,
            last_role: LastRole::Prim,
        }
    }

    #[test]
    fn relations_follow_the_history() {
        assert_eq!(rec(0, 0).relation_to(&rec(0, 0)), Relation::BothEmpty);
        assert_eq!(rec(0, 0).relation_to(&rec(2, 1)), Relation::PeerNewer);
        assert_eq!(rec(2, 1).relation_to(&rec(0, 0)), Relation::MineNewer);
        assert_eq!(rec(3, 3).relation_to(&rec(3, 3)), Relation::Same);
        // The peer went ALONE from our common generation 3.
        assert_eq!(rec(3, 3).relation_to(&rec(4, 3)), Relation::PeerNewer);
        assert_eq!(rec(4, 3).relation_to(&rec(3, 3)), Relation::MineNewer);
    }

    #[test]
    fn a_peer_at_my_previous_generation_is_behind_even_if_never_recorded_in_sync() {
        // The copy to the peer completed, then the stream broke before the primary recorded
        // it in sync: the primary moved to generation 2 with synced still 0.
        let primary = rec(2, 0);
        let peer = rec(1, 1);
        assert_eq!(primary.relation_to(&peer), Relation::MineNewer);
        assert_eq!(peer.relation_to(&primary), Relation::PeerNewer);
    }

    #[test]
    fn two_generations_from_one_parent_diverge() {
        let parent = Generation {
            counter: 3,
            tag: 31,
        };
        let a = DataRecord {
            generation: parent.next(100),
            synced: parent,
            ..DataRecord::default()
        };
        let b = DataRecord {
            generation: parent.next(200),
            synced: parent,
            ..DataRecord::default()
        };
        assert_ne!(a.generation, b.generation);
        assert_eq!(a.relation_to(&b), Relation::Diverged);
        assert_eq!(b.relation_to(&a), Relation::Diverged);
    }

    #[test]
    fn stale_nodes_are_refused_prim() {
        let mut r = rec(3, 3);
        r.last_role = LastRole::Second;
        assert!(r.prim_refusal().is_some());
        r.last_role = LastRole::HandedOver;
        assert!(r.prim_refusal().is_some());
        r.last_role = LastRole::Alone;
        assert!(r.prim_refusal().is_none());
        r.consistent = false;
        assert!(r.prim_refusal().is_some());
        assert!(!r.may_start_alone_unattended());
    }
}
