//! The mirror module state machine: `(state, now, input) -> (state, actions)`, no I/O.
//!
//! Drivers feed it heartbeats, ticks, step completions, checker reports, witness verdicts and
//! administrator commands; it answers with actions (steps to carry out one at a time, log
//! lines, the set of checkers that must run, witness probes). Every decision it takes is
//! logged with its reason.

use super::advert::{Advert, CopyFigures};
use super::data::{DataRecord, LastRole, Relation};
use super::plan::{DataMode, NodeRecord, Plan, Script, Step};
use super::replication::{ReplicaTarget, Replication, ReplicationEvent};
use super::role::{Readiness, Role};
use super::witness::WitnessProbe;
use crate::checkers::restart_budget::RestartBudget;
use crate::config::{CheckAction, CheckClass, DefaultPrim, SplitBrainWinner};
use crate::heartbeat::liveness::{Liveness, LivenessEvent};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// The part of the configuration the decisions depend on.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub me: String,
    pub peer: String,
    /// Heartbeat networks, by lan name, in the order the driver numbers them.
    pub networks: Vec<String>,
    pub pulse: Duration,
    pub timeout: Duration,
    pub failover: bool,
    pub defaultprim: DefaultPrim,
    pub splitbrain_winner: SplitBrainWinner,
    pub maxloop: u32,
    pub loop_interval: Duration,
    /// How long a witness probe may take, when a split-brain checker is configured.
    pub witness_timeout: Option<Duration>,
    pub checkers: Vec<CheckerSpec>,
    /// The module replicates directories (`<rfs>`).
    pub has_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerSpec {
    pub ident: String,
    pub class: CheckClass,
    pub action: CheckAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Time passes (the driver ticks a few times per pulse).
    Tick,
    /// An authenticated heartbeat from the peer arrived on network number `net`.
    Heartbeat { net: usize, advert: Advert },
    /// The step last handed out finished.
    StepDone { ok: bool, detail: String },
    /// A checker changed verdict.
    Checker {
        ident: String,
        failing: bool,
        detail: String,
    },
    /// Result of the witness probe the machine asked for.
    Witness { reachable: bool, detail: String },
    /// News of the stream to the peer asked for by `Action::Replicate`.
    Replication(ReplicationEvent),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Carry out this step, then report `Input::StepDone`.
    Step(Step),
    /// One line for the module log.
    Log(String),
    /// Exactly these checkers must run now (by ident).
    Checkers(BTreeSet<String>),
    /// Ping the split-brain witnesses and report `Input::Witness`.
    ProbeWitnesses,
    /// Keep exactly this stream to the peer (`None`: none), reporting `Input::Replication`.
    Replicate(Option<ReplicaTarget>),
    /// Let the writes held since the stream broke return to the application.
    ReleaseWrites,
}

/// Administrator commands (the CLI's verbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Start,
    /// Start, never becoming primary on its own.
    Second,
    /// Start as primary (refused if this node may have missed writes).
    Prim,
    /// Start as primary whatever the state of the data.
    Primforce,
    Stop,
    /// Restart the application locally (stop script then start script).
    Restart,
    /// Stop, let the peer take over, then start again.
    Stopstart,
    /// Move the primary role to the peer.
    Swap,
    Failover(bool),
}

/// Everything the status displays need.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub node: String,
    pub role: Role,
    pub readiness: Readiness,
    pub reason: String,
    pub data: DataRecord,
    pub failover: bool,
    pub peer: PeerStatus,
    pub failing_checkers: BTreeMap<String, String>,
    pub restarts_in_interval: String,
    pub running_step: Option<String>,
    pub data_mode: DataMode,
    /// As primary: the stream kept to the peer, and whether it is up (copy done).
    pub replicating_to: Option<ReplicaTarget>,
    pub replication_up: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeerStatus {
    pub node: String,
    pub up: bool,
    pub role: Option<Role>,
    pub readiness: Option<Readiness>,
    pub data: Option<DataRecord>,
    /// Milliseconds since the last heartbeat, per network (`None`: never heard).
    pub heard_ms_ago: Vec<(String, Option<u64>)>,
    /// The peer's copy to this node, while it runs.
    #[serde(default)]
    pub copy: Option<CopyFigures>,
}

pub struct Machine {
    pub(super) cfg: MachineConfig,
    pub(super) role: Role,
    pub(super) record: NodeRecord,
    pub(super) plan: Option<Plan>,
    pub(super) role_after_plan: Role,
    pub(super) incarnation: u64,
    pub(super) liveness: Liveness,
    pub(super) peer: Option<Advert>,
    pub(super) started_at: Duration,
    /// A failure that stops automatic moves until the administrator acts.
    pub(super) held: Option<String>,
    pub(super) failover: bool,
    pub(super) join_only: bool,
    pub(super) yielding: bool,
    pub(super) swap_request: bool,
    pub(super) second_ready: bool,
    /// Stepped down because no witness answered: stay down until the peer or a witness is
    /// heard again.
    pub(super) isolated: bool,
    /// The peer stopped serving while this node serves (a split brain resolved in our favour):
    /// clients may have learnt the peer's MAC for the virtual IPs, announce them again.
    pub(super) reannounce: bool,
    /// As SECOND: the current join attempt, which the primary must acknowledge.
    pub(super) join_id: u64,
    /// As primary: the peer's join attempt whose in-sync state is recorded on disk.
    pub(super) acked_join: u64,
    /// As primary: the join attempt to acknowledge once the running plan has persisted it.
    pub(super) ack_after_plan: Option<u64>,
    pub(super) serving_since: Option<Duration>,
    pub(super) budget: RestartBudget,
    pub(super) failing: BTreeMap<String, String>,
    pub(super) witness: WitnessProbe,
    pub(super) lost_at: Duration,
    /// Latest `sent_ms` received from the peer's current incarnation.
    pub(super) peer_sent_ms: u64,
    /// Since when every advert of the peer says it serves (see `resolve_double_primary`).
    pub(super) peer_serving_seen_since: Option<Duration>,
    /// Send time of our latest heartbeat the peer confirmed receiving.
    pub(super) lease_base: Duration,
    /// `stopstart`: start again once the peer serves, or at this time.
    pub(super) restart_after_stop: Option<Duration>,
    /// Checker actions that arrived while a plan ran.
    pub(super) deferred: VecDeque<(String, CheckAction)>,
    /// A stop asked for during a plan; `Some(keep_started)`.
    pub(super) deferred_stop: Option<bool>,
    pub(super) reason: String,
    pub(super) active_checkers: BTreeSet<String>,
    pub(super) generations_made: u64,
    pub(super) data_mode: DataMode,
    pub(super) replication: Replication,
    /// As primary: the peer's join attempt whose stream is up, copy included.
    pub(super) copied_join: u64,
    /// When the current data generation was recorded (adverts carry it from then on).
    pub(super) generation_recorded_at: Duration,
    /// As SECOND: the complete copy this join attempt starts from, if any.
    pub(super) join_base: Option<super::data::Generation>,
}

impl Machine {
    /// A machine for a daemon that just started, with the record it persisted before.
    /// `incarnation` must be random per daemon start.
    pub fn new(
        cfg: MachineConfig,
        record: NodeRecord,
        incarnation: u64,
        now: Duration,
    ) -> (Machine, Vec<Action>) {
        let liveness = Liveness::new(cfg.networks.clone(), cfg.timeout);
        let budget = RestartBudget::new(cfg.maxloop, cfg.loop_interval);
        let failover = cfg.failover;
        let mut m = Machine {
            cfg,
            role: Role::Stop,
            record,
            plan: None,
            role_after_plan: Role::Stop,
            incarnation,
            liveness,
            peer: None,
            started_at: now,
            held: None,
            failover,
            join_only: false,
            yielding: false,
            swap_request: false,
            second_ready: false,
            isolated: false,
            reannounce: false,
            join_id: 0,
            acked_join: 0,
            ack_after_plan: None,
            serving_since: None,
            budget,
            failing: BTreeMap::new(),
            witness: WitnessProbe::Idle,
            lost_at: Duration::ZERO,
            peer_sent_ms: 0,
            peer_serving_seen_since: None,
            lease_base: Duration::ZERO,
            restart_after_stop: None,
            deferred: VecDeque::new(),
            deferred_stop: None,
            reason: "stopped".to_string(),
            active_checkers: BTreeSet::new(),
            generations_made: 0,
            data_mode: DataMode::Off,
            replication: Replication::default(),
            copied_join: 0,
            generation_recorded_at: now,
            join_base: None,
        };
        let mut out = vec![Action::Log(format!(
            "daemon started; data generation {} (last in sync with {}: {}), last role {:?}{}",
            m.record.data.generation,
            m.cfg.peer,
            m.record.data.synced,
            m.record.data.last_role,
            if m.record.data.consistent {
                ""
            } else {
                ", copy INCOMPLETE (interrupted resynchronisation)"
            }
        ))];
        if m.record.started {
            out.push(Action::Log(
                "the module was started when the daemon last stopped: starting it again"
                    .to_string(),
            ));
            m.start(now, false, &mut out);
        }
        (m, out)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The role this node has decided on: the role after the running plan, if any. A node
    /// stopping the application still shows its serving role, but has decided to stop.
    pub fn intended_role(&self) -> Role {
        if self.plan.is_some() {
            self.role_after_plan
        } else {
            self.role
        }
    }

    pub fn readiness(&self) -> Readiness {
        if self.plan.is_some() {
            return Readiness::Transient;
        }
        match self.role {
            Role::Stop | Role::Wait => Readiness::NotReady,
            Role::Alone | Role::Prim => Readiness::Ready,
            Role::Second if self.second_ready => Readiness::Ready,
            Role::Second => Readiness::Transient,
        }
    }

    pub fn record(&self) -> &NodeRecord {
        &self.record
    }

    /// What goes into the next heartbeat.
    pub fn advert(&self, now: Duration) -> Advert {
        Advert {
            incarnation: self.incarnation,
            role: self.role,
            readiness: self.readiness(),
            data: self.record.data,
            yielding: self.yielding,
            swap_request: self.swap_request,
            serving_ms: self
                .serving_since
                .map_or(0, |t| now.saturating_sub(t).as_millis() as u64),
            join_only: self.join_only,
            join_id: self.join_id,
            acked_join: self.acked_join,
            copied_join: self.copied_join,
            broken_join: self.replication.failed_join,
            join_base: self.join_base,
            copy: None,
            durable: None,
            sent_ms: now.as_millis() as u64,
            echo_ms: self.peer_sent_ms,
            echo_incarnation: self.peer.map_or(0, |p| p.incarnation),
        }
    }

    pub fn status(&self, now: Duration) -> Status {
        let peer_up = self.liveness.peer_up();
        Status {
            node: self.cfg.me.clone(),
            role: self.intended_role(),
            readiness: self.readiness(),
            reason: self.reason.clone(),
            data: self.record.data,
            failover: self.failover,
            peer: PeerStatus {
                node: self.cfg.peer.clone(),
                up: peer_up,
                role: self.peer.filter(|_| peer_up).map(|p| p.role),
                readiness: self.peer.filter(|_| peer_up).map(|p| p.readiness),
                data: self.peer.map(|p| p.data),
                heard_ms_ago: self.liveness.per_network(now),
                copy: self.peer.filter(|_| peer_up).and_then(|p| p.copy),
            },
            failing_checkers: self.failing.clone(),
            restarts_in_interval: format!(
                "{} of maxloop {} within {}",
                self.budget.used(now),
                self.budget.maxloop(),
                humantime::format_duration(self.budget.interval())
            ),
            running_step: self
                .plan
                .as_ref()
                .and_then(|p| p.running.as_ref())
                .map(|s| format!("{s:?}")),
            data_mode: self.data_mode,
            replicating_to: self.replication.target,
            replication_up: self
                .replication
                .target
                .is_some_and(|t| t.join_id == self.copied_join),
        }
    }

    /// Feed one input; returns what to do.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Tick => {
                let events = self.liveness.poll(now);
                self.on_liveness(now, events, &mut out);
            }
            Input::Heartbeat { net, advert } => {
                self.on_advert(now, advert, &mut out);
                let events = self.liveness.heard(net, now);
                self.on_liveness(now, events, &mut out);
            }
            Input::StepDone { ok, detail } => self.on_step_done(now, ok, detail, &mut out),
            Input::Checker {
                ident,
                failing,
                detail,
            } => self.on_checker(now, ident, failing, detail, &mut out),
            Input::Witness { reachable, detail } => {
                if let WitnessProbe::Running { since } = self.witness {
                    out.push(Action::Log(format!("split-brain witness probe: {detail}")));
                    self.witness = WitnessProbe::Done {
                        since,
                        reachable,
                        detail,
                    };
                }
            }
            Input::Replication(event) => self.on_replication(now, event, &mut out),
        }
        self.decide(now, &mut out);
        self.sync_checkers(&mut out);
        self.sync_replication(now, &mut out);
        self.release_writes(now, &mut out);
        out
    }

    // ----- inputs ---------------------------------------------------------------------

    pub(super) fn on_advert(&mut self, now: Duration, advert: Advert, out: &mut Vec<Action>) {
        if self
            .peer
            .is_some_and(|p| p.incarnation == advert.incarnation)
        {
            self.peer_sent_ms = self.peer_sent_ms.max(advert.sent_ms);
        } else {
            self.peer_sent_ms = advert.sent_ms;
        }
        if advert.echo_incarnation == self.incarnation {
            let echoed = Duration::from_millis(advert.echo_ms).min(now);
            self.lease_base = self.lease_base.max(echoed);
        }
        self.peer_serving_seen_since = if advert.role.is_serving() {
            Some(self.peer_serving_seen_since.unwrap_or(now))
        } else {
            None
        };
        match &self.peer {
            Some(old) if old.incarnation != advert.incarnation => out.push(Action::Log(format!(
                "{} restarted (new daemon incarnation); it is now {} {}",
                self.cfg.peer, advert.role, advert.readiness
            ))),
            Some(old) if (old.role, old.readiness) != (advert.role, advert.readiness) => {
                out.push(Action::Log(format!(
                    "{} is now {} {} (was {} {})",
                    self.cfg.peer, advert.role, advert.readiness, old.role, old.readiness
                )))
            }
            None => out.push(Action::Log(format!(
                "{} is {} {}, data generation {}",
                self.cfg.peer, advert.role, advert.readiness, advert.data.generation
            ))),
            _ => {}
        }
        // A peer that served beside us (split brain) shows it by stopping to serve, or by
        // coming back with a data generation that diverged from ours.
        let peer_was_serving = self.peer.is_some_and(|p| p.role.is_serving());
        let diverged = self.record.data.relation_to(&advert.data) == Relation::Diverged
            && self
                .peer
                .is_none_or(|p| p.data.generation != advert.data.generation);
        if self.role.is_serving() && (diverged || (peer_was_serving && !advert.role.is_serving())) {
            if diverged {
                out.push(Action::Log(format!(
                    "SPLIT BRAIN: {} served on its own meanwhile (its generation {} diverges from \
                     mine {} since {})",
                    self.cfg.peer,
                    advert.data.generation,
                    self.record.data.generation,
                    self.record.data.synced
                )));
            }
            self.reannounce = true;
        }
        self.peer = Some(advert);
    }

    pub(super) fn on_liveness(
        &mut self,
        now: Duration,
        events: Vec<LivenessEvent>,
        out: &mut Vec<Action>,
    ) {
        for event in events {
            match event {
                LivenessEvent::PeerFound { net } => {
                    self.witness = WitnessProbe::Idle;
                    self.isolated = false;
                    out.push(Action::Log(format!(
                        "{} heard on heartbeat {net}",
                        self.cfg.peer
                    )));
                }
                LivenessEvent::NetworkSilent { net, silent_for } => out.push(Action::Log(format!(
                    "heartbeat {net} silent for {} ms; {} still heard on another network",
                    silent_for.as_millis(),
                    self.cfg.peer
                ))),
                LivenessEvent::NetworkBack { net } => out.push(Action::Log(format!(
                    "heartbeat {net} carries heartbeats again"
                ))),
                LivenessEvent::PeerLost { detail } => {
                    self.lost_at = now;
                    self.witness = WitnessProbe::Idle;
                    out.push(Action::Log(format!(
                        "{} lost: {detail} (timeout {} ms)",
                        self.cfg.peer,
                        self.cfg.timeout.as_millis()
                    )));
                }
            }
        }
    }

    pub(super) fn on_step_done(
        &mut self,
        now: Duration,
        ok: bool,
        detail: String,
        out: &mut Vec<Action>,
    ) {
        let Some(plan) = self.plan.as_mut() else {
            out.push(Action::Log(format!(
                "ignored a step report with no step running: {detail}"
            )));
            return;
        };
        let Some(step) = plan.running.take() else {
            out.push(Action::Log(format!(
                "ignored a step report with no step running: {detail}"
            )));
            return;
        };
        if let Step::Data(mode) = step
            && (ok || mode == DataMode::Off)
        {
            // A failed unmount still ends replication: the driver detached what it could.
            self.data_mode = mode;
        }
        if ok {
            if let Step::Persist(record) = &step {
                if record.data.generation != self.record.data.generation {
                    self.generation_recorded_at = now;
                }
                // Advertised only once durable: the peer decides on what we advertise.
                self.record = *record;
            }
            out.push(Action::Log(step_report(&step, &detail)));
        } else if step.failure_aborts() {
            out.push(Action::Log(format!(
                "{} FAILED: {detail}",
                step_name(&step)
            )));
            self.abort_plan(now, &step, detail, out);
            return;
        } else {
            out.push(Action::Log(format!(
                "{} failed: {detail} (going on: checkers watch the application)",
                step_name(&step)
            )));
        }
        self.next_step(now, out);
    }

    // ----- plans ----------------------------------------------------------------------

    /// Start a plan: `shown` is the role advertised while it runs (a plan that stops the
    /// application keeps showing the serving role until the end), `then` the role after.
    pub(super) fn begin(
        &mut self,
        shown: Role,
        then: Role,
        steps: Vec<Step>,
        reason: String,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        if self.role != then {
            out.push(Action::Log(format!("{} -> {then}: {reason}", self.role)));
        } else {
            out.push(Action::Log(format!("{}: {reason}", self.role)));
        }
        self.reason = reason;
        self.set_role(shown, now);
        self.role_after_plan = then;
        self.plan = Some(Plan {
            steps: steps.into(),
            running: None,
        });
        self.next_step(now, out);
    }

    pub(super) fn next_step(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        if let Some(step) = plan.steps.pop_front() {
            plan.running = Some(step.clone());
            if let Step::AwaitCopy { generation } = step {
                if let Some(keep_started) = self.deferred_stop {
                    self.stop_during_copy(now, keep_started, out);
                    return;
                }
                out.push(Action::Log(format!(
                    "waiting for {} to copy its data generation {generation} here",
                    self.cfg.peer
                )));
            } else {
                out.push(Action::Step(step));
            }
            return;
        }
        self.plan = None;
        let then = self.role_after_plan;
        self.set_role(then, now);
        // `take()` runs whatever the role: the pending ack is consumed either way.
        if let Some(join_id) = self.ack_after_plan.take()
            && then == Role::Prim
        {
            self.acked_join = join_id;
        }
        out.push(Action::Log(format!("{} {}", self.role, self.readiness())));
        if let Some(keep_started) = self.deferred_stop.take() {
            let reason = "stop requested during the previous transition".to_string();
            self.stop_keeping(now, reason, keep_started, out);
            return;
        }
        while self.plan.is_none() {
            let Some((ident, action)) = self.deferred.pop_front() else {
                break;
            };
            self.apply_checker_action(now, ident, action, out);
        }
    }

    /// Waiting for the primary's copy (which may take long).
    pub(super) fn awaiting_copy(&self) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|p| matches!(p.running, Some(Step::AwaitCopy { .. })))
    }

    pub(super) fn abort_plan(
        &mut self,
        now: Duration,
        step: &Step,
        detail: String,
        out: &mut Vec<Action>,
    ) {
        self.plan = None;
        let failure = format!("{} failed: {detail}", step_name(step));
        self.held = Some(failure.clone());
        // Undo what may already serve; the application has not been started by this plan
        // (steps that abort come before the start scripts).
        let mut steps = match self.role_after_plan {
            Role::Alone | Role::Prim => vec![Step::DelVips],
            Role::Second => vec![Step::Run(Script::StopSecond)],
            _ => vec![],
        };
        steps.extend(self.data_step(DataMode::Off));
        let reason = format!("{failure}; waiting for the administrator (fix, then stop/start)");
        self.begin(self.role, Role::Wait, steps, reason, now, out);
    }

    /// SECOND -> WAIT: stop_second, then wait.
    pub(super) fn second_to_wait(&mut self, reason: String, now: Duration, out: &mut Vec<Action>) {
        let mut steps = vec![Step::Run(Script::StopSecond)];
        steps.extend(self.data_step(DataMode::Off));
        self.begin(Role::Second, Role::Wait, steps, reason, now, out);
    }

    /// PRIM/ALONE -> WAIT: the application is stopped and the VIPs removed; the serving role
    /// is still advertised until then, so that the peer does not take over too early.
    pub(super) fn serving_to_wait(&mut self, reason: String, now: Duration, out: &mut Vec<Action>) {
        let steps = self.stop_serving_steps();
        self.begin(self.role, Role::Wait, steps, reason, now, out);
    }

    pub(super) fn set_role(&mut self, role: Role, now: Duration) {
        if role.is_serving() {
            if self.serving_since.is_none() {
                self.serving_since = Some(now);
            }
            self.swap_request = false;
        } else {
            self.serving_since = None;
        }
        if role != Role::Second {
            self.second_ready = false;
            self.yielding = false;
        }
        if role != self.role && role == Role::Stop {
            self.failing.clear();
        }
        self.role = role;
    }

    /// Keep `Action::Checkers` in line with the role: `both` checkers run while started,
    /// `prim` ones while serving and settled, and a failing one keeps running while its
    /// failure holds the module in WAIT so that its recovery is seen.
    pub(super) fn sync_checkers(&mut self, out: &mut Vec<Action>) {
        let started = self.role != Role::Stop;
        let serving = self.role.is_serving() && self.plan.is_none();
        let wanted: BTreeSet<String> = self
            .cfg
            .checkers
            .iter()
            .filter(|c| {
                started
                    && (c.class == CheckClass::Both
                        || serving
                        || (c.action == CheckAction::Wait && self.failing.contains_key(&c.ident)))
            })
            .map(|c| c.ident.clone())
            .collect();
        if wanted != self.active_checkers {
            self.failing.retain(|ident, _| wanted.contains(ident));
            self.active_checkers = wanted.clone();
            out.push(Action::Checkers(wanted));
        }
    }

    // ----- records --------------------------------------------------------------------

    /// The record of a node that starts serving without a synchronised peer: a new
    /// generation, so that the peer can later tell it missed writes.
    pub(super) fn alone_record(&mut self) -> NodeRecord {
        self.generations_made += 1;
        let tag = splitmix64(self.incarnation ^ self.generations_made.rotate_left(32));
        let mut record = self.record;
        record.started = true;
        (record.incremental_base, record.base_from_primary) = match self.role {
            // Its SECOND held the last synchronised generation.
            Role::Prim => (Some(record.data.synced), false),
            // Taking over from a primary that held this generation, and perhaps writes it
            // applied but never had acknowledged.
            Role::Second => (Some(record.data.generation), true),
            _ => (record.incremental_base, record.base_from_primary),
        };
        record.data = DataRecord {
            generation: record.data.generation.next(tag),
            synced: record.data.synced,
            previous: record.data.generation,
            consistent: true,
            last_role: LastRole::Alone,
        };
        record
    }

    pub(super) fn with_last_role(&self, last_role: LastRole) -> NodeRecord {
        let mut record = self.record;
        record.data.last_role = last_role;
        record
    }

    pub(super) fn live_peer(&self) -> Option<Advert> {
        self.peer.filter(|_| self.liveness.peer_up())
    }

    // ----- step lists -----------------------------------------------------------------

    /// The step that puts the replicated directories in `mode`, for modules that have some.
    pub(super) fn data_step(&self, mode: DataMode) -> Option<Step> {
        self.cfg.has_data.then_some(Step::Data(mode))
    }

    /// Start serving: record the new state, mount the data, take the virtual IPs, start the
    /// application — in that order, so that the application never runs on unmounted data.
    pub(super) fn start_serving_steps(&self, record: NodeRecord) -> Vec<Step> {
        let mut steps = vec![Step::Persist(record)];
        steps.extend(self.data_step(DataMode::Serve));
        steps.extend([Step::AddVips, Step::Run(Script::StartPrim)]);
        steps
    }

    /// Stop serving: the application first, then the virtual IPs, then the data.
    pub(super) fn stop_serving_steps(&self) -> Vec<Step> {
        let mut steps = vec![Step::Run(Script::StopPrim), Step::DelVips];
        steps.extend(self.data_step(DataMode::Off));
        steps
    }
}

/// "add virtual IPs: 10.0.0.10/24 on eth0"; a detail that already names the step (script
/// outcomes do) is shown as is.
pub(super) fn step_report(step: &Step, detail: &str) -> String {
    let name = step_name(step);
    if detail.starts_with(&name) {
        detail.to_string()
    } else {
        format!("{name}: {detail}")
    }
}

pub(super) fn step_name(step: &Step) -> String {
    match step {
        Step::Persist(r) => format!("persist generation {}", r.data.generation),
        Step::Run(s) => s.file_name().to_string(),
        Step::AddVips => "add virtual IPs".to_string(),
        Step::DelVips => "remove virtual IPs".to_string(),
        Step::Data(DataMode::Serve) => "mount the replicated directories".to_string(),
        Step::Data(DataMode::Receive) => {
            "mount the replicated directories read-only and receive".to_string()
        }
        Step::Data(DataMode::Off) => "unmount the replicated directories".to_string(),
        Step::AwaitCopy { .. } => "copy from the primary".to_string(),
        Step::Quarantine => "save my diverged changes aside".to_string(),
    }
}

/// A 64-bit mixer (SplitMix64's finaliser) turning a seed into a well-spread tag.
pub(super) fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
