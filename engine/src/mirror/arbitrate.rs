//! Who should serve, decided identically on both nodes from what both advertise.

use super::data::{DataRecord, Relation};
use crate::config::{DefaultPrim, SplitBrainWinner};
use std::time::Duration;

/// One node as seen by the arbitration: its name, data and whether it may lead.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub data: &'a DataRecord,
    /// Started with `second`: never chosen.
    pub join_only: bool,
}

impl Candidate<'_> {
    fn eligible(&self) -> bool {
        self.data.consistent && !self.join_only && !self.data.generation.is_none()
    }
}

/// Two started nodes, neither serving: which one becomes primary, and why.
/// Symmetric: both nodes get the same answer whatever the order of the arguments.
pub fn pick_primary<'a>(
    a: Candidate<'a>,
    b: Candidate<'a>,
    defaultprim: &DefaultPrim,
    winner: &SplitBrainWinner,
) -> Result<(&'a str, String), String> {
    let (eligible_a, eligible_b) = (a.eligible(), b.eligible());
    let only = |x: Candidate<'a>, ok: bool, why: &str| {
        if ok {
            Ok((x.name, format!("{} {why}", x.name)))
        } else {
            Err(format!(
                "{} {why}, but it cannot lead (incomplete copy or started with `second`)",
                x.name
            ))
        }
    };
    match a.data.relation_to(b.data) {
        Relation::BothEmpty => Err("no node has data history yet: run `prim` on the node \
                                    whose data is right"
            .to_string()),
        Relation::MineNewer => only(a, eligible_a, "holds the newer data"),
        Relation::PeerNewer => only(b, eligible_b, "holds the newer data"),
        Relation::Same => match (eligible_a, eligible_b) {
            (false, false) => Err("neither node may lead (incomplete copies)".to_string()),
            (true, false) => Ok((a.name, format!("{} is the only complete copy", a.name))),
            (false, true) => Ok((b.name, format!("{} is the only complete copy", b.name))),
            (true, true) => Ok(pick_between_equals(a, b, defaultprim)),
        },
        Relation::Diverged => {
            let (pick, why) = match (eligible_a, eligible_b) {
                (false, false) => return Err("split brain and neither copy is usable".into()),
                (true, false) => (a, "the only complete copy"),
                (false, true) => (b, "the only complete copy"),
                (true, true) => pick_split_brain_winner(a, b, winner),
            };
            Ok((
                pick.name,
                format!(
                    "split brain: both nodes changed the data since generation {}; {} keeps \
                     its data ({why}, generation {})",
                    a.data.synced, pick.name, pick.data.generation
                ),
            ))
        }
    }
}

/// Two usable, diverged copies: the configured winner, or the later generation.
fn pick_split_brain_winner<'a>(
    a: Candidate<'a>,
    b: Candidate<'a>,
    winner: &SplitBrainWinner,
) -> (Candidate<'a>, &'static str) {
    if let SplitBrainWinner::Node(n) = winner
        && let Some(c) = [a, b].into_iter().find(|c| c.name == n)
    {
        return (c, "splitbrain_winner");
    }
    let key = |c: Candidate<'a>| (std::cmp::Reverse(c.data.generation.counter), c.name);
    (if key(a) <= key(b) { a } else { b }, "the later generation")
}

fn pick_between_equals<'a>(
    a: Candidate<'a>,
    b: Candidate<'a>,
    defaultprim: &DefaultPrim,
) -> (&'a str, String) {
    use super::data::LastRole::{Alone, Prim};
    if let DefaultPrim::Node(n) = defaultprim {
        for c in [a, b] {
            if c.name == n {
                return (c.name, format!("same data on both; defaultprim is {n}"));
            }
        }
    }
    let was_primary = |c: &Candidate| matches!(c.data.last_role, Alone | Prim);
    match (was_primary(&a), was_primary(&b)) {
        (true, false) => (
            a.name,
            format!("same data on both; {} was primary last", a.name),
        ),
        (false, true) => (
            b.name,
            format!("same data on both; {} was primary last", b.name),
        ),
        _ => {
            let first = if a.name <= b.name { a.name } else { b.name };
            (
                first,
                format!("same data on both; {first} comes first by name"),
            )
        }
    }
}

/// Both nodes serve at once (a split brain that just healed): does the local node keep
/// serving? It keeps only if it has served longer than the peer by more than `margin`
/// (clock-free: each side compares durations). Both may yield, never both keep.
pub fn keeps_serving(mine: Duration, peers: Duration, margin: Duration) -> bool {
    mine > peers.saturating_add(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::data::{Generation, LastRole};

    fn rec(counter: u64, tag: u64, synced: u64, last_role: LastRole) -> DataRecord {
        DataRecord {
            generation: Generation { counter, tag },
            synced: Generation {
                counter: synced,
                tag: synced * 10 + 1,
            },
            previous: Generation::NONE,
            consistent: true,
            last_role,
        }
    }

    fn cand<'a>(name: &'a str, data: &'a DataRecord) -> Candidate<'a> {
        Candidate {
            name,
            data,
            join_only: false,
        }
    }

    fn both_orders(a: Candidate, b: Candidate, dp: &DefaultPrim) -> Result<String, String> {
        both_orders_with(a, b, dp, &SplitBrainWinner::Longest)
    }

    fn both_orders_with(
        a: Candidate,
        b: Candidate,
        dp: &DefaultPrim,
        winner: &SplitBrainWinner,
    ) -> Result<String, String> {
        let x = pick_primary(a, b, dp, winner).map(|(n, _)| n.to_string());
        let y = pick_primary(b, a, dp, winner).map(|(n, _)| n.to_string());
        assert_eq!(x.is_ok(), y.is_ok());
        if let (Ok(x), Ok(y)) = (&x, &y) {
            assert_eq!(x, y, "arbitration must not depend on who asks");
        }
        x
    }

    #[test]
    fn newer_data_wins_and_equal_data_follows_defaultprim_then_last_primary() {
        let old = rec(3, 31, 3, LastRole::Second);
        let new = rec(4, 41, 3, LastRole::Alone);
        let dp = DefaultPrim::Alone;
        assert_eq!(
            both_orders(cand("n1", &old), cand("n2", &new), &dp),
            Ok("n2".into())
        );

        let p = rec(4, 41, 4, LastRole::Prim);
        let s = rec(4, 41, 4, LastRole::Second);
        assert_eq!(
            both_orders(cand("n1", &s), cand("n2", &p), &dp),
            Ok("n2".into())
        );
        let dp1 = DefaultPrim::Node("n1".into());
        assert_eq!(
            both_orders(cand("n1", &s), cand("n2", &p), &dp1),
            Ok("n1".into())
        );
        assert_eq!(
            both_orders(cand("n1", &s), cand("n2", &s), &dp),
            Ok("n1".into())
        );
    }

    #[test]
    fn no_history_and_join_only_nodes_never_lead() {
        let empty = DataRecord::default();
        assert!(both_orders(cand("n1", &empty), cand("n2", &empty), &DefaultPrim::Alone).is_err());
        let new = rec(4, 41, 3, LastRole::Alone);
        let c = Candidate {
            name: "n2",
            data: &new,
            join_only: true,
        };
        assert!(both_orders(cand("n1", &empty), c, &DefaultPrim::Alone).is_err());
    }

    #[test]
    fn split_brain_prefers_the_later_generation_symmetrically() {
        let a = rec(6, 61, 4, LastRole::Alone);
        let b = rec(5, 51, 4, LastRole::Alone);
        assert_eq!(
            both_orders(cand("n1", &a), cand("n2", &b), &DefaultPrim::Alone),
            Ok("n1".into())
        );
        let n2 = SplitBrainWinner::Node("n2".into());
        assert_eq!(
            both_orders_with(cand("n1", &a), cand("n2", &b), &DefaultPrim::Alone, &n2),
            Ok("n2".into()),
            "the configured winner keeps its data even with the earlier generation"
        );
        let incomplete = DataRecord {
            consistent: false,
            ..b
        };
        assert_eq!(
            both_orders_with(
                cand("n1", &a),
                cand("n2", &incomplete),
                &DefaultPrim::Alone,
                &n2
            ),
            Ok("n1".into()),
            "but never with an incomplete copy"
        );
    }

    #[test]
    fn never_both_keep_serving() {
        let ms = Duration::from_millis;
        let margin = ms(200);
        for true_diff in -1000i64..=1000 {
            for skew in [-100i64, 0, 100] {
                let a = 10_000 + true_diff;
                let b = 10_000;
                let a_sees_b = (b + skew).max(0) as u64;
                let b_sees_a = (a - skew).max(0) as u64;
                let a_keeps = keeps_serving(ms(a as u64), ms(a_sees_b), margin);
                let b_keeps = keeps_serving(ms(b as u64), ms(b_sees_a), margin);
                assert!(!(a_keeps && b_keeps));
            }
        }
    }
}
