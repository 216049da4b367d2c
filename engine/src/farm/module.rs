//! One farm module on one node: the administrator's commands, the `start_both`/`stop_both`
//! scripts around the membership, and which node answers ARP for the VIP. Pure: `(state,
//! now, input) -> actions`; the driver runs the scripts and programs the data plane.
//!
//! Start: `start_both` runs first; once it succeeded the node joins the membership (WAIT,
//! then UP once a view is agreed) and its checkers run. Stop (or daemon shutdown): the node
//! leaves the view at once (accepts nothing), then `stop_both` runs. A failing checker makes
//! the node leave the view until it recovers, whatever its `action` (a farm node that is not
//! healthy simply serves nothing; its peers take its share).

use super::arp;
use super::membership::{self, Advert, FarmConfig, FarmConfigError, FarmState, Membership};
use std::time::Duration;

/// The scripts of a farm module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    StartBoth,
    StopBoth,
}

impl Script {
    pub fn file_name(self) -> &'static str {
        match self {
            Script::StartBoth => "start_both",
            Script::StopBoth => "stop_both",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Tick,
    Heartbeat {
        net: usize,
        from: String,
        advert: Advert,
    },
    Checker {
        ident: String,
        failing: bool,
        detail: String,
    },
    ScriptDone {
        ok: bool,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Log(String),
    Run(Script),
    /// See [`membership::Action::InstallTable`].
    Membership(membership::Action),
    /// Run the checkers (true) or stop them.
    Checkers(bool),
    /// Remember whether the administrator wants the module started (restored at daemon start).
    Intent(bool),
    /// Answer ARP requests for the VIP (true) or stop answering.
    ArpResponder(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Stopped,
    Starting,
    Started,
    Stopping,
}

#[derive(Debug, Clone)]
pub struct FarmModule {
    me: String,
    membership: Membership,
    phase: Phase,
    /// The daemon is shutting down: stop once the running script is done.
    shutting_down: bool,
    responder: bool,
}

impl FarmModule {
    pub fn new(
        cfg: FarmConfig,
        incarnation: u64,
        now: Duration,
    ) -> Result<(FarmModule, Vec<Action>), FarmConfigError> {
        let me = cfg.me.clone();
        let (membership, actions) = Membership::new(cfg, incarnation, now)?;
        let module = FarmModule {
            me,
            membership,
            phase: Phase::Stopped,
            shutting_down: false,
            responder: false,
        };
        let mut out = Vec::new();
        module.wrap(actions, &mut out);
        Ok((module, out))
    }

    /// STOP, WAIT (starting, waiting for a view, or a checker fails), UP.
    pub fn state(&self) -> FarmState {
        match self.phase {
            Phase::Stopped | Phase::Stopping => FarmState::Stop,
            Phase::Starting => FarmState::Wait,
            Phase::Started => self.membership.state(),
        }
    }

    /// Nothing runs any more: after a shutdown, the driver may exit.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    pub fn is_responder(&self) -> bool {
        self.responder
    }

    /// What the script running now is doing, if any ("start_both", "stop_both").
    pub fn running_script(&self) -> Option<&'static str> {
        match self.phase {
            Phase::Starting => Some(Script::StartBoth.file_name()),
            Phase::Stopping => Some(Script::StopBoth.file_name()),
            _ => None,
        }
    }

    pub fn advert(&mut self) -> Advert {
        self.membership.advert()
    }

    pub fn status(&self, now: Duration) -> membership::Status {
        self.membership.status(now)
    }

    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let to_membership = match input {
            Input::Tick => Some(membership::Input::Tick),
            Input::Heartbeat { net, from, advert } => {
                Some(membership::Input::Heartbeat { net, from, advert })
            }
            Input::Checker {
                ident,
                failing: true,
                detail,
            } => Some(membership::Input::CheckerFailed { ident, detail }),
            Input::Checker { ident, .. } => Some(membership::Input::CheckerRecovered { ident }),
            Input::ScriptDone { ok, detail } => {
                self.script_done(now, ok, detail, &mut out);
                None
            }
        };
        if let Some(input) = to_membership {
            let actions = self.membership.handle(now, input);
            self.wrap(actions, &mut out);
        }
        self.update_responder(&mut out);
        out
    }

    /// An administrator command: the answer for the CLI, and what to do.
    pub fn command(
        &mut self,
        now: Duration,
        command: Command,
    ) -> (Result<String, String>, Vec<Action>) {
        let mut out = Vec::new();
        let answer = match (command, self.phase) {
            (Command::Start, Phase::Stopped) => {
                out.push(Action::Intent(true));
                self.start(&mut out);
                Ok("starting: start_both runs, then the node joins the farm".to_string())
            }
            (Command::Start, Phase::Stopping) => {
                Err("the module is stopping (stop_both runs): start it once it is STOP".into())
            }
            (Command::Start, _) => Err("the module is already started".to_string()),
            (Command::Stop, Phase::Started) => {
                out.push(Action::Intent(false));
                self.stop(now, "stopped by the administrator", &mut out);
                Ok("stopping: the node leaves the farm, then stop_both runs".to_string())
            }
            (Command::Stop, Phase::Starting) => {
                Err("start_both is running: stop the module once it has finished".into())
            }
            (Command::Stop, _) => Ok("the module is already stopped".to_string()),
        };
        self.update_responder(&mut out);
        (answer, out)
    }

    /// The daemon is shutting down: stop, keeping the administrator's intent (the module
    /// starts again with the daemon).
    pub fn shutdown(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        self.shutting_down = true;
        if self.phase == Phase::Started {
            self.stop(now, "the daemon is shutting down", &mut out);
        }
        self.update_responder(&mut out);
        out
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        self.phase = Phase::Starting;
        out.push(Action::Log("start: running start_both".to_string()));
        out.push(Action::Run(Script::StartBoth));
    }

    fn stop(&mut self, now: Duration, why: &str, out: &mut Vec<Action>) {
        self.phase = Phase::Stopping;
        out.push(Action::Checkers(false));
        let actions = self.membership.handle(now, membership::Input::Stop);
        self.wrap(actions, out);
        out.push(Action::Log(format!("{why}: running stop_both")));
        out.push(Action::Run(Script::StopBoth));
    }

    fn script_done(&mut self, now: Duration, ok: bool, detail: String, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Starting if ok && !self.shutting_down => {
                self.phase = Phase::Started;
                out.push(Action::Log(format!("start_both: {detail}")));
                out.push(Action::Checkers(true));
                let actions = self.membership.handle(now, membership::Input::Start);
                self.wrap(actions, out);
            }
            Phase::Starting => {
                let why = if ok {
                    format!("start_both: {detail}; the daemon is shutting down")
                } else {
                    format!("start_both failed ({detail}): the node does not join the farm")
                };
                self.phase = Phase::Stopping;
                out.push(Action::Log(format!("{why}: running stop_both")));
                out.push(Action::Run(Script::StopBoth));
            }
            Phase::Stopping => {
                self.phase = Phase::Stopped;
                let verdict = if ok { "" } else { "FAILED: " };
                out.push(Action::Log(format!(
                    "stop_both: {verdict}{detail}; module STOP"
                )));
            }
            Phase::Stopped | Phase::Started => out.push(Action::Log(format!(
                "a script finished while none was expected: {detail}"
            ))),
        }
    }

    /// Membership actions, wrapped.
    fn wrap(&self, actions: Vec<membership::Action>, out: &mut Vec<Action>) {
        for action in actions {
            out.push(match action {
                membership::Action::Log(line) => Action::Log(line),
                other => Action::Membership(other),
            });
        }
    }

    /// This node answers ARP for the VIP exactly when it is the responder of the view it
    /// enforces.
    fn update_responder(&mut self, out: &mut Vec<Action>) {
        let view = match self.phase {
            Phase::Started => self.membership.installed_view(),
            _ => None,
        };
        let wanted = view.and_then(arp::responder) == Some(self.me.as_str());
        if wanted == self.responder {
            return;
        }
        self.responder = wanted;
        out.push(Action::Log(match view {
            Some(v) if wanted => {
                format!("answering ARP for the VIP with the virtual MAC: first member of view {v}")
            }
            Some(v) => format!(
                "no longer answering ARP for the VIP: {} answers for view {v}",
                arp::responder(v).unwrap_or("nobody")
            ),
            None => "no longer answering ARP for the VIP: this node left the farm".to_string(),
        }));
        out.push(Action::ArpResponder(wanted));
    }
}

#[cfg(test)]
mod tests;
