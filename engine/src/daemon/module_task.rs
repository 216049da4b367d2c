//! The driver of one mirror module: owns its state machine, feeds it time, heartbeats,
//! step completions, checker reports, witness verdicts and commands, and carries out the
//! actions it returns. No decision is taken here.

use super::board::{Board, ModuleView};
use super::data::DataPlane;
use super::data::driver::{DataCommand, DataDriver, next_data_event};
use super::heartbeat_io::HeartbeatIo;
use super::steps::StepExecutor;
use crate::checkers::probes::probe_witnesses;
use crate::checkers::runner::{CheckerReport, spawn_check, spawn_errd};
use crate::config::{Errd, Module};
use crate::mirror::advert::Advert;
use crate::mirror::advert::DurablePoint;
use crate::mirror::fsm::{Action, Command, Input, Machine};
use crate::mirror::machine_config::{errd_ident, witness_timeout};
use crate::mirror::replication::ReplicationEvent;
use crate::mirror::role::Role;
use crate::modlog::{ModuleLog, Source};
use rfs_fuse::link::StreamPoint;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// What reaches a module driver from outside.
#[derive(Debug)]
pub enum Event {
    Heartbeat {
        net: usize,
        advert: Box<Advert>,
    },
    StepDone {
        ok: bool,
        detail: String,
    },
    Witness {
        reachable: bool,
        detail: String,
    },
    Command(Command, oneshot::Sender<Result<String, String>>),
    /// Stop the module for a daemon shutdown; answered once it is stopped.
    Shutdown(oneshot::Sender<()>),
}

/// How the control socket reaches a module.
#[derive(Debug, Clone)]
pub struct ModuleHandle {
    pub events: mpsc::Sender<Event>,
}

pub struct ModuleTask {
    module: Module,
    machine: Machine,
    log: ModuleLog,
    board: Board,
    executor: Arc<StepExecutor>,
    heartbeats: HeartbeatIo,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    reports_tx: mpsc::Sender<CheckerReport>,
    reports: mpsc::Receiver<CheckerReport>,
    checkers: BTreeMap<String, JoinHandle<()>>,
    epoch: Instant,
    shutdown_reply: Option<oneshot::Sender<()>>,
    data: Option<DataDriver>,
}

impl ModuleTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        module: Module,
        machine: Machine,
        initial: Vec<Action>,
        log: ModuleLog,
        board: Board,
        executor: StepExecutor,
        heartbeats: HeartbeatIo,
        peer: &str,
        epoch: Instant,
        data: Option<(Arc<DataPlane>, mpsc::UnboundedReceiver<ReplicationEvent>)>,
    ) -> (ModuleTask, ModuleHandle) {
        let (events_tx, events) = mpsc::channel(256);
        let (reports_tx, reports) = mpsc::channel(64);
        heartbeats.spawn_receivers(peer, events_tx.clone());
        let mut task = ModuleTask {
            module,
            machine,
            log,
            board,
            executor: Arc::new(executor),
            heartbeats,
            events_tx: events_tx.clone(),
            events,
            reports_tx,
            reports,
            checkers: BTreeMap::new(),
            epoch,
            shutdown_reply: None,
            data: data.map(|(plane, events)| DataDriver::spawn(plane, events)),
        };
        task.act(initial);
        task.publish();
        (task, ModuleHandle { events: events_tx })
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub async fn run(mut self) {
        let pulse = self.module.heart.pulse;
        let mut tick = tokio::time::interval((pulse / 4).min(Duration::from_millis(25)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_pulse = Instant::now();
        loop {
            let input = tokio::select! {
                _ = tick.tick() => {
                    if Instant::now() >= next_pulse {
                        next_pulse = Instant::now() + pulse;
                        self.send_advert();
                    }
                    Some(Input::Tick)
                }
                Some(report) = self.reports.recv() => Some(Input::Checker {
                    ident: report.ident,
                    failing: report.failing,
                    detail: report.detail,
                }),
                Some(event) = self.events.recv() => self.on_event(event),
                Some(event) = next_data_event(&mut self.data) => Some(Input::Replication(event)),
            };
            if let Some(input) = input {
                let actions = self.machine.handle(self.now(), input);
                self.act(actions);
            }
            self.publish();
            if self.shutdown_reply.is_some()
                && self.machine.role() == Role::Stop
                && self.machine.intended_role() == Role::Stop
            {
                self.stop_checkers();
                // Tell the peer we are stopped before going silent, so that it takes over at
                // once instead of after the heartbeat timeout (a lost datagram is repeated).
                for _ in 0..3 {
                    self.send_advert();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if let Some(reply) = self.shutdown_reply.take() {
                    let _ = reply.send(());
                }
                return;
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Option<Input> {
        match event {
            Event::Heartbeat { net, advert } => {
                if let Some(data) = &self.data {
                    data.plane.peer_durable(advert.durable.map(|p| StreamPoint {
                        session: p.session,
                        next: p.next,
                    }));
                }
                Some(Input::Heartbeat {
                    net,
                    advert: *advert,
                })
            }
            Event::StepDone { ok, detail } => Some(Input::StepDone { ok, detail }),
            Event::Witness { reachable, detail } => Some(Input::Witness { reachable, detail }),
            Event::Command(command, reply) => {
                let (answer, actions) = self.machine.command(self.now(), command);
                self.act(actions);
                let _ = reply.send(answer);
                None
            }
            Event::Shutdown(reply) => {
                self.shutdown_reply = Some(reply);
                let actions = self.machine.shutdown(self.now());
                self.act(actions);
                None
            }
        }
    }

    fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Log(line) => self.log.line(Source::Engine, &line),
                Action::Step(step) => {
                    let executor = self.executor.clone();
                    let events = self.events_tx.clone();
                    tokio::spawn(async move {
                        let (ok, detail) = executor.run(step).await;
                        let _ = events.send(Event::StepDone { ok, detail }).await;
                    });
                }
                Action::Checkers(wanted) => self.set_checkers(wanted),
                Action::ProbeWitnesses => self.probe_witnesses(),
                Action::Replicate(target) => self.data_command(DataCommand::Replicate(target)),
                Action::ReleaseWrites => self.data_command(DataCommand::ReleaseWrites),
            }
        }
    }

    /// The state machine's advert, with the copy's progress when one runs to the peer.
    fn send_advert(&mut self) {
        let mut advert = self.machine.advert(self.now());
        if let Some(data) = &self.data {
            advert.copy = data.plane.copy_figures();
            advert.durable = data.plane.durable_point().map(|p| DurablePoint {
                session: p.session,
                next: p.next,
            });
        }
        self.heartbeats.send(advert);
    }

    fn data_command(&self, command: DataCommand) {
        match &self.data {
            Some(data) => {
                let _ = data.commands.send(command);
            }
            None => self.log.line(
                Source::Engine,
                "a replication action without replicated directories: ignored",
            ),
        }
    }

    fn probe_witnesses(&self) {
        let Some(splitbrain) = self.module.splitbrain.clone() else {
            return;
        };
        let timeout = witness_timeout(self.module.heart.timeout);
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let verdict = probe_witnesses(&splitbrain.witnesses, timeout).await;
            let event = Event::Witness {
                reachable: verdict.any_reachable(),
                detail: format!(
                    "split-brain checker {}: {}",
                    splitbrain.ident,
                    verdict.describe()
                ),
            };
            let _ = events.send(event).await;
        });
    }

    /// Start the checkers that must run and stop the others.
    fn set_checkers(&mut self, wanted: BTreeSet<String>) {
        self.checkers.retain(|ident, task| {
            let keep = wanted.contains(ident);
            if !keep {
                task.abort();
            }
            keep
        });
        for ident in wanted {
            if self.checkers.contains_key(&ident) {
                continue;
            }
            let tx = self.reports_tx.clone();
            let task = if let Some(check) = self.module.checks.iter().find(|c| c.ident == ident) {
                spawn_check(check, tx)
            } else if let Some(proc) = self
                .module
                .errd
                .procs
                .iter()
                .find(|p| errd_ident(&p.name) == ident)
            {
                let one = Errd {
                    polltimer: self.module.errd.polltimer,
                    procs: vec![proc.clone()],
                };
                spawn_errd(&one, tx)
            } else {
                self.log.line(
                    Source::Engine,
                    &format!("no checker named {ident} is configured"),
                );
                continue;
            };
            self.checkers.insert(ident, task);
        }
    }

    fn stop_checkers(&mut self) {
        for (_, task) in std::mem::take(&mut self.checkers) {
            task.abort();
        }
    }

    fn publish(&self) {
        self.board.publish(ModuleView {
            module: self.module.name.clone(),
            // What this node has decided (a node stopping its application shows the state it
            // is going to, Transient); the heartbeats keep the role it still holds.
            role: self.machine.intended_role(),
            status: self.machine.status(self.now()),
            rejected_heartbeats: self.heartbeats.rejected.load(Ordering::Relaxed),
            data: self.data.as_ref().map(|d| d.plane.view()),
        });
    }
}
