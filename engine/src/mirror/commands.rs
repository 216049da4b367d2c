//! Administrator commands on the mirror state machine.

use super::data::LastRole;
use super::fsm::{Action, Command, Machine};
use super::plan::{DataMode, Script, Step};
use super::role::{Readiness, Role};
use std::time::Duration;

impl Machine {
    /// Apply an administrator command: `Ok(what happens)` or `Err(why it is refused)`.
    pub fn command(
        &mut self,
        now: Duration,
        command: Command,
    ) -> (Result<String, String>, Vec<Action>) {
        let mut out = Vec::new();
        let answer = self.apply_command(now, command, &mut out);
        match &answer {
            Ok(what) => out.insert(0, Action::Log(format!("command {command:?}: {what}"))),
            Err(why) => out.insert(
                0,
                Action::Log(format!("command {command:?} refused: {why}")),
            ),
        }
        // Let the machine act on the new situation at once.
        out.extend(self.handle(now, super::fsm::Input::Tick));
        (answer, out)
    }

    fn apply_command(
        &mut self,
        now: Duration,
        command: Command,
        out: &mut Vec<Action>,
    ) -> Result<String, String> {
        if let Some(plan) = self
            .plan
            .as_ref()
            .filter(|_| !matches!(command, Command::Failover(_)))
        {
            let running = plan
                .running
                .as_ref()
                .map(|s| format!("{s:?}"))
                .unwrap_or_default();
            if command == Command::Stop && self.awaiting_copy() {
                return Ok(self.stop_during_copy(now, false, out));
            }
            if command == Command::Stop {
                self.deferred_stop = Some(false);
                return Ok(format!("will stop once the current step ({running}) ends"));
            }
            return Err(format!(
                "the module is in transition ({} {}, running {running}); try again when it settles",
                self.role,
                Readiness::Transient
            ));
        }
        let peer = self.cfg.peer.clone();
        let peer_serving = self
            .live_peer()
            .filter(|p| p.role.is_serving())
            .map(|p| p.role);
        match command {
            Command::Failover(on) => {
                self.failover = on;
                Ok(format!(
                    "automatic failover {}",
                    if on { "on" } else { "off" }
                ))
            }
            Command::Start | Command::Second => {
                let join_only = command == Command::Second;
                match self.role {
                    Role::Stop => {
                        self.held = None;
                        self.start(now, join_only, out);
                        Ok(if join_only {
                            "started; will become SECOND when a primary is present".to_string()
                        } else {
                            "started".to_string()
                        })
                    }
                    Role::Wait if join_only => {
                        self.held = None;
                        self.join_only = true;
                        Ok("will become SECOND when a primary is present".to_string())
                    }
                    Role::Wait => {
                        self.held = None;
                        Ok("already started (WAIT); failure hold cleared".to_string())
                    }
                    role => Err(format!("already started ({role})")),
                }
            }
            Command::Prim | Command::Primforce => {
                let forced = command == Command::Primforce;
                if self.role.is_serving() {
                    return Err(format!("already {}", self.role));
                }
                if let Some(role) = peer_serving {
                    return Err(format!(
                        "{peer} is {role}: two primaries are never allowed; use swap, or stop {peer} first"
                    ));
                }
                if !forced {
                    if let Some(why) = self.record.data.prim_refusal() {
                        return Err(format!(
                            "this node may have missed writes: {why}; use primforce to override"
                        ));
                    }
                    if let Some(p) = self.live_peer() {
                        use super::data::Relation::{Diverged, PeerNewer};
                        if matches!(self.record.data.relation_to(&p.data), PeerNewer | Diverged) {
                            return Err(format!(
                                "{peer} holds data this node lacks (generation {} vs mine {}); \
                                 use primforce to override",
                                p.data.generation, self.record.data.generation
                            ));
                        }
                    }
                }
                self.held = None;
                self.join_only = false;
                let how = if forced {
                    "forced by primforce"
                } else {
                    "requested by prim"
                };
                let mut steps = Vec::new();
                if self.role == Role::Second {
                    steps.push(Step::Run(Script::StopSecond));
                } else if self.role == Role::Stop {
                    self.started_at = now;
                    steps.push(Step::Run(Script::Prestart));
                }
                let record = self.alone_record();
                let reason = format!("{how}; new data generation {}", record.data.generation);
                steps.extend(self.start_serving_steps(record));
                self.begin(Role::Alone, Role::Alone, steps, reason, now, out);
                Ok(format!("starting as primary ({how})"))
            }
            Command::Stop => {
                if self.role == Role::Stop {
                    self.restart_after_stop = None;
                    return Ok("already stopped".to_string());
                }
                self.stop(now, "stopped by the administrator".to_string(), out);
                Ok("stopping".to_string())
            }
            Command::Restart => {
                let steps = match self.role {
                    Role::Alone | Role::Prim => {
                        vec![Step::Run(Script::StopPrim), Step::Run(Script::StartPrim)]
                    }
                    Role::Second => vec![
                        Step::Run(Script::StopSecond),
                        Step::Run(Script::StartSecond),
                    ],
                    role => return Err(format!("nothing runs in {role}: use start")),
                };
                self.begin(
                    self.role,
                    self.role,
                    steps,
                    "restart requested by the administrator".to_string(),
                    now,
                    out,
                );
                Ok("restarting the application locally".to_string())
            }
            Command::Stopstart => {
                if self.role == Role::Stop {
                    return Err("stopped: use start".to_string());
                }
                self.stopstart(
                    now,
                    "stopstart requested by the administrator".to_string(),
                    out,
                );
                Ok("stopping, then starting again".to_string())
            }
            Command::Swap => {
                let p = self
                    .live_peer()
                    .ok_or_else(|| format!("{peer} is not heard: nothing to swap with"))?;
                match (self.role, self.readiness(), p.role, p.readiness) {
                    (Role::Prim, _, Role::Second, Readiness::Ready) => {
                        self.swap_request = true;
                        Ok(format!("handing the primary role over to {peer}"))
                    }
                    (Role::Second, Readiness::Ready, Role::Prim, _) => {
                        self.swap_request = true;
                        Ok(format!("asking {peer} to hand the primary role over"))
                    }
                    (me, my_readiness, them, their_readiness) => Err(format!(
                        "swap needs PRIM and SECOND Ready; this node is {me} {my_readiness}, \
                         {peer} is {them} {their_readiness}"
                    )),
                }
            }
        }
    }

    /// Start the module: WAIT, then the decisions take it from there.
    pub(super) fn start(&mut self, now: Duration, join_only: bool, out: &mut Vec<Action>) {
        self.started_at = now;
        self.join_only = join_only;
        self.budget.reset();
        let mut record = self.record;
        record.started = true;
        let steps = vec![Step::Persist(record), Step::Run(Script::Prestart)];
        self.begin(
            Role::Wait,
            Role::Wait,
            steps,
            "module starting".to_string(),
            now,
            out,
        );
    }

    pub(super) fn stop(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        let keep_started = self.restart_after_stop.is_some();
        self.stop_keeping(now, reason, keep_started, out);
    }

    /// The daemon is shutting down (SIGTERM): stop the module cleanly so that the peer can
    /// take over, but remember that it was started, so that it starts with the daemon again.
    pub fn shutdown(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        self.restart_after_stop = None;
        if self.awaiting_copy() {
            self.stop_during_copy(now, true, &mut out);
        } else if self.plan.is_some() {
            self.deferred_stop = Some(true);
        } else if self.role != Role::Stop {
            self.stop_keeping(
                now,
                "the daemon is shutting down".to_string(),
                true,
                &mut out,
            );
        }
        out
    }

    /// `stop` while the primary copies its data here: the copy is given up at once (it may
    /// take long), this node's copy stays marked incomplete.
    pub(super) fn stop_during_copy(
        &mut self,
        now: Duration,
        keep_started: bool,
        out: &mut Vec<Action>,
    ) -> String {
        self.plan = None;
        self.second_ready = false;
        self.deferred_stop = None;
        let reason = "stopped during the copy from the primary: my copy stays incomplete \
                      (`prim` is refused until a copy completes, `primforce` overrides)"
            .to_string();
        self.stop_keeping(now, reason, keep_started, out);
        "stopping now: the copy from the primary is interrupted and this node's copy stays \
         incomplete"
            .to_string()
    }

    pub(super) fn stop_keeping(
        &mut self,
        now: Duration,
        reason: String,
        keep_started: bool,
        out: &mut Vec<Action>,
    ) {
        let mut record = self.record;
        record.started = keep_started;
        let peer_ready_second = self
            .live_peer()
            .is_some_and(|p| p.role == Role::Second && p.readiness == Readiness::Ready);
        let mut steps = match self.role {
            Role::Alone | Role::Prim => {
                if peer_ready_second && self.failover {
                    record.data.last_role = LastRole::HandedOver;
                }
                self.stop_serving_steps()
            }
            Role::Second => {
                let mut steps = vec![Step::Run(Script::StopSecond)];
                steps.extend(self.data_step(DataMode::Off));
                steps
            }
            Role::Wait | Role::Stop => vec![],
        };
        steps.push(Step::Run(Script::Poststop));
        steps.push(Step::Persist(record));
        let shown = self.role;
        self.begin(shown, Role::Stop, steps, reason, now, out);
    }

    pub(super) fn stopstart(&mut self, now: Duration, reason: String, out: &mut Vec<Action>) {
        // Give the peer the time to notice and take over, then start again regardless.
        self.restart_after_stop = Some(now + self.cfg.timeout * 2 + self.cfg.pulse * 4);
        self.stop(now, reason, out);
    }
}
