//! What this node's XDP filter does with each bucket, and when a bucket that changed hands
//! between two live nodes is released: a pure state machine over the membership's tables.
//!
//! A bucket this node gives to a live peer is `Draining`: the filter keeps accepting the TCP
//! connections it knows and leaves new ones to the new owner. It is released (`NotOwned`)
//! once no connection of the bucket is open on this node any more (the driver counts the
//! sockets) or after [`DRAIN_MAX`]. A bucket this node takes from a live peer is `NewOnly`:
//! new connections and the ones it knows, not the old owner's; it becomes `Owned` after
//! [`DRAIN_MAX`] (this node cannot see the old owner's sockets), or at once when the old
//! owner leaves the view. A bucket whose old owner is gone is `Owned` at once.

use super::membership::{Handover, HandoverKind, View};
use super::table::BucketTable;
use farm_ebpf_common::BucketState;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest a connection survives its bucket moving between two live nodes.
pub const DRAIN_MAX: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Transition {
    /// Given to `to`, which is alive: this node serves its known connections until they end.
    Leaving { to: String, since: Duration },
    /// Taken from `from`, which is alive and drains its own connections.
    Arriving { from: String, since: Duration },
}

#[derive(Debug, Clone)]
pub struct Drains {
    me: String,
    states: Vec<BucketState>,
    transitions: BTreeMap<usize, Transition>,
}

impl Drains {
    pub fn new(me: &str) -> Drains {
        Drains {
            me: me.to_string(),
            states: Vec::new(),
            transitions: BTreeMap::new(),
        }
    }

    /// The state of every bucket, for the XDP filter (empty before the first table).
    pub fn states(&self) -> &[BucketState] {
        &self.states
    }

    /// Whether some bucket leaves this node: the driver then counts open connections.
    pub fn draining(&self) -> bool {
        self.transitions
            .values()
            .any(|t| matches!(t, Transition::Leaving { .. }))
    }

    /// A new table is enforced: returns the log line describing the bucket states.
    pub fn install(
        &mut self,
        now: Duration,
        view: &View,
        table: &BucketTable,
        moves: &[Handover],
    ) -> String {
        let mine = |b: usize| table.owner(b) == Some(self.me.as_str());
        // Transitions still under way: same owners, and the other side still in the view.
        self.transitions.retain(|&b, t| match t {
            Transition::Leaving { to, .. } => {
                !mine(b) && table.owner(b) == Some(to.as_str()) && view.members.contains(to)
            }
            Transition::Arriving { from, .. } => mine(b) && view.members.contains(from),
        });
        for m in moves.iter().filter(|m| m.kind == HandoverKind::Drain) {
            let (from, to) = (m.from.as_deref(), m.to.as_deref());
            let t = match (from, to) {
                (Some(f), Some(t)) if f == self.me => Transition::Leaving {
                    to: t.to_string(),
                    since: now,
                },
                (Some(f), Some(t)) if t == self.me => Transition::Arriving {
                    from: f.to_string(),
                    since: now,
                },
                _ => continue,
            };
            self.transitions.insert(m.bucket, t);
        }
        // A bucket taken whole ends any transition it was in.
        for m in moves.iter().filter(|m| m.kind == HandoverKind::TakeWhole) {
            self.transitions.remove(&m.bucket);
        }
        self.states = (0..table.bucket_count())
            .map(|b| match self.transitions.get(&b) {
                Some(Transition::Leaving { .. }) => BucketState::Draining,
                Some(Transition::Arriving { .. }) => BucketState::NewOnly,
                None if mine(b) => BucketState::Owned,
                None => BucketState::NotOwned,
            })
            .collect();
        self.describe()
    }

    /// This node accepts nothing any more (stopped, or a checker fails).
    pub fn withdraw(&mut self) {
        self.transitions.clear();
        self.states
            .iter_mut()
            .for_each(|s| *s = BucketState::NotOwned);
    }

    /// Time passes; `open` is the number of connections open on this node per bucket, if
    /// it was counted. Returns a log line when some bucket changed state (then install
    /// [`Drains::states`]).
    pub fn poll(&mut self, now: Duration, open: Option<&[u32]>) -> Option<String> {
        let mut released = Vec::new();
        let mut expired = Vec::new();
        let mut settled = Vec::new();
        self.transitions.retain(|&b, t| match t {
            Transition::Leaving { since, .. } => {
                let left = open.map(|o| o.get(b).copied().unwrap_or(0));
                if now.saturating_sub(*since) >= DRAIN_MAX {
                    expired.push((b, left.unwrap_or(0)));
                    false
                } else if left == Some(0) {
                    released.push(b);
                    false
                } else {
                    true
                }
            }
            Transition::Arriving { since, .. } => {
                let done = now.saturating_sub(*since) >= DRAIN_MAX;
                if done {
                    settled.push(b);
                }
                !done
            }
        });
        for &b in released.iter().chain(expired.iter().map(|(b, _)| b)) {
            if let Some(s) = self.states.get_mut(b) {
                *s = BucketState::NotOwned;
            }
        }
        for &b in &settled {
            if let Some(s) = self.states.get_mut(b) {
                *s = BucketState::Owned;
            }
        }
        let mut parts = Vec::new();
        if !released.is_empty() {
            parts.push(format!(
                "{} draining bucket(s) released: no connection of theirs is open here any more",
                released.len()
            ));
        }
        if !expired.is_empty() {
            let cut: u32 = expired.iter().map(|(_, n)| n).sum();
            parts.push(format!(
                "{} draining bucket(s) released after the {} s drain limit ({cut} connection(s) \
                 still open here will be answered by their new owner)",
                expired.len(),
                DRAIN_MAX.as_secs()
            ));
        }
        if !settled.is_empty() {
            parts.push(format!(
                "{} new bucket(s) now accept every connection: the {} s drain limit of their \
                 previous owner has passed",
                settled.len(),
                DRAIN_MAX.as_secs()
            ));
        }
        (!parts.is_empty()).then(|| format!("{}; {}", parts.join("; "), self.describe()))
    }

    /// "XDP buckets: 85 owned, 3 draining, 2 new-only".
    fn describe(&self) -> String {
        let count = |s: BucketState| self.states.iter().filter(|x| **x == s).count();
        format!(
            "XDP buckets: {} owned, {} draining, {} new-only",
            count(BucketState::Owned),
            count(BucketState::Draining),
            count(BucketState::NewOnly)
        )
    }
}

#[cfg(test)]
mod tests;
