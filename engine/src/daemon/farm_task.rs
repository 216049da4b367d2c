//! The driver of one farm module: owns its pure core (`farm::module`, the membership inside
//! it, and the bucket hand-over of `farm::drain`), feeds them time, farm heartbeats, checker
//! reports, script completions and commands, and carries out what they decide: scripts,
//! the XDP filter's bucket states, the ARP responder, the checkers. No decision is taken
//! here; the data plane is set up on start and torn down once stopped (`farm_plane`).

use super::board::{Board, FarmView};
use super::farm_heartbeats::{FarmHeartbeats, Received};
use super::farm_plane::{self, DataPlane};
use super::guardian::Guardian;
use super::module_task::{Event, ModuleHandle};
use crate::checkers::runner::{CheckerReport, spawn_check, spawn_errd};
use crate::config::{Cluster, Farm, Module};
use crate::farm::drain::Drains;
use crate::farm::membership;
use crate::farm::module::{Action, Command, FarmModule, Input, Script};
use crate::farm::settings::FarmSettings;
use crate::key::HeartbeatKey;
use crate::mirror::fsm::Command as AdminCommand;
use crate::modlog::{ModuleLog, Source};
use crate::scripts::ScriptRunner;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How often draining buckets count their open connections.
const DRAIN_POLL: Duration = Duration::from_secs(1);
/// The file remembering whether the administrator wants the module started.
const INTENT_FILE: &str = "farm-intent";

/// What a farm driver needs from the daemon.
pub struct FarmTaskSetup<'a> {
    pub module: Module,
    /// The module's `<farm>` settings.
    pub farm: Farm,
    pub cluster: &'a Cluster,
    pub me: &'a str,
    pub key: HeartbeatKey,
    pub log: ModuleLog,
    pub board: Board,
    pub guardian: Arc<Guardian>,
    pub incarnation: u64,
    pub epoch: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum FarmTaskError {
    #[error(transparent)]
    Settings(#[from] crate::farm::settings::SettingsError),
    #[error("{0}")]
    Membership(#[from] membership::FarmConfigError),
    #[error(transparent)]
    Heartbeats(#[from] super::farm_heartbeats::FarmHeartbeatError),
}

pub struct FarmTask {
    module: Module,
    settings: FarmSettings,
    farm: FarmModule,
    drains: Drains,
    log: ModuleLog,
    board: Board,
    guardian: Arc<Guardian>,
    runner: Arc<ScriptRunner>,
    heartbeats: FarmHeartbeats,
    received: mpsc::Receiver<Received>,
    events: mpsc::Receiver<Event>,
    done_tx: mpsc::Sender<(bool, String)>,
    done: mpsc::Receiver<(bool, String)>,
    reports_tx: mpsc::Sender<CheckerReport>,
    reports: mpsc::Receiver<CheckerReport>,
    checkers: Vec<JoinHandle<()>>,
    plane: Option<DataPlane>,
    /// Why this node cannot run the module's data plane (the XDP object is missing).
    refusal: Option<String>,
    epoch: Instant,
    shutdown_reply: Option<oneshot::Sender<()>>,
    intent_file: PathBuf,
}

impl FarmTask {
    pub async fn new(setup: FarmTaskSetup<'_>) -> Result<(FarmTask, ModuleHandle), FarmTaskError> {
        let FarmTaskSetup {
            module,
            farm: farm_cfg,
            cluster,
            me,
            key,
            log,
            board,
            guardian,
            incarnation,
            epoch,
        } = setup;
        let settings = FarmSettings::of(&farm_cfg, cluster, me)?;
        let (farm, initial) =
            FarmModule::new(settings.membership.clone(), incarnation, epoch.elapsed())?;
        let hosts: Vec<String> = settings
            .membership
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .collect();
        let heartbeats = FarmHeartbeats::open(
            &module.name,
            module.id,
            &settings.membership.networks,
            cluster,
            me,
            &hosts,
            key,
            log.clone(),
        )
        .await?;
        let refusal = match &settings.vip {
            Some(_) => farm_plane::available().err(),
            None => None,
        };
        if let Some(why) = &refusal {
            log.line(
                Source::Engine,
                &format!("this node cannot run the farm module: {why}"),
            );
        }
        let (received_tx, received) = mpsc::channel(256);
        heartbeats.spawn_receivers(received_tx);
        let (events_tx, events) = mpsc::channel(64);
        let (done_tx, done) = mpsc::channel(8);
        let (reports_tx, reports) = mpsc::channel(64);
        let runner = ScriptRunner::new(
            &module.name,
            &module.paths,
            me,
            &module.user,
            module.paths.log_dir.join("application.log"),
        );
        let mut task = FarmTask {
            intent_file: module.paths.state_dir.join(INTENT_FILE),
            drains: Drains::new(me),
            module,
            settings,
            farm,
            log,
            board,
            guardian,
            runner: Arc::new(runner),
            heartbeats,
            received,
            events,
            done_tx,
            done,
            reports_tx,
            reports,
            checkers: Vec::new(),
            plane: None,
            refusal,
            epoch,
            shutdown_reply: None,
        };
        task.act(initial).await;
        task.publish();
        Ok((task, ModuleHandle { events: events_tx }))
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub async fn run(mut self) {
        if std::fs::read_to_string(&self.intent_file).is_ok_and(|s| s.trim() == "started") {
            self.log.line(
                Source::Engine,
                "the module was started when the daemon stopped: starting it again",
            );
            if let Err(why) = self.start().await {
                self.log
                    .line(Source::Engine, &format!("cannot start the module: {why}"));
            }
        }
        let pulse = self.settings.membership.pulse;
        let mut tick = tokio::time::interval((pulse / 4).min(Duration::from_millis(25)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_pulse = Instant::now();
        let mut next_poll = Instant::now() + DRAIN_POLL;
        loop {
            let input = tokio::select! {
                _ = tick.tick() => {
                    if Instant::now() >= next_pulse {
                        next_pulse = Instant::now() + pulse;
                        let advert = self.farm.advert();
                        self.heartbeats.send(advert);
                    }
                    if Instant::now() >= next_poll {
                        next_poll = Instant::now() + DRAIN_POLL;
                        self.poll_drains();
                    }
                    Some(Input::Tick)
                }
                Some(r) = self.received.recv() => Some(Input::Heartbeat {
                    net: r.net,
                    from: r.from,
                    advert: r.advert,
                }),
                Some(report) = self.reports.recv() => Some(Input::Checker {
                    ident: report.ident,
                    failing: report.failing,
                    detail: report.detail,
                }),
                Some((ok, detail)) = self.done.recv() => Some(Input::ScriptDone { ok, detail }),
                Some(event) = self.events.recv() => {
                    self.on_event(event).await;
                    None
                }
            };
            if let Some(input) = input {
                let actions = self.farm.handle(self.now(), input);
                self.act(actions).await;
            }
            if self.farm.is_stopped()
                && let Some(plane) = self.plane.take()
            {
                let undone = plane.down().await;
                self.log
                    .line(Source::Engine, &format!("data plane torn down: {undone}"));
            }
            self.publish();
            if self.shutdown_reply.is_some() && self.farm.is_stopped() {
                // Tell the peers we are stopped before going silent (a lost datagram is
                // repeated), so that they drop this node at once.
                for _ in 0..3 {
                    let advert = self.farm.advert();
                    self.heartbeats.send(advert);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if let Some(reply) = self.shutdown_reply.take() {
                    let _ = reply.send(());
                }
                return;
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Command(command, reply) => {
                let answer = match command {
                    AdminCommand::Start => self.start().await,
                    AdminCommand::Stop => self.command(Command::Stop).await,
                    other => Err(format!(
                        "{other:?} is a mirror module command; a farm module knows start and stop"
                    )),
                };
                let _ = reply.send(answer);
            }
            Event::Shutdown(reply) => {
                self.shutdown_reply = Some(reply);
                let actions = self.farm.shutdown(self.now());
                self.act(actions).await;
            }
            // Mirror module events: never sent to a farm module.
            Event::Heartbeat { .. } | Event::StepDone { .. } | Event::Witness { .. } => {}
        }
    }

    /// Sets the data plane up (if the module has a VIP), then starts the module.
    async fn start(&mut self) -> Result<String, String> {
        if let Some(why) = &self.refusal {
            return Err(why.clone());
        }
        if self.farm.is_stopped()
            && self.plane.is_none()
            && let Some(vip) = self.settings.vip.clone()
        {
            match DataPlane::up(
                &self.module.name,
                &vip,
                &self.settings,
                self.guardian.clone(),
            )
            .await
            {
                Ok((plane, done)) => {
                    self.log
                        .line(Source::Engine, &format!("data plane set up: {done}"));
                    self.plane = Some(plane);
                }
                Err(why) => {
                    let why = format!("cannot set the data plane up: {why}");
                    self.log.line(Source::Engine, &why);
                    return Err(why);
                }
            }
        }
        self.command(Command::Start).await
    }

    async fn command(&mut self, command: Command) -> Result<String, String> {
        let (answer, actions) = self.farm.command(self.now(), command);
        self.act(actions).await;
        answer
    }

    async fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Log(line) => self.log.line(Source::Engine, &line),
                Action::Run(script) => self.run_script(script),
                Action::Membership(membership::Action::InstallTable { view, table, moves }) => {
                    let states = self.drains.install(self.now(), &view, &table, &moves);
                    self.program(&format!("table of view {view} installed: {states}"));
                }
                Action::Membership(membership::Action::Withdraw) => {
                    self.drains.withdraw();
                    self.program("XDP filter accepts nothing any more");
                }
                Action::Membership(membership::Action::Log(line)) => {
                    self.log.line(Source::Engine, &line)
                }
                Action::Checkers(on) => self.set_checkers(on),
                Action::Intent(started) => self.save_intent(started),
                Action::ArpResponder(active) => {
                    if let Some(plane) = &self.plane {
                        plane.set_responder(active);
                    }
                }
            }
        }
    }

    /// Writes the drain core's bucket states into the XDP filter; logs `what` once done.
    fn program(&mut self, what: &str) {
        let Some(plane) = &mut self.plane else {
            self.log.line(
                Source::Engine,
                &format!("{what} (no XDP filter: this module has no VIP)"),
            );
            return;
        };
        match plane.install(self.drains.states()) {
            Ok(()) => self.log.line(Source::Engine, what),
            Err(e) => self.log.line(
                Source::Engine,
                &format!("cannot program the XDP filter ({what}): {e}"),
            ),
        }
    }

    fn poll_drains(&mut self) {
        let open = match &self.plane {
            Some(plane) if self.drains.draining() => {
                plane.open_per_bucket(&self.settings, self.settings.membership.buckets)
            }
            _ => None,
        };
        if let Some(line) = self.drains.poll(self.now(), open.as_deref()) {
            self.program(&line);
        }
    }

    fn run_script(&self, script: Script) {
        let name = script.file_name();
        if script == Script::StartBoth {
            // Held from the start of start_both (it may be half-started if the daemon dies).
            self.guardian
                .note(&format!("held {} app", self.module.name));
        }
        let runner = self.runner.clone();
        let done = self.done_tx.clone();
        let guardian = self.guardian.clone();
        let module = self.module.name.clone();
        tokio::spawn(async move {
            let outcome = match script {
                Script::StartBoth => runner.run(name, &[], "both").await,
                Script::StopBoth => runner.run_stop(name, "both").await,
            };
            if script == Script::StopBoth {
                guardian.note(&format!("released {module} app"));
            }
            let ok = matches!(outcome, crate::scripts::ScriptOutcome::Missing { .. })
                || outcome.succeeded();
            let _ = done.send((ok, outcome.describe())).await;
        });
    }

    fn set_checkers(&mut self, on: bool) {
        for task in self.checkers.drain(..) {
            task.abort();
        }
        if !on {
            return;
        }
        if !self.module.errd.procs.is_empty() {
            self.checkers
                .push(spawn_errd(&self.module.errd, self.reports_tx.clone()));
        }
        for check in &self.module.checks {
            self.checkers
                .push(spawn_check(check, self.reports_tx.clone()));
        }
    }

    fn save_intent(&self, started: bool) {
        let text = if started { "started\n" } else { "stopped\n" };
        let dir = &self.module.paths.state_dir;
        let tmp = dir.join(format!("{INTENT_FILE}.tmp"));
        let saved = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, &self.intent_file));
        if let Err(e) = saved {
            self.log.line(
                Source::Engine,
                &format!(
                    "cannot record that the module is {}: {e} (it will not start with the daemon)",
                    text.trim()
                ),
            );
        }
    }

    fn publish(&self) {
        let data_plane = match (&self.refusal, &self.plane) {
            (Some(why), _) => format!("cannot run here: {why}"),
            (None, Some(plane)) => plane.describe(),
            (None, None) if self.settings.vip.is_none() => {
                "none (no <vip>: a load balancer in front polls ready.txt)".to_string()
            }
            (None, None) => "not set up (module stopped)".to_string(),
        };
        self.board.publish_farm(FarmView {
            module: self.module.name.clone(),
            state: self.farm.state(),
            status: self.farm.status(self.now()),
            running_script: self.farm.running_script().map(str::to_string),
            data_plane,
            arp_responder: self.farm.is_responder(),
            packets: self
                .plane
                .as_ref()
                .and_then(DataPlane::counters)
                .map(|c| (c.accepted, c.dropped, c.passed)),
            rejected_heartbeats: self.heartbeats.rejected.load(Ordering::Relaxed),
        });
    }
}
