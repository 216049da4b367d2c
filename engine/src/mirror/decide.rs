//! Decisions of a node that is stopped or waiting, and the checks made before any decision.

use super::arbitrate::{Candidate, pick_primary};
use super::data::{LastRole, Relation};
use super::fsm::{Action, Machine};
use super::plan::Step;
use super::role::{Readiness, Role};
use crate::config::CheckAction;
use std::time::Duration;

impl Machine {
    pub(super) fn decide(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.plan.is_some() && !self.watch_copy(now, out) {
            return self.preempt_if_isolated(now, out);
        }
        if self.demote_on_evidence(now, out) {
            return;
        }
        match self.role {
            Role::Stop => self.decide_stop(now, out),
            Role::Wait => self.decide_wait(now, out),
            Role::Alone => self.decide_alone(now, out),
            Role::Prim => self.decide_prim(now, out),
            Role::Second => self.decide_second(now, out),
        }
    }

    pub(super) fn note(&mut self, reason: String, out: &mut Vec<Action>) {
        if reason != self.reason {
            out.push(Action::Log(format!("{}: {reason}", self.role)));
            self.reason = reason;
        }
    }

    /// A plan heading for a serving role goes on while the peer is unheard only if a witness
    /// answers: an isolated node decides to step down at once, without waiting for the running
    /// script, so that the peer can take over safely once its hold-off has passed.
    pub(super) fn preempt_if_isolated(&mut self, now: Duration, out: &mut Vec<Action>) {
        if !self.role_after_plan.is_serving() || self.cfg.witness_timeout.is_none() {
            return;
        }
        let Some(after) = self.isolation_suspected_since(now) else {
            return;
        };
        if let Some((false, why)) = self.witness_verdict(now, after, out) {
            self.isolated = true;
            let reason = format!(
                "{} not heard and {why}: this node may be the isolated one; stopping the \
                 application after the running step",
                self.cfg.peer
            );
            out.push(Action::Log(format!("{} -> WAIT: {reason}", self.role)));
            self.reason = reason;
            self.role_after_plan = Role::Wait;
            self.ack_after_plan = None;
            let steps = self.stop_serving_steps();
            if let Some(plan) = self.plan.as_mut() {
                plan.steps = steps.into();
            }
        }
    }

    /// A node that is not serving and hears that its peer holds newer (or diverged) data
    /// records that its own copy is stale: it must never again start alone on the belief
    /// that it was the last primary.
    pub(super) fn demote_on_evidence(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
        let Some(p) = self.live_peer() else {
            return false;
        };
        let claims_latest = matches!(self.record.data.last_role, LastRole::Alone | LastRole::Prim);
        let relation = self.record.data.relation_to(&p.data);
        if self.role.is_serving()
            || !claims_latest
            || !matches!(relation, Relation::PeerNewer | Relation::Diverged)
        {
            return false;
        }
        let reason = format!(
            "{} holds data generation {} which mine ({}) lacks: recording my copy as stale",
            self.cfg.peer, p.data.generation, self.record.data.generation
        );
        let record = self.with_last_role(LastRole::Second);
        self.begin(
            self.role,
            self.role,
            vec![Step::Persist(record)],
            reason,
            now,
            out,
        );
        true
    }

    pub(super) fn decide_stop(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(deadline) = self.restart_after_stop else {
            return;
        };
        let peer_serves = self.live_peer().is_some_and(|p| p.role.is_serving());
        if peer_serves || now >= deadline {
            self.restart_after_stop = None;
            out.push(Action::Log(format!(
                "stopstart: starting again ({})",
                if peer_serves {
                    format!("{} has taken over", self.cfg.peer)
                } else {
                    format!("{} did not take over in time", self.cfg.peer)
                }
            )));
            self.start(now, false, out);
        }
    }

    pub(super) fn decide_wait(&mut self, now: Duration, out: &mut Vec<Action>) {
        if let Some(ident) = self
            .cfg
            .checkers
            .iter()
            .find(|c| c.action == CheckAction::Wait && self.failing.contains_key(&c.ident))
            .map(|c| c.ident.clone())
        {
            return self.note(
                format!("checker {ident} is failing: waiting for it to recover"),
                out,
            );
        }
        if let Some(failure) = &self.held {
            return self.note(format!("held after a failure: {failure}"), out);
        }
        let peer_name = self.cfg.peer.clone();
        match self.live_peer() {
            Some(p) if p.role.is_serving() && p.readiness == Readiness::Ready => {
                self.join_as_second(now, p, out)
            }
            Some(p) if p.role.is_serving() => self.note(
                format!(
                    "{peer_name} is becoming {}: waiting for it to settle",
                    p.role
                ),
                out,
            ),
            Some(p) => {
                if self.join_only {
                    return self.note(
                        "started with `second`: waiting for a primary".to_string(),
                        out,
                    );
                }
                // Decide together only with a peer that hears us: one that does not may be
                // about to start alone on the belief that we are gone.
                if !self.peer_hears_me(now) {
                    return self.note(
                        format!("{peer_name} is heard but has not heard me yet: waiting"),
                        out,
                    );
                }
                let relation = self.record.data.relation_to(&p.data);
                // A stopped peer that was primary last believes nobody holds newer data: only
                // data strictly newer than its own may then serve without it.
                let peer_claims_latest =
                    matches!(p.data.last_role, LastRole::Alone | LastRole::Prim);
                let mine_at_least = (relation == Relation::MineNewer
                    || (relation == Relation::Same && !peer_claims_latest))
                    && self.record.data.consistent
                    && !self.record.data.generation.is_none();
                match p.role {
                    Role::Stop if mine_at_least => {
                        let reason = format!(
                            "{peer_name} is stopped and my data (generation {}) is at least as \
                             recent as its own ({})",
                            self.record.data.generation, p.data.generation
                        );
                        self.become_alone(now, reason, out);
                    }
                    Role::Stop => self.note(
                        format!(
                            "{peer_name} is stopped and was primary last or holds data I may \
                             lack (generation {} vs mine {}): start it, or run prim here",
                            p.data.generation, self.record.data.generation
                        ),
                        out,
                    ),
                    Role::Wait => {
                        let me = Candidate {
                            name: &self.cfg.me,
                            data: &self.record.data,
                            join_only: self.join_only,
                        };
                        let them = Candidate {
                            name: &self.cfg.peer,
                            data: &p.data,
                            join_only: p.join_only,
                        };
                        match pick_primary(
                            me,
                            them,
                            &self.cfg.defaultprim,
                            &self.cfg.splitbrain_winner,
                        ) {
                            Ok((name, why)) if name == self.cfg.me => {
                                let reason = format!("both nodes waiting; {why}");
                                self.become_alone(now, reason, out);
                            }
                            Ok((name, why)) => self.note(
                                format!("both nodes waiting; {why}: waiting for {name} to start"),
                                out,
                            ),
                            Err(why) => self.note(format!("both nodes waiting; {why}"), out),
                        }
                    }
                    _ => self.note(
                        format!(
                            "waiting for {peer_name} ({} {}) to settle",
                            p.role, p.readiness
                        ),
                        out,
                    ),
                }
            }
            None => {
                let waited = now.saturating_sub(self.started_at);
                if waited < self.cfg.timeout {
                    return self.note(
                        format!(
                            "waiting up to {} ms for {peer_name}'s heartbeat",
                            self.cfg.timeout.as_millis()
                        ),
                        out,
                    );
                }
                if self.join_only {
                    return self.note(
                        "started with `second`: waiting for a primary".to_string(),
                        out,
                    );
                }
                if self.isolated && !self.witness_back(now, out) {
                    return self.note(
                        format!("isolated: waiting for {peer_name} or a witness to answer"),
                        out,
                    );
                }
                let data = self.record.data;
                if data.may_start_alone_unattended() {
                    let reason = format!(
                        "{peer_name} not heard ({}) and I was ALONE last: nobody holds newer data",
                        self.liveness.describe(now)
                    );
                    return self.become_alone(now, reason, out);
                }
                let why = if data.generation.is_none() {
                    "no data history yet: run `prim` on the node whose data is right".to_string()
                } else if !data.consistent {
                    "my copy is incomplete (interrupted resynchronisation): waiting for \
                     {peer}; `primforce` overrides"
                        .replace("{peer}", &peer_name)
                } else {
                    format!(
                        "{peer_name} not heard and my data may be stale (last role {:?}): \
                         waiting for {peer_name}; `prim`/`primforce` override",
                        data.last_role
                    )
                };
                self.note(why, out);
            }
        }
    }
}
