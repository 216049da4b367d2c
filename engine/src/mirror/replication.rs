//! Replicated directories as the state machine sees them: whom the primary replicates to (a
//! declarative action the driver follows), what the driver reports about that stream, and the
//! SECOND's wait for the primary's copy.
//!
//! The primary replicates to the peer's current *join attempt* (`Advert::join_id`). It tells
//! the SECOND that everything is on its side by advertising `copied_join`; only then does the
//! SECOND record its copy as consistent, and only once that is recorded does the primary
//! acknowledge the join (the SECOND becomes Ready and may take over).

use super::advert::Advert;
use super::fsm::{Action, Machine};
use super::plan::{DataMode, Step};
use super::role::Role;
use super::witness::WitnessProbe;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The stream the primary must keep to its SECOND. Every join attempt starts with a copy of
/// every replicated directory: whatever the SECOND held before may have missed writes made
/// while no stream was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaTarget {
    /// The SECOND's join attempt this stream serves.
    pub join_id: u64,
    /// The SECOND holds a complete copy of the generation this node's change journal starts
    /// from: copying the journal's paths suffices (else the trees are compared).
    pub incremental: bool,
    /// The SECOND was the primary at that generation: the paths its own change journal names
    /// are copied too (writes it may hold that this node never received).
    #[serde(default)]
    pub peer_journal: bool,
}

/// What the driver reports about the stream to a [`ReplicaTarget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationEvent {
    /// The copy is complete and durable on the peer and the stream is up: from now on every change reaches it before the application's call returns.
    Up { join_id: u64, detail: String },
    /// The stream could not be set up, the copy failed, or the stream broke (a send timed out,
    /// the connection dropped, the peer refused an operation): the peer misses changes.
    Broken { join_id: u64, reason: String },
}

/// The primary's side of replication, kept by the machine.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Replication {
    /// What the driver was last told to do.
    pub target: Option<ReplicaTarget>,
    /// A join attempt whose stream broke: it is not retried; the peer starts a new attempt
    /// when it sees the generation that the break started.
    pub failed_join: u64,
    /// Since when the driver holds the writes that failed to reach the peer (it does so as
    /// soon as the stream breaks or is closed): they return to the application once the peer
    /// knows that its copy misses them, or is lost, so that it never takes over without
    /// them. Pushed forward while a plan runs (a new generation being recorded).
    pub writes_held_since: Option<Duration>,
}

impl Machine {
    fn wanted_replication(&self) -> Option<ReplicaTarget> {
        if !self.cfg.has_data || self.data_mode != DataMode::Serve || !self.role.is_serving() {
            return None;
        }
        let p = self.live_peer()?;
        if p.role != Role::Second || p.yielding || p.join_id == 0 {
            return None;
        }
        if self.replication.failed_join == p.join_id {
            return None;
        }
        if let Some(t) = self.replication.target.filter(|t| t.join_id == p.join_id) {
            return Some(t);
        }
        let incremental =
            self.record.incremental_base.is_some() && p.join_base == self.record.incremental_base;
        Some(ReplicaTarget {
            join_id: p.join_id,
            incremental,
            peer_journal: incremental && self.record.base_from_primary,
        })
    }

    /// Tell the driver when the stream it must keep changes.
    pub(super) fn sync_replication(&mut self, now: Duration, out: &mut Vec<Action>) {
        let wanted = self.wanted_replication();
        if wanted == self.replication.target {
            return;
        }
        let peer = &self.cfg.peer;
        match wanted {
            Some(t) => out.push(Action::Log(format!(
                "replicating to {peer} (join attempt {:016x}): copying {} while the \
                 application runs; its writes wait only while the last changes are copied",
                t.join_id,
                match (t.incremental, t.peer_journal) {
                    (true, false) => {
                        "what changed since it last held my data (it holds a complete copy \
                         of the generation my change journal starts from)"
                    }
                    (true, true) => {
                        "what changed since I took over from it, and what its own change \
                         journal names (writes it may hold that I never received)"
                    }
                    (false, _) => "what differs between our trees",
                }
            ))),
            None => out.push(Action::Log(format!("no longer replicating to {peer}"))),
        }
        if wanted.map(|t| t.join_id) != Some(self.copied_join) {
            self.copied_join = 0;
        }
        if self.replication.target.is_some() && self.replication.writes_held_since.is_none() {
            // Writes in flight on the closed stream may not have reached the peer.
            self.replication.writes_held_since = Some(now);
        }
        self.replication.target = wanted;
        out.push(Action::Replicate(wanted));
    }

    pub(super) fn on_replication(
        &mut self,
        now: Duration,
        event: ReplicationEvent,
        out: &mut Vec<Action>,
    ) {
        let peer = self.cfg.peer.clone();
        let current = self.replication.target.map(|t| t.join_id);
        match event {
            ReplicationEvent::Up { join_id, detail } if current == Some(join_id) => {
                self.copied_join = join_id;
                out.push(Action::Log(format!(
                    "replication to {peer} is up: {detail}"
                )));
            }
            ReplicationEvent::Broken { join_id, reason } if current == Some(join_id) => {
                self.copied_join = 0;
                self.replication.failed_join = join_id;
                self.replication.writes_held_since = Some(now);
                out.push(Action::Log(format!(
                    "replication to {peer} broke: {reason}; writes wait until {peer} knows \
                     that its copy misses them (or is lost)"
                )));
            }
            ReplicationEvent::Up { join_id, .. } | ReplicationEvent::Broken { join_id, .. } => {
                out.push(Action::Log(format!(
                    "ignored a report on replication to join attempt {join_id:016x}, which is \
                     no longer the one served"
                )));
            }
        }
    }

    /// Release the held writes once no plan runs (the new generation is recorded) and the
    /// peer has heard so (it confirmed a heartbeat sent since), or is lost and, with a
    /// split-brain checker, a witness answered this node (an isolated node must not
    /// acknowledge writes the peer will lack).
    pub(super) fn release_writes(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(since) = self.replication.writes_held_since else {
            return;
        };
        if self.plan.is_some() {
            self.replication.writes_held_since = Some(now);
            return;
        }
        let peer = &self.cfg.peer;
        let why = if !self.liveness.peer_up() {
            match &self.witness {
                _ if self.cfg.witness_timeout.is_none() => format!("{peer} is lost"),
                WitnessProbe::Done {
                    since,
                    reachable: true,
                    detail,
                } if *since >= self.lost_at => format!("{peer} is lost and {detail}"),
                _ => return,
            }
        } else if self.lease_base > since {
            format!(
                "{peer} heard that its copy misses them and will not take over without a new copy"
            )
        } else {
            return;
        };
        self.replication.writes_held_since = None;
        out.push(Action::Log(format!(
            "held writes resume after {} ms: {why}",
            now.saturating_sub(since).as_millis()
        )));
        out.push(Action::ReleaseWrites);
    }

    /// As SECOND: the primary says that its stream to this join attempt broke.
    pub(super) fn stream_to_me_broke(&self, p: &Advert) -> bool {
        self.role == Role::Second && self.join_id != 0 && p.broken_join == self.join_id
    }

    /// As SECOND waiting for the primary's copy: done when the primary says so, given up when
    /// the primary stops serving, is lost, or moves to another generation (its stream broke).
    /// Returns whether the wait was given up (the plan is dropped; the decisions go on).
    pub(super) fn watch_copy(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
        let Some(Step::AwaitCopy { generation }) =
            self.plan.as_ref().and_then(|p| p.running.clone())
        else {
            return false;
        };
        let peer = self.cfg.peer.clone();
        let why = match self.live_peer() {
            Some(p) if self.stream_to_me_broke(&p) => {
                format!("{peer} reports that its stream to me broke")
            }
            Some(p) if p.role.is_serving() && p.data.generation == generation => {
                if p.copied_join == self.join_id {
                    let detail = format!("{peer} copied its data generation {generation} here");
                    self.on_step_done(now, true, detail, out);
                }
                return false;
            }
            Some(p) if p.role.is_serving() => format!(
                "{peer} moved to data generation {} during the copy",
                p.data.generation
            ),
            Some(p) => format!("{peer} is now {} {}", p.role, p.readiness),
            None => format!("{peer} lost"),
        };
        self.plan = None;
        self.second_ready = false;
        let reason = format!("copy from the primary interrupted: {why}; my copy stays incomplete");
        out.push(Action::Log(format!("{}: {reason}", self.role)));
        self.reason = reason;
        true
    }
}
