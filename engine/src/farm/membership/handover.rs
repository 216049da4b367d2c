//! How each moved bucket changes hands, for the data plane.
//!
//! When the old owner of a bucket stays in the view, it is alive and still enforcing its old
//! table until it installs the new one: it keeps the connections it knows (its flow map) and
//! the new owner accepts only new connections and flows it knows, until the old ones drain.
//! When the old owner left the view (dead, stopped, or its checker failed: in all three cases
//! it accepts nothing any more) or nobody owned the bucket, the new owner takes it whole.

use super::advert::View;
use crate::farm::table::{BucketTable, Moves};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverKind {
    /// The old owner is in the new view: its known flows drain there.
    Drain,
    /// The old owner is gone (or there was none): the new owner takes every flow at once.
    TakeWhole,
}

/// A bucket whose owner changes with the new table (`None`: nobody).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub bucket: usize,
    pub from: Option<String>,
    pub to: Option<String>,
    pub kind: HandoverKind,
}

pub(super) fn classify(moves: Moves, new_view: &View) -> Vec<Handover> {
    moves
        .moves
        .into_iter()
        .map(|m| {
            let kind = match &m.from {
                Some(old) if new_view.members.contains(old) => HandoverKind::Drain,
                _ => HandoverKind::TakeWhole,
            };
            Handover {
                bucket: m.bucket,
                from: m.from,
                to: m.to,
                kind,
            }
        })
        .collect()
}

/// "85 buckets moved (42 drained from live owners, 43 taken whole)".
pub(super) fn describe(handovers: &[Handover]) -> String {
    let drained = handovers
        .iter()
        .filter(|h| h.kind == HandoverKind::Drain)
        .count();
    format!(
        "{} buckets moved ({drained} drained from live owners, {} taken whole)",
        handovers.len(),
        handovers.len() - drained
    )
}

/// The table the cluster enforced before, as far as this node can tell: its own installed
/// table; or, when it has none (it just started or comes back from WAIT), the table of the
/// view most of the new view's members advertise as installed (ties: the smaller id). That
/// table says whose flows a bucket held, which a node joining needs to drain rather than
/// steal. `None` when nobody had a table, or when the advertised view is not one this node's
/// configuration computes (then the configurations differ and agreement failed anyway).
pub(super) fn baseline<'a>(
    own: Option<&BucketTable>,
    advertised: impl Iterator<Item = &'a View>,
    table_of: impl Fn(&View) -> Option<BucketTable>,
) -> Option<BucketTable> {
    if let Some(own) = own {
        return Some(own.clone());
    }
    let mut counts: Vec<(&View, usize)> = Vec::new();
    for view in advertised {
        match counts.iter_mut().find(|(v, _)| v.id == view.id) {
            Some((_, n)) => *n += 1,
            None => counts.push((view, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    counts.first().and_then(|(view, _)| table_of(view))
}
