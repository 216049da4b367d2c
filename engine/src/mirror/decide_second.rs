//! Decisions of a SECOND: staying in sync, taking over, joining a primary.

use super::advert::Advert;
use super::data::{LastRole, Relation};
use super::fsm::{Action, Machine, splitmix64};
use super::plan::{DataMode, Script, Step};
use super::role::Role;
use super::witness::WitnessProbe;
use std::time::Duration;

impl Machine {
    pub(super) fn decide_second(&mut self, now: Duration, out: &mut Vec<Action>) {
        let peer = self.cfg.peer.clone();
        let Some(p) = self.live_peer() else {
            if self.yielding {
                let reason = format!(
                    "{peer} lost while I was handing the primary role over: it may have \
                     served; waiting for it"
                );
                return self.begin(Role::Second, Role::Wait, vec![], reason, now, out);
            }
            let refusal = if !self.second_ready || !self.record.data.consistent {
                Some("my data was not up to date (resynchronisation unfinished)".to_string())
            } else if !self.failover {
                Some("failover is off".to_string())
            } else {
                None
            };
            if let Some(refusal) = refusal {
                let reason = format!("{peer} lost and {refusal}: WAIT");
                return self.second_to_wait(reason, now, out);
            }
            if let Some(probe_timeout) = self.cfg.witness_timeout {
                // Take over only once an isolated primary has surely stepped down: it notices
                // the loss within the timeout and its own probe fails within probe_timeout.
                let hold_off = self.cfg.timeout + probe_timeout + 2 * self.cfg.pulse;
                let silent = self.liveness.silent_for(now).unwrap_or(Duration::MAX);
                match self.witness_verdict(now, self.lost_at, out) {
                    None => return,
                    Some((false, why)) => {
                        let reason = format!(
                            "{peer} lost and {why}: this node may be the isolated one: WAIT"
                        );
                        return self.second_to_wait(reason, now, out);
                    }
                    Some((true, _)) if silent < hold_off => return,
                    Some((true, _)) => {}
                }
            }
            let why = match &self.witness {
                WitnessProbe::Done { detail, .. } => format!("; {detail}"),
                _ => String::new(),
            };
            let reason = format!(
                "{peer} lost ({}){why}: taking over",
                self.liveness.describe(now)
            );
            return self.take_over(now, reason, out);
        };
        if self.yielding {
            if p.role.is_serving() {
                self.yielding = false;
                self.join_as_second(now, p, out);
            } else if p.role == Role::Wait || p.role == Role::Stop {
                let reason = format!(
                    "{peer} did not take over ({} {}): serving again",
                    p.role, p.readiness
                );
                self.become_alone(now, reason, out);
            }
            return;
        }
        let broken = self.stream_to_me_broke(&p);
        if broken && self.second_ready {
            self.second_ready = false;
            let reason = format!(
                "{peer}'s replication stream to me broke: my copy misses writes, not Ready"
            );
            out.push(Action::Log(format!("SECOND: {reason}")));
            self.reason = reason;
        }
        if p.role.is_serving() {
            if p.data.generation != self.record.data.generation || !self.record.data.consistent {
                let reason = format!(
                    "{peer} is at data generation {} and I am at {}: resynchronising",
                    p.data.generation, self.record.data.generation
                );
                self.second_ready = false;
                return self.resync(now, p, reason, out);
            }
            // Ready only once the primary has recorded that we are in sync: from then on it
            // knows that we may take over, and never restarts alone on its own.
            if !self.second_ready
                && !broken
                && p.acked_join == self.join_id
                && p.data.synced == self.record.data.generation
                && p.data.last_role == LastRole::Prim
            {
                self.second_ready = true;
                let reason = format!(
                    "{peer} recorded that we are in sync at generation {}",
                    self.record.data.generation
                );
                out.push(Action::Log(format!("SECOND Ready: {reason}")));
                self.reason = reason;
            }
            return;
        }
        if p.yielding && self.second_ready && self.record.data.consistent {
            let reason = format!("{peer} handed the primary role over: taking over");
            return self.take_over(now, reason, out);
        }
        let refusal = if !self.second_ready || !self.record.data.consistent {
            Some("my data is not up to date")
        } else if !self.failover {
            Some("failover is off")
        } else {
            None
        };
        let state = format!("{peer} is {} {} (not serving)", p.role, p.readiness);
        match refusal {
            Some(refusal) => {
                let reason = format!("{state} and {refusal}: WAIT");
                self.second_to_wait(reason, now, out)
            }
            None => self.take_over(
                now,
                format!("{state} and my data is up to date: taking over"),
                out,
            ),
        }
    }

    pub(super) fn take_over(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        let record = self.alone_record();
        let reason = format!("{reason}; new data generation {}", record.data.generation);
        let mut steps = vec![Step::Run(Script::StopSecond)];
        steps.extend(self.start_serving_steps(record));
        self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
    }

    pub(super) fn join_as_second(&mut self, now: Duration, p: Advert, out: &mut Vec<Action>) {
        let peer = &self.cfg.peer;
        let mine = self.record.data.generation;
        let relation = self.record.data.relation_to(&p.data);
        let reason = match relation {
            Relation::Same => format!("{peer} is {}; same data generation {mine}", p.role),
            Relation::PeerNewer | Relation::BothEmpty => format!(
                "{peer} is {} with newer data (generation {} vs mine {mine})",
                p.role, p.data.generation
            ),
            Relation::MineNewer | Relation::Diverged => format!(
                "{peer} is {} with generation {}; my generation {mine} has changes it lacks \
                 (split brain or primforce): they are superseded by the primary's{}",
                p.role,
                p.data.generation,
                if self.cfg.has_data {
                    ", my changed files saved aside first"
                } else {
                    ""
                }
            ),
        };
        self.join_only = false;
        self.new_join_id();
        let mut steps = Vec::new();
        if self.cfg.has_data && matches!(relation, Relation::MineNewer | Relation::Diverged) {
            steps.push(Step::Quarantine);
        }
        steps.extend(self.data_step(DataMode::Receive));
        steps.push(Step::Run(Script::StartSecond));
        steps.extend(self.sync_steps(&p));
        self.begin(
            Role::Second,
            Role::Second,
            steps,
            format!("{reason}: SECOND"),
            now,
            out,
        );
    }

    pub(super) fn resync(
        &mut self,
        now: Duration,
        p: Advert,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        self.new_join_id();
        let steps = self.sync_steps(&p);
        self.begin(Role::Second, Role::Second, steps, reason, now, out);
    }

    pub(super) fn new_join_id(&mut self) {
        let data = self.record.data;
        self.join_base = (data.consistent && !data.generation.is_none()).then_some(data.generation);
        self.generations_made += 1;
        self.join_id = splitmix64(self.incarnation ^ self.generations_made.rotate_left(17)) | 1;
    }

    /// Mark the copy incomplete, wait for the primary's copy, mark it complete.
    pub(super) fn sync_steps(&self, p: &Advert) -> Vec<Step> {
        let mut during = self.with_last_role(LastRole::Second);
        during.started = true;
        let mut after = during;
        after.data.generation = p.data.generation;
        after.data.previous = p.data.previous;
        after.data.synced = p.data.generation;
        after.data.consistent = true;
        if !self.cfg.has_data {
            return vec![Step::Persist(after)];
        }
        // With data, every join waits for the primary's copy, even at the same generation:
        // the primary may have written while no stream was up.
        during.data.consistent = false;
        let copy = Step::AwaitCopy {
            generation: p.data.generation,
        };
        vec![Step::Persist(during), copy, Step::Persist(after)]
    }
}
