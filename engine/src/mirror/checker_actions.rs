//! What the module does when a checker fails or recovers.

use super::fsm::{Action, Machine};
use super::plan::{Script, Step};
use super::role::Role;
use crate::checkers::restart_budget::Verdict;
use crate::config::CheckAction;
use std::time::Duration;

impl Machine {
    pub(super) fn on_checker(
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

    pub(super) fn apply_checker_action(
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
                self.serving_to_wait(reason, now, out);
            }
            (CheckAction::Wait, Role::Second) => {
                let reason = format!("{why}: WAIT until it recovers");
                self.second_to_wait(reason, now, out);
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
}

fn action_name(action: CheckAction) -> &'static str {
    match action {
        CheckAction::Restart => "restart",
        CheckAction::Stopstart => "stopstart",
        CheckAction::Stop => "stop",
        CheckAction::Wait => "wait",
    }
}
