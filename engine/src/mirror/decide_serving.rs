//! Decisions of a node that serves the application (ALONE or PRIM).

use super::advert::Advert;
use super::arbitrate::keeps_serving;
use super::data::LastRole;
use super::fsm::{Action, Machine};
use super::plan::{DataMode, Script, Step};
use super::role::{Readiness, Role};
use crate::config::{DefaultPrim, SplitBrainWinner};
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
        // A SECOND last heard may be taking over (e.g. ALONE because the replication stream
        // broke, then the peer went silent): the witness decides as for a PRIM.
        let second_may_take_over = self.peer.is_some_and(|p| p.role == Role::Second);
        if second_may_take_over && self.step_down_if_isolated(now, out).is_none() {
            return;
        }
        if self.record.data.last_role == LastRole::Prim
            && let Some(why) = self.peer_cannot_take_over()
        {
            // ALONE after the stream broke was recorded as PRIM (the peer could still take
            // over): no longer so, a restart without it may serve alone.
            let reason = format!("{why}; recording that I serve alone");
            let record = self.with_last_role(LastRole::Alone);
            let steps = vec![Step::Persist(record)];
            return self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
        }
        let Some(p) = self.live_peer() else {
            return;
        };
        if p.role == Role::Second && !p.yielding && p.join_id != self.replication.failed_join {
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
        let Some(witness_said) = self.step_down_if_isolated(now, out) else {
            return;
        };
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
        if self.cfg.has_data && p.join_id == self.replication.failed_join {
            // Whatever the application writes from now on is missing on the peer: a new
            // generation records it, and the peer copies again when it sees it. The peer may
            // still take over before it hears of the break, so the record keeps saying PRIM
            // (a restart without the peer then waits instead of serving alone).
            let mut record = self.alone_record();
            record.data.last_role = LastRole::Prim;
            let reason = format!(
                "the replication stream to {peer} broke: new data generation {}",
                record.data.generation
            );
            let steps = vec![Step::Persist(record)];
            return self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
        }
        let in_sync = p.data.generation == self.record.data.generation && p.data.consistent;
        if self.cfg.has_data && self.copied_join != p.join_id {
            return; // acknowledged only once the copy is complete and the stream up
        }
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
                record.incremental_base = None;
                record.base_from_primary = false;
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
            // The application and the virtual IPs go; the data stays mounted, read-only, to
            // receive the new primary's stream.
            let mut steps = vec![Step::Run(Script::StopPrim), Step::DelVips];
            steps.push(Step::Persist(self.with_last_role(LastRole::HandedOver)));
            steps.extend(self.data_step(DataMode::Receive));
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

    /// Why the peer cannot take over without a new copy, if it cannot: it stopped (a stopped
    /// SECOND never serves on its own), or it heard the data generation started since.
    fn peer_cannot_take_over(&self) -> Option<String> {
        let p = self.peer?;
        let peer = &self.cfg.peer;
        if p.role == Role::Stop {
            return Some(format!("{peer} is stopped"));
        }
        let heard_since = self.lease_base > self.generation_recorded_at;
        let ready_second = p.role == Role::Second && p.readiness == Readiness::Ready;
        (self.liveness.peer_up() && heard_since && !ready_second).then(|| {
            format!(
                "{peer} ({} {}) heard my data generation {}: it cannot take over without a new \
                 copy",
                p.role, p.readiness, self.record.data.generation
            )
        })
    }

    /// When the peer is lost or confirms none of our heartbeats, serve on only if a witness
    /// answers. `Some(what the witness said)` to go on deciding; `None` while the probe runs
    /// or once this node stepped down.
    fn step_down_if_isolated(&mut self, now: Duration, out: &mut Vec<Action>) -> Option<String> {
        let Some(after) = self.isolation_suspected_since(now) else {
            return Some("no split-brain checker configured".to_string());
        };
        match self.witness_verdict(now, after, out)? {
            (true, why) => Some(why),
            (false, why) => {
                self.isolated = true;
                let reason = format!(
                    "{} {} and {why}: this node may be the isolated one, stopping the \
                     application to avoid two primaries",
                    self.cfg.peer,
                    if self.liveness.peer_up() {
                        "confirms none of my recent heartbeats"
                    } else {
                        "lost"
                    }
                );
                self.serving_to_wait(reason, now, out);
                None
            }
        }
    }

    /// PRIM -> ALONE: the peer can no longer take over; a new generation records that it
    /// misses what comes next.
    pub(super) fn prim_to_alone(&mut self, why: String, now: Duration, out: &mut Vec<Action>) {
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

    /// Whether the peer's claim to serve is current: it answers a heartbeat I sent while
    /// serving, or it has said so for a heartbeat timeout while I served. Heartbeats queued
    /// during a cut arrive late when it heals, claiming what the peer did then, and are
    /// followed at once by current ones: acting on them would stop a survivor for nothing.
    fn peer_serving_confirmed(&self, now: Duration, p: &Advert) -> bool {
        let Some(serving_since) = self.serving_since else {
            return true;
        };
        let heard_me_serving = p.echo_incarnation == self.incarnation
            && Duration::from_millis(p.echo_ms) >= serving_since;
        let lasting = self
            .peer_serving_seen_since
            .is_some_and(|seen| now.saturating_sub(seen.max(serving_since)) >= self.cfg.timeout);
        heard_me_serving || lasting
    }

    pub(super) fn resolve_double_primary(
        &mut self,
        now: Duration,
        p: Advert,
        out: &mut Vec<Action>,
    ) {
        if !self.peer_serving_confirmed(now, &p) {
            return;
        }
        let mine = self
            .serving_since
            .map_or(Duration::ZERO, |t| now.saturating_sub(t));
        let theirs = Duration::from_millis(p.serving_ms);
        let (keep, why) = match &self.cfg.splitbrain_winner {
            SplitBrainWinner::Node(winner) => (
                *winner == self.cfg.me,
                format!("splitbrain_winner is {winner}"),
            ),
            SplitBrainWinner::Longest => (
                keeps_serving(mine, theirs, 2 * self.cfg.pulse),
                "the side that served longer wins".to_string(),
            ),
        };
        if keep {
            // Said once per episode (the durations would make every tick's line new).
            let reason = format!(
                "SPLIT BRAIN: {} also serves; I keep serving and my data ({why})",
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
            "SPLIT BRAIN: {} also serves (for {} ms, me for {} ms): I stop serving ({why}); my \
             writes since generation {} diverge from its data",
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
        let steps = self.start_serving_steps(record);
        self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
    }
}
