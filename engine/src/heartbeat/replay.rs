//! Replay protection for authenticated heartbeats.
//!
//! A MAC proves a datagram came from a node holding the cluster key, not that it is fresh:
//! anyone on the heartbeat network can record a heartbeat and send it again later, e.g. to
//! make a dead peer look alive. Each heartbeat therefore carries a position,
//! `(advert.incarnation, seq)`, and a receiver accepts only positions strictly greater than
//! the last it accepted from the same (module, node).
//!
//! # Sender contract
//!
//! - `incarnation` grows across daemon restarts: microseconds since the Unix epoch at daemon
//!   start. A restarted daemon resets `seq`, so only a larger incarnation gets it heard
//!   again. If the clock may step back across a restart (no RTC, NTP correction), the daemon
//!   should use `max(now, last incarnation + 1)` with the last one kept in its state
//!   directory: until the clock catches up, a smaller incarnation is refused as a replay.
//! - `seq` grows strictly with every heartbeat of one (module, node) within an incarnation
//!   (a single per-daemon counter satisfies this; gaps are fine).
//!
//! # Receiver contract
//!
//! - Feed only heartbeats whose MAC checked (`wire::decode`): an unauthenticated position
//!   could push the guard to `u64::MAX` and silence the real peer.
//! - Keep one guard per heartbeat network. The sender sends the same heartbeat on every
//!   network; a guard shared between networks would refuse the copy arriving second and
//!   make that network look silent.

use super::wire::Heartbeat;
use std::collections::HashMap;
use std::fmt;

/// An advert that carries its sender's daemon incarnation.
pub trait Incarnated {
    fn incarnation(&self) -> u64;
}

impl Incarnated for crate::mirror::advert::Advert {
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
}

/// Where a heartbeat stands in its sender's history; ordered by incarnation, then seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub incarnation: u64,
    pub seq: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "incarnation {} seq {}", self.incarnation, self.seq)
    }
}

impl Position {
    pub fn of<A: Incarnated>(hb: &Heartbeat<A>) -> Position {
        Position {
            incarnation: hb.advert.incarnation(),
            seq: hb.seq,
        }
    }
}

/// A heartbeat not newer than the last one accepted from the same (module, node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "replayed or stale heartbeat for module {module} from {node}: received {received}, \
     expected more than {last_accepted}{}",
    hint(.received, .last_accepted)
)]
pub struct Replayed {
    pub module: String,
    pub node: String,
    pub received: Position,
    pub last_accepted: Position,
}

fn hint(received: &Position, last: &Position) -> &'static str {
    if received.incarnation < last.incarnation {
        " (an older daemon incarnation: a recorded datagram, or the sender restarted with its \
         clock set back)"
    } else {
        ""
    }
}

/// The highest position accepted per module, then per node.
#[derive(Debug, Clone, Default)]
pub struct ReplayGuard {
    last: HashMap<String, HashMap<String, Position>>,
}

impl ReplayGuard {
    pub fn new() -> ReplayGuard {
        ReplayGuard::default()
    }

    /// Accepts `hb` and remembers its position if it is strictly newer than the last
    /// accepted from its (module, node); otherwise leaves the guard unchanged.
    pub fn accept<A: Incarnated>(&mut self, hb: &Heartbeat<A>) -> Result<(), Replayed> {
        let received = Position::of(hb);
        let nodes = match self.last.get_mut(&hb.module) {
            Some(nodes) => nodes,
            None => self.last.entry(hb.module.clone()).or_default(),
        };
        match nodes.get_mut(&hb.node) {
            Some(last) if received <= *last => Err(Replayed {
                module: hb.module.clone(),
                node: hb.node.clone(),
                received,
                last_accepted: *last,
            }),
            Some(last) => {
                *last = received;
                Ok(())
            }
            None => {
                nodes.insert(hb.node.clone(), received);
                Ok(())
            }
        }
    }

    /// The last position accepted from `node` for `module`.
    pub fn last(&self, module: &str, node: &str) -> Option<Position> {
        self.last.get(module)?.get(node).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::advert::Advert;
    use crate::mirror::data::DataRecord;
    use crate::mirror::role::{Readiness, Role};

    fn hb(module: &str, node: &str, incarnation: u64, seq: u64) -> Heartbeat {
        Heartbeat {
            module: module.into(),
            node: node.into(),
            seq,
            advert: Advert {
                incarnation,
                role: Role::Second,
                readiness: Readiness::Ready,
                data: DataRecord::default(),
                yielding: false,
                swap_request: false,
                serving_ms: 0,
                join_only: false,
                join_id: 0,
                acked_join: 0,
                copied_join: 0,
                broken_join: 0,
                join_base: None,
                copy: None,
                durable: None,
                sent_ms: 0,
                echo_ms: 0,
                echo_incarnation: 0,
            },
        }
    }

    #[test]
    fn first_then_strictly_newer_are_accepted() {
        let mut g = ReplayGuard::new();
        assert_eq!(g.accept(&hb("web", "a", 100, 0)), Ok(()));
        assert_eq!(g.accept(&hb("web", "a", 100, 1)), Ok(()));
        assert_eq!(g.accept(&hb("web", "a", 100, 5)), Ok(()), "gaps are fine");
        assert_eq!(
            g.last("web", "a"),
            Some(Position {
                incarnation: 100,
                seq: 5
            })
        );
    }

    #[test]
    fn duplicate_is_rejected_and_says_what_was_expected() {
        let mut g = ReplayGuard::new();
        g.accept(&hb("web", "a", 100, 7)).unwrap();
        let err = g.accept(&hb("web", "a", 100, 7)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "replayed or stale heartbeat for module web from a: received incarnation 100 \
             seq 7, expected more than incarnation 100 seq 7"
        );
    }

    #[test]
    fn older_seq_and_older_incarnation_are_rejected() {
        let mut g = ReplayGuard::new();
        g.accept(&hb("web", "a", 100, 7)).unwrap();
        assert!(g.accept(&hb("web", "a", 100, 6)).is_err());
        let err = g.accept(&hb("web", "a", 99, 1000)).unwrap_err();
        assert!(
            err.to_string().contains("older daemon incarnation"),
            "{err}"
        );
        assert_eq!(g.last("web", "a").map(|p| p.seq), Some(7), "unchanged");
    }

    #[test]
    fn newer_incarnation_restarts_seq_at_zero() {
        let mut g = ReplayGuard::new();
        g.accept(&hb("web", "a", 100, 7_000)).unwrap();
        assert_eq!(g.accept(&hb("web", "a", 101, 0)), Ok(()));
        assert!(g.accept(&hb("web", "a", 100, 7_001)).is_err(), "old daemon");
    }

    #[test]
    fn nodes_and_modules_are_independent() {
        let mut g = ReplayGuard::new();
        g.accept(&hb("web", "a", 100, 7)).unwrap();
        assert_eq!(g.accept(&hb("web", "b", 100, 7)), Ok(()));
        assert_eq!(g.accept(&hb("db", "a", 100, 7)), Ok(()));
        assert!(g.accept(&hb("db", "a", 1, 0)).is_err());
        assert_eq!(g.accept(&hb("web", "b", 100, 8)), Ok(()));
        assert_eq!(g.last("web", "a").map(|p| p.seq), Some(7));
        assert_eq!(g.last("mail", "a"), None);
    }
}
