//! Decisions of a node that serves the application (ALONE or PRIM).

use super::advert::Advert;
use super::arbitrate::keeps_serving;
use super::data::LastRole;
use super::fsm::{Action, Machine, stop_serving_steps};
use super::plan::{Script, Step};
use super::role::{Readiness, Role};
use crate::config::DefaultPrim;
use std::time::Duration;

impl Machine {
    /// After a split brain resolved in our favour, send gratuitous ARPs again.
    pub(super) fn reannounce_vips(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
        if !std::mem::take(&mut self.reannounce) {
            return false;
        }
        let reason = format!(
            "{} stopped serving after serving beside me: re-announcing the virtual IPs",
            self.cfg.peer
        );
        self.begin(self.role, self.role, vec![Step::AddVips], reason, now, out);
        true
    }

    pub(super) fn decide_alone(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.reannounce_vips(now, out) {
            return;
        }
        let Some(p) = self.live_peer() else {
            return;
        };
        if p.role == Role::Second && !p.yielding {
            let reason = format!("{} is SECOND: replicating to it", self.cfg.peer);
            out.push(Action::Log(format!("ALONE -> PRIM: {reason}")));
            self.reason = reason;
            self.set_role(Role::Prim, now);
        } else if p.role.is_serving() {
            self.resolve_double_primary(now, p, out);
        }
    }

    pub(super) fn decide_prim(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.reannounce_vips(now, out) {
            return;
        }
        let peer = self.cfg.peer.clone();
        let mut witness_said = "no split-brain checker configured".to_string();
        if let Some(after) = self.isolation_suspected_since(now) {
            match self.witness_verdict(now, after, out) {
                None => return,
                Some((true, why)) => witness_said = why,
                Some((false, why)) => {
                    self.isolated = true;
                    let reason = format!(
                        "{peer} {} and {why}: this node may be the isolated one, stopping the \
                         application to avoid two primaries",
                        if self.liveness.peer_up() {
                            "confirms none of my recent heartbeats"
                        } else {
                            "lost"
                        }
                    );
                    return self.serving_to_wait(reason, now, out);
                }
            }
        }
        let Some(p) = self.live_peer() else {
            return self.prim_to_alone(format!("{peer} lost; {witness_said}"), now, out);
        };
        if p.role.is_serving() {
            return self.resolve_double_primary(now, p, out);
        }
        if p.role != Role::Second || p.yielding {
            let reason = format!("{peer} is {} (no longer SECOND)", p.role);
            return self.prim_to_alone(reason, now, out);
        }
        let in_sync = p.data.generation == self.record.data.generation && p.data.consistent;
        if !in_sync {
            return;
        }
        if p.join_id != self.acked_join {
            let reason = format!(
                "{peer} holds my data generation {}: in sync, it may take over from now on",
                self.record.data.generation
            );
            if self.record.data.synced != self.record.data.generation
                || self.record.data.last_role != LastRole::Prim
            {
                let mut record = self.with_last_role(LastRole::Prim);
                record.data.synced = record.data.generation;
                self.ack_after_plan = Some(p.join_id);
                return self.begin(
                    Role::Prim,
                    Role::Prim,
                    vec![Step::Persist(record)],
                    reason,
                    now,
                    out,
                );
            }
            out.push(Action::Log(format!("PRIM: {reason}")));
            self.reason = reason;
            self.acked_join = p.join_id;
            return;
        }
        if p.readiness != Readiness::Ready {
            return;
        }
        let wants_back = matches!(&self.cfg.defaultprim, DefaultPrim::Node(n) if *n == peer);
        let why = if self.swap_request {
            Some("swap requested here".to_string())
        } else if p.swap_request {
            Some(format!("swap requested on {peer}"))
        } else if wants_back {
            Some(format!(
                "defaultprim is {peer} and it is SECOND Ready: swapping back"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.swap_request = false;
            let mut steps = stop_serving_steps();
            steps.push(Step::Persist(self.with_last_role(LastRole::HandedOver)));
            self.begin(
                Role::Prim,
                Role::Second,
                steps,
                format!("{why}: handing over to {peer}"),
                now,
                out,
            );
            self.yielding = true;
        }
    }

    /// PRIM -> ALONE: the peer can no longer take over; a new generation records that it
    /// misses what comes next.
    fn prim_to_alone(&mut self, why: String, now: Duration, out: &mut Vec<Action>) {
        let record = self.alone_record();
        let reason = format!("{why}: new data generation {}", record.data.generation);
        self.begin(
            Role::Alone,
            Role::Alone,
            vec![Step::Persist(record)],
            reason,
            now,
            out,
        );
    }

    pub(super) fn resolve_double_primary(
        &mut self,
        now: Duration,
        p: Advert,
        out: &mut Vec<Action>,
    ) {
        let mine = self
            .serving_since
            .map_or(Duration::ZERO, |t| now.saturating_sub(t));
        let theirs = Duration::from_millis(p.serving_ms);
        if keeps_serving(mine, theirs, 2 * self.cfg.pulse) {
            // Said once per episode (the durations would make every tick's line new).
            let reason = format!(
                "SPLIT BRAIN: {} also serves; I keep serving, having served longer",
                self.cfg.peer
            );
            if reason != self.reason {
                out.push(Action::Log(format!(
                    "{reason} ({} ms against {} ms)",
                    mine.as_millis(),
                    theirs.as_millis()
                )));
                self.reason = reason;
            }
            return;
        }
        let reason = format!(
            "SPLIT BRAIN: {} also serves (for {} ms, me for {} ms): I stop serving; my writes \
             since generation {} diverge from its data",
            self.cfg.peer,
            theirs.as_millis(),
            mine.as_millis(),
            self.record.data.synced
        );
        self.serving_to_wait(reason, now, out);
    }

    pub(super) fn become_alone(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        let record = self.alone_record();
        let reason = format!("{reason}; new data generation {}", record.data.generation);
        let steps = vec![
            Step::Persist(record),
            Step::AddVips,
            Step::Run(Script::StartPrim),
        ];
        self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
    }
}
