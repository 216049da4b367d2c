//! The mirror module state machine: `(state, now, input) -> (state, actions)`, no I/O.
//!
//! Drivers feed it heartbeats, ticks, step completions, checker reports, witness verdicts and
//! administrator commands; it answers with actions (steps to carry out one at a time, log
//! lines, the set of checkers that must run, witness probes). Every decision it takes is
//! logged with its reason.

use super::advert::Advert;
use super::arbitrate::{Candidate, keeps_serving, pick_primary};
use super::data::{DataRecord, LastRole, Relation};
use super::plan::{NodeRecord, Plan, Script, Step};
use super::role::{Readiness, Role};
use crate::checkers::restart_budget::{RestartBudget, Verdict};
use crate::config::{CheckAction, CheckClass, DefaultPrim};
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
    pub maxloop: u32,
    pub loop_interval: Duration,
    /// How long a witness probe may take, when a split-brain checker is configured.
    pub witness_timeout: Option<Duration>,
    pub checkers: Vec<CheckerSpec>,
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

#[derive(Debug, Clone)]
enum WitnessProbe {
    Idle,
    Running {
        since: Duration,
    },
    Done {
        since: Duration,
        reachable: bool,
        detail: String,
    },
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
    isolated: bool,
    /// The peer stopped serving while this node serves (a split brain resolved in our favour):
    /// clients may have learnt the peer's MAC for the virtual IPs, announce them again.
    reannounce: bool,
    /// As SECOND: the current join attempt, which the primary must acknowledge.
    join_id: u64,
    /// As primary: the peer's join attempt whose in-sync state is recorded on disk.
    acked_join: u64,
    /// As primary: the join attempt to acknowledge once the running plan has persisted it.
    ack_after_plan: Option<u64>,
    pub(super) serving_since: Option<Duration>,
    pub(super) budget: RestartBudget,
    pub(super) failing: BTreeMap<String, String>,
    witness: WitnessProbe,
    lost_at: Duration,
    /// Latest `sent_ms` received from the peer's current incarnation.
    peer_sent_ms: u64,
    /// Send time of our latest heartbeat the peer confirmed receiving.
    lease_base: Duration,
    /// `stopstart`: start again once the peer serves, or at this time.
    pub(super) restart_after_stop: Option<Duration>,
    /// Checker actions that arrived while a plan ran.
    deferred: VecDeque<(String, CheckAction)>,
    /// A stop asked for during a plan; `Some(keep_started)`.
    pub(super) deferred_stop: Option<bool>,
    pub(super) reason: String,
    active_checkers: BTreeSet<String>,
    generations_made: u64,
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
            lease_base: Duration::ZERO,
            restart_after_stop: None,
            deferred: VecDeque::new(),
            deferred_stop: None,
            reason: "stopped".to_string(),
            active_checkers: BTreeSet::new(),
            generations_made: 0,
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
            },
            failing_checkers: self.failing.clone(),
            restarts_in_interval: format!(
                "maxloop {} within {:?}",
                self.budget.maxloop(),
                self.budget.interval()
            ),
            running_step: self
                .plan
                .as_ref()
                .and_then(|p| p.running.as_ref())
                .map(|s| format!("{s:?}")),
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
        }
        self.decide(now, &mut out);
        self.sync_checkers(&mut out);
        out
    }

    // ----- inputs ---------------------------------------------------------------------

    fn on_advert(&mut self, now: Duration, advert: Advert, out: &mut Vec<Action>) {
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

    fn on_liveness(&mut self, now: Duration, events: Vec<LivenessEvent>, out: &mut Vec<Action>) {
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

    fn on_step_done(&mut self, now: Duration, ok: bool, detail: String, out: &mut Vec<Action>) {
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
        if ok {
            if let Step::Persist(record) = &step {
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

    fn on_checker(
        &mut self,
        now: Duration,
        ident: String,
        failing: bool,
        detail: String,
        out: &mut Vec<Action>,
    ) {
        let Some(action) = self
            .cfg
            .checkers
            .iter()
            .find(|c| c.ident == ident)
            .map(|c| c.action)
        else {
            out.push(Action::Log(format!(
                "report from unknown checker {ident} ignored"
            )));
            return;
        };
        if !self.active_checkers.contains(&ident) {
            return;
        }
        if !failing {
            if self.failing.remove(&ident).is_some() {
                out.push(Action::Log(format!("checker {ident} recovered: {detail}")));
            }
            return;
        }
        if self.failing.contains_key(&ident) {
            return;
        }
        out.push(Action::Log(format!(
            "checker {ident} failed: {detail}; action {}",
            action_name(action)
        )));
        self.failing.insert(ident.clone(), detail);
        if self.plan.is_some() {
            self.deferred.push_back((ident, action));
        } else {
            self.apply_checker_action(now, ident, action, out);
        }
    }

    fn apply_checker_action(
        &mut self,
        now: Duration,
        ident: String,
        action: CheckAction,
        out: &mut Vec<Action>,
    ) {
        if !self.failing.contains_key(&ident) {
            return;
        }
        let why = format!("checker {ident} failed");
        match (action, self.role) {
            (_, Role::Stop) => {}
            (CheckAction::Wait, Role::Alone | Role::Prim) => {
                let reason = format!("{why}: WAIT until it recovers");
                self.begin(
                    self.role,
                    Role::Wait,
                    stop_serving_steps(),
                    reason,
                    now,
                    out,
                );
            }
            (CheckAction::Wait, Role::Second) => {
                let reason = format!("{why}: WAIT until it recovers");
                self.begin(
                    Role::Second,
                    Role::Wait,
                    vec![Step::Run(Script::StopSecond)],
                    reason,
                    now,
                    out,
                );
            }
            (CheckAction::Wait, Role::Wait) => {}
            (CheckAction::Restart, Role::Alone | Role::Prim | Role::Second) => {
                match self.budget.request(now) {
                    Verdict::Restart { nth } => {
                        self.failing.remove(&ident);
                        let reason = format!(
                            "{why}: local restart {nth}/{} within {}",
                            self.cfg.maxloop,
                            humantime::format_duration(self.cfg.loop_interval)
                        );
                        let steps = if self.role == Role::Second {
                            vec![
                                Step::Run(Script::StopSecond),
                                Step::Run(Script::StartSecond),
                            ]
                        } else {
                            vec![Step::Run(Script::StopPrim), Step::Run(Script::StartPrim)]
                        };
                        self.begin(self.role, self.role, steps, reason, now, out);
                    }
                    Verdict::Exhausted { restarts } => {
                        let reason = format!(
                            "{why}: {restarts} local restarts already within {} (maxloop {}): \
                             stopstart, the peer takes over",
                            humantime::format_duration(self.cfg.loop_interval),
                            self.cfg.maxloop
                        );
                        self.stopstart(now, reason, out);
                    }
                }
            }
            (CheckAction::Restart, Role::Wait) => {}
            (CheckAction::Stopstart, _) => {
                self.stopstart(now, format!("{why}: stopstart, the peer takes over"), out)
            }
            (CheckAction::Stop, _) => self.stop(now, format!("{why}: stopping the module"), out),
        }
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

    fn next_step(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        if let Some(step) = plan.steps.pop_front() {
            plan.running = Some(step.clone());
            out.push(Action::Step(step));
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

    fn abort_plan(&mut self, now: Duration, step: &Step, detail: String, out: &mut Vec<Action>) {
        self.plan = None;
        let failure = format!("{} failed: {detail}", step_name(step));
        self.held = Some(failure.clone());
        // Undo what may already serve; the application has not been started by this plan
        // (steps that abort come before the start scripts).
        let steps = match self.role_after_plan {
            Role::Alone | Role::Prim => vec![Step::DelVips],
            Role::Second => vec![Step::Run(Script::StopSecond)],
            _ => vec![],
        };
        let reason = format!("{failure}; waiting for the administrator (fix, then stop/start)");
        self.begin(self.role, Role::Wait, steps, reason, now, out);
    }

    fn set_role(&mut self, role: Role, now: Duration) {
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
    fn sync_checkers(&mut self, out: &mut Vec<Action>) {
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
        record.data = DataRecord {
            generation: record.data.generation.next(tag),
            synced: record.data.synced,
            consistent: true,
            last_role: LastRole::Alone,
        };
        record
    }

    fn with_last_role(&self, last_role: LastRole) -> NodeRecord {
        let mut record = self.record;
        record.data.last_role = last_role;
        record
    }

    // ----- decisions ------------------------------------------------------------------

    pub(super) fn live_peer(&self) -> Option<Advert> {
        self.peer.filter(|_| self.liveness.peer_up())
    }

    fn decide(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.plan.is_some() {
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

    fn note(&mut self, reason: String, out: &mut Vec<Action>) {
        if reason != self.reason {
            out.push(Action::Log(format!("{}: {reason}", self.role)));
            self.reason = reason;
        }
    }

    /// A plan heading for a serving role goes on while the peer is unheard only if a witness
    /// answers: an isolated node decides to step down at once, without waiting for the running
    /// script, so that the peer can take over safely once its hold-off has passed.
    fn preempt_if_isolated(&mut self, now: Duration, out: &mut Vec<Action>) {
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
            if let Some(plan) = self.plan.as_mut() {
                plan.steps = stop_serving_steps().into();
            }
        }
    }

    /// A node that is not serving and hears that its peer holds newer (or diverged) data
    /// records that its own copy is stale: it must never again start alone on the belief
    /// that it was the last primary.
    fn demote_on_evidence(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
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

    fn decide_stop(&mut self, now: Duration, out: &mut Vec<Action>) {
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

    fn decide_wait(&mut self, now: Duration, out: &mut Vec<Action>) {
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
                        match pick_primary(me, them, &self.cfg.defaultprim) {
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

    /// After a split brain resolved in our favour, send gratuitous ARPs again.
    fn reannounce_vips(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
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

    fn decide_alone(&mut self, now: Duration, out: &mut Vec<Action>) {
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

    fn decide_prim(&mut self, now: Duration, out: &mut Vec<Action>) {
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
                    return self.begin(
                        Role::Prim,
                        Role::Wait,
                        stop_serving_steps(),
                        reason,
                        now,
                        out,
                    );
                }
            }
        }
        let Some(p) = self.live_peer() else {
            let record = self.alone_record();
            let reason = format!(
                "{peer} lost; {witness_said}: new data generation {}",
                record.data.generation
            );
            return self.begin(
                Role::Alone,
                Role::Alone,
                vec![Step::Persist(record)],
                reason,
                now,
                out,
            );
        };
        if p.role.is_serving() {
            return self.resolve_double_primary(now, p, out);
        }
        if p.role != Role::Second || p.yielding {
            let record = self.alone_record();
            let reason = format!(
                "{peer} is {} (no longer SECOND): ALONE, new data generation {}",
                p.role, record.data.generation
            );
            return self.begin(
                Role::Alone,
                Role::Alone,
                vec![Step::Persist(record)],
                reason,
                now,
                out,
            );
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

    fn decide_second(&mut self, now: Duration, out: &mut Vec<Action>) {
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
                return self.begin(
                    Role::Second,
                    Role::Wait,
                    vec![Step::Run(Script::StopSecond)],
                    reason,
                    now,
                    out,
                );
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
                        return self.begin(
                            Role::Second,
                            Role::Wait,
                            vec![Step::Run(Script::StopSecond)],
                            reason,
                            now,
                            out,
                        );
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
                self.begin(
                    Role::Second,
                    Role::Wait,
                    vec![Step::Run(Script::StopSecond)],
                    reason,
                    now,
                    out,
                )
            }
            None => self.take_over(
                now,
                format!("{state} and my data is up to date: taking over"),
                out,
            ),
        }
    }

    /// Since when a serving node needs a witness's word to go on serving: since the peer
    /// was lost, or since the peer may be counting us lost because it confirmed none of our
    /// heartbeats for a timeout (asymmetric loss). `None`: no doubt, or no split-brain checker.
    fn isolation_suspected_since(&self, now: Duration) -> Option<Duration> {
        self.cfg.witness_timeout?;
        if !self.liveness.peer_up() {
            return Some(self.lost_at);
        }
        let peer_may_take_over = self.peer.is_some_and(|p| p.role == Role::Second);
        let unconfirmed_since = self.lease_base + self.cfg.timeout;
        (peer_may_take_over && now >= unconfirmed_since).then_some(unconfirmed_since)
    }

    /// The verdict of a witness probe started at or after `after`, asking for one if needed;
    /// `None` while it runs. Without a split-brain checker the answer is always yes.
    fn witness_verdict(
        &mut self,
        now: Duration,
        after: Duration,
        out: &mut Vec<Action>,
    ) -> Option<(bool, String)> {
        if self.cfg.witness_timeout.is_none() {
            return Some((true, "no split-brain checker configured".to_string()));
        }
        match &self.witness {
            WitnessProbe::Done {
                since,
                reachable,
                detail,
            } if *since >= after => Some((*reachable, detail.clone())),
            WitnessProbe::Running { since } if *since >= after => None,
            _ => {
                out.push(Action::ProbeWitnesses);
                self.witness = WitnessProbe::Running { since: now };
                None
            }
        }
    }

    /// While isolated, probe the witnesses again every timeout; true once one answers.
    fn witness_back(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
        match &self.witness {
            WitnessProbe::Done {
                reachable: true,
                detail,
                ..
            } => {
                out.push(Action::Log(format!("no longer isolated: {detail}")));
                self.isolated = false;
                true
            }
            WitnessProbe::Running { .. } => false,
            WitnessProbe::Done { since, .. } if now.saturating_sub(*since) < self.cfg.timeout => {
                false
            }
            _ => {
                out.push(Action::ProbeWitnesses);
                self.witness = WitnessProbe::Running { since: now };
                false
            }
        }
    }

    fn resolve_double_primary(&mut self, now: Duration, p: Advert, out: &mut Vec<Action>) {
        let mine = self
            .serving_since
            .map_or(Duration::ZERO, |t| now.saturating_sub(t));
        let theirs = Duration::from_millis(p.serving_ms);
        if keeps_serving(mine, theirs, 2 * self.cfg.pulse) {
            return self.note(
                format!(
                    "SPLIT BRAIN: {} also serves; I keep serving (serving for {} ms, it for {} ms)",
                    self.cfg.peer,
                    mine.as_millis(),
                    theirs.as_millis()
                ),
                out,
            );
        }
        let reason = format!(
            "SPLIT BRAIN: {} also serves (for {} ms, me for {} ms): I stop serving; my writes \
             since generation {} diverge from its data",
            self.cfg.peer,
            theirs.as_millis(),
            mine.as_millis(),
            self.record.data.synced
        );
        self.begin(
            self.role,
            Role::Wait,
            stop_serving_steps(),
            reason,
            now,
            out,
        );
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

    fn take_over(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        let record = self.alone_record();
        let reason = format!("{reason}; new data generation {}", record.data.generation);
        let steps = vec![
            Step::Run(Script::StopSecond),
            Step::Persist(record),
            Step::AddVips,
            Step::Run(Script::StartPrim),
        ];
        self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
    }

    fn join_as_second(&mut self, now: Duration, p: Advert, out: &mut Vec<Action>) {
        let peer = &self.cfg.peer;
        let mine = self.record.data.generation;
        let reason = match self.record.data.relation_to(&p.data) {
            Relation::Same => format!("{peer} is {}; same data generation {mine}", p.role),
            Relation::PeerNewer | Relation::BothEmpty => format!(
                "{peer} is {} with newer data (generation {} vs mine {mine})",
                p.role, p.data.generation
            ),
            Relation::MineNewer | Relation::Diverged => format!(
                "{peer} is {} with generation {}; my generation {mine} has changes it lacks \
                 (split brain or primforce): they are superseded by the primary's",
                p.role, p.data.generation
            ),
        };
        self.join_only = false;
        self.new_join_id();
        let mut steps = vec![Step::Run(Script::StartSecond)];
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

    fn resync(&mut self, now: Duration, p: Advert, reason: String, out: &mut Vec<Action>) {
        self.new_join_id();
        let steps = self.sync_steps(&p);
        self.begin(Role::Second, Role::Second, steps, reason, now, out);
    }

    fn new_join_id(&mut self) {
        self.generations_made += 1;
        self.join_id = splitmix64(self.incarnation ^ self.generations_made.rotate_left(17)) | 1;
    }

    /// Mark the copy incomplete, bring it to the primary's generation, mark it complete.
    fn sync_steps(&self, p: &Advert) -> Vec<Step> {
        let mut during = self.with_last_role(LastRole::Second);
        during.started = true;
        let mut after = during;
        after.data.generation = p.data.generation;
        after.data.synced = p.data.generation;
        after.data.consistent = true;
        if self.record.data.generation == p.data.generation && self.record.data.consistent {
            return vec![Step::Persist(after)];
        }
        during.data.consistent = false;
        vec![Step::Persist(during), Step::SyncData, Step::Persist(after)]
    }
}

pub(super) fn stop_serving_steps() -> Vec<Step> {
    vec![Step::Run(Script::StopPrim), Step::DelVips]
}

/// "add virtual IPs: 10.0.0.10/24 on eth0"; a detail that already names the step (script
/// outcomes do) is shown as is.
fn step_report(step: &Step, detail: &str) -> String {
    let name = step_name(step);
    if detail.starts_with(&name) {
        detail.to_string()
    } else {
        format!("{name}: {detail}")
    }
}

fn step_name(step: &Step) -> String {
    match step {
        Step::Persist(r) => format!("persist generation {}", r.data.generation),
        Step::Run(s) => s.file_name().to_string(),
        Step::AddVips => "add virtual IPs".to_string(),
        Step::DelVips => "remove virtual IPs".to_string(),
        Step::SyncData => "data synchronisation".to_string(),
    }
}

fn action_name(action: CheckAction) -> &'static str {
    match action {
        CheckAction::Restart => "restart",
        CheckAction::Stopstart => "stopstart",
        CheckAction::Stop => "stop",
        CheckAction::Wait => "wait",
    }
}

/// A 64-bit mixer (SplitMix64's finaliser) turning a seed into a well-spread tag.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
