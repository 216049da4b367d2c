//! After every input: what view to propose, whether it is agreed, and installing or
//! withdrawing tables.

use super::handover::{self, Handover};
use super::{Action, Installed, Membership, View};
use crate::farm::table::{self, BucketTable, TableError, TableStatus};
use std::collections::BTreeSet;
use std::time::Duration;

/// Where the current proposal stands.
enum Agreement {
    /// Every member proposes it.
    Agreed,
    /// Every member proposes it, but the daemon has just started and has not yet heard from
    /// every peer: installing now could take every bucket from a running farm.
    Listening,
    /// These members propose something else (or nothing yet): "node2 proposes {..} (id ..)".
    Waiting(Vec<String>),
}

impl Membership {
    pub(super) fn decide(&mut self, now: Duration, why: Vec<String>, out: &mut Vec<Action>) {
        let candidate = self.wants_to_serve();
        let members = self.proposed_members();
        let events = why.join("; ");
        // "view {node1,node2} (id 7f3a) without node3", when the proposal changes.
        let mut proposal = String::new();
        if members != self.proposal.members {
            let change = describe_change(&self.proposal.members, &members);
            self.proposal = self.ids.view(members);
            self.proposed_at = now;
            self.stall_reported = false;
            proposal = format!("view {} {change}", self.proposal);
        }
        let news = join(&events, &proposal);
        if !candidate {
            // Its own proposal (the others) is of no interest while it does not serve.
            self.stand_aside(events, out);
            return;
        }
        if self.installed_view().map(|v| v.id) == Some(self.proposal.id) {
            log(out, news);
            return;
        }
        match self.agreement(now) {
            Agreement::Agreed => {
                let agreed = if proposal.is_empty() {
                    format!("view {}", self.proposal)
                } else {
                    proposal
                };
                self.install(&join(&events, &agreed), out);
            }
            Agreement::Listening => {
                self.reason = format!(
                    "listening for peers before installing view {}",
                    self.proposal
                );
                if !news.is_empty() {
                    let until = self.born + self.cfg.joiner_timeout();
                    log(
                        out,
                        format!(
                            "{news}, listening for the other hosts for up to {} ms",
                            until.saturating_sub(now).as_millis()
                        ),
                    );
                }
            }
            Agreement::Waiting(disagreeing) => {
                self.reason = format!("waiting for agreement on view {}", self.proposal);
                let waited = now.saturating_sub(self.proposed_at);
                if waited >= self.cfg.member_timeout() && !self.stall_reported {
                    self.stall_reported = true;
                    let stall = format!(
                        "view {} not agreed after {} ms: {}",
                        self.proposal,
                        waited.as_millis(),
                        disagreeing.join("; ")
                    );
                    log(out, join(&news, &stall));
                } else if !news.is_empty() {
                    log(out, format!("{news}, waiting for agreement"));
                }
            }
        }
    }

    /// Stopped or unhealthy: accept nothing, and say why.
    fn stand_aside(&mut self, events: String, out: &mut Vec<Action>) {
        self.reason = if self.started {
            let failing: Vec<String> = self
                .failing
                .iter()
                .map(|(ident, detail)| format!("checker {ident}: {detail}"))
                .collect();
            format!("not serving: {}", failing.join("; "))
        } else {
            "stopped".to_string()
        };
        let mut line = events;
        if let Some(left) = self.installed.take() {
            out.push(Action::Withdraw);
            line = join(
                &line,
                &format!("left view {}, accepting no traffic", left.view),
            );
        }
        log(out, line);
    }

    /// Alive peers that want to serve and hear this node, plus this node if it wants to.
    fn proposed_members(&self) -> BTreeSet<String> {
        let mut members: BTreeSet<String> = self
            .peers
            .iter()
            .filter(|p| p.is_candidate(&self.cfg.me))
            .map(|p| p.name.clone())
            .collect();
        if self.wants_to_serve() {
            members.insert(self.cfg.me.clone());
        }
        members
    }

    fn agreement(&self, now: Duration) -> Agreement {
        let mut disagreeing = Vec::new();
        for peer in self
            .peers
            .iter()
            .filter(|p| self.proposal.members.contains(&p.name))
        {
            match peer.live_advert().map(|a| &a.proposal) {
                Some(theirs) if theirs.id == self.proposal.id => {}
                Some(theirs) if theirs.members == self.proposal.members => {
                    disagreeing.push(format!(
                        "{} proposes the same hosts under id {}: the farm group, powers or \
                         bucket count differ between the nodes' configurations",
                        peer.name, theirs.id
                    ))
                }
                Some(theirs) => disagreeing.push(format!("{} proposes {theirs}", peer.name)),
                None => disagreeing.push(format!("{} proposes nothing yet", peer.name)),
            }
        }
        if !disagreeing.is_empty() {
            return Agreement::Waiting(disagreeing);
        }
        let listening = now < self.born + self.cfg.joiner_timeout();
        if self.installed.is_none() && listening && !self.peers_settled() {
            return Agreement::Listening;
        }
        Agreement::Agreed
    }

    /// Every peer is known: heard, and either in the proposal or not wanting to serve.
    fn peers_settled(&self) -> bool {
        self.peers.iter().all(|p| {
            p.live_advert()
                .is_some_and(|a| !a.healthy || self.proposal.members.contains(&p.name))
        })
    }

    /// `agreed`: "node2 heard: view {node1,node2} (id 7f3a) with node2".
    fn install(&mut self, agreed: &str, out: &mut Vec<Action>) {
        let view = self.proposal.clone();
        match self.table_and_moves(&view) {
            Ok((table, moves)) => {
                let empty = match table.status() {
                    TableStatus::Serving { .. } => String::new(),
                    TableStatus::Empty(reason) => format!("; {reason}"),
                };
                log(
                    out,
                    format!(
                        "{agreed} agreed by all members: installing table, {}, {}{empty}",
                        table.describe_loads(),
                        handover::describe(&moves)
                    ),
                );
                self.reason = format!("serving in view {view}");
                self.installed = Some(Installed {
                    view: view.clone(),
                    table: table.clone(),
                });
                out.push(Action::InstallTable { view, table, moves });
            }
            Err(e) => {
                self.reason = format!("cannot compute the table of view {view}: {e}");
                log(
                    out,
                    format!("{agreed} agreed by all members, but {}", self.reason),
                );
            }
        }
    }

    fn table_and_moves(&self, view: &View) -> Result<(BucketTable, Vec<Handover>), TableError> {
        let table = self.table_of(view)?;
        // What the members enforced before this view: a member that installed it already
        // enforced the view it advertised before.
        let advertised = self
            .peers
            .iter()
            .filter(|p| view.members.contains(&p.name))
            .filter_map(|p| match &p.live_advert()?.installed {
                Some(v) if v.id == view.id => p.installed_before.as_ref(),
                other => other.as_ref(),
            });
        let before = handover::baseline(self.installed_table(), advertised, |v| {
            (self.ids.view(v.members.clone()).id == v.id)
                .then(|| self.table_of(v).ok())
                .flatten()
        });
        let before = match before {
            Some(t) => t,
            None => BucketTable::empty(self.cfg.buckets)?,
        };
        let moves = table::diff(&before, &table)?;
        Ok((table, handover::classify(moves, view)))
    }

    fn table_of(&self, view: &View) -> Result<BucketTable, TableError> {
        BucketTable::for_view(
            &self.cfg.hosts,
            view.members.iter().map(String::as_str),
            self.cfg.buckets,
        )
    }
}

/// "with node4, without node3".
fn describe_change(old: &BTreeSet<String>, new: &BTreeSet<String>) -> String {
    let with = new.difference(old).map(|n| format!("with {n}"));
    let without = old.difference(new).map(|n| format!("without {n}"));
    with.chain(without).collect::<Vec<_>>().join(", ")
}

/// "first: then", or whichever is not empty.
fn join(first: &str, then: &str) -> String {
    match (first.is_empty(), then.is_empty()) {
        (_, true) => first.to_string(),
        (true, false) => then.to_string(),
        (false, false) => format!("{first}: {then}"),
    }
}

fn log(out: &mut Vec<Action>, line: String) {
    if !line.is_empty() {
        out.push(Action::Log(line));
    }
}
