//! A deterministic world for the mirror state machine: two nodes, simulated time, a lossy
//! network that can be cut, a witness, crashes and restarts with persisted records, and
//! steps (scripts, VIP) that take random time. Seeded: a failing seed replays exactly.

#![allow(dead_code)] // each test binary uses a different part of the harness

use hakit::config::{CheckAction, CheckClass, DefaultPrim, SplitBrainWinner};
use hakit::mirror::fsm::{Action, CheckerSpec, Command, Input, Machine, MachineConfig};
use hakit::mirror::plan::{DataMode, NodeRecord, Script, Step};
use hakit::mirror::replication::{ReplicaTarget, ReplicationEvent};
use hakit::mirror::role::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

pub const TICK: Duration = Duration::from_millis(10);
pub const PULSE: Duration = Duration::from_millis(100);
pub const TIMEOUT: Duration = Duration::from_millis(1000);
pub const WITNESS_TIMEOUT: Duration = Duration::from_millis(200);

pub struct Options {
    pub failover: bool,
    pub defaultprim: DefaultPrim,
    pub splitbrain_winner: SplitBrainWinner,
    pub witness: bool,
    pub maxloop: u32,
    pub checkers: Vec<CheckerSpec>,
    /// Probability that a heartbeat is lost.
    pub loss: f64,
    /// Upper bound of a script's run time.
    pub script_time: Duration,
    /// The module replicates directories: the serving application writes every tick.
    pub has_data: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            failover: true,
            defaultprim: DefaultPrim::Alone,
            splitbrain_winner: SplitBrainWinner::Longest,
            witness: false,
            maxloop: 3,
            checkers: vec![],
            loss: 0.0,
            script_time: Duration::from_millis(50),
            has_data: false,
        }
    }
}

pub fn errd_checker(action: CheckAction) -> CheckerSpec {
    CheckerSpec {
        ident: "errd:app".to_string(),
        class: CheckClass::Prim,
        action,
    }
}

pub struct Node {
    pub name: String,
    pub cfg: MachineConfig,
    pub machine: Option<Machine>,
    /// What survives a crash.
    pub disk: NodeRecord,
    pub connected: bool,
    pub vip: bool,
    pub app: bool,
    step: Option<(Step, Duration)>,
    witness_probe: Option<Duration>,
    next_pulse: Duration,
    incarnations: u64,
    pub log: Vec<String>,
    pub scripts_run: Vec<Script>,
    pub active_checkers: Vec<String>,
    /// What the replicated directories are (survives nothing: a crash unmounts).
    pub data_mode: DataMode,
    /// The replicated data, as the number of the last write it holds (survives a crash).
    pub data: u64,
    /// The last write whose call returned to the application.
    pub acknowledged: u64,
    /// The stream to the peer the machine asked for, and when it can be up.
    pub link: Option<SimLink>,
    /// The stream broke: the application's writes wait until the machine releases them.
    pub writes_held: bool,
    /// The data when this node's change journal last started afresh (a copy completed): an
    /// incremental copy is right only for a peer holding at least that.
    pub journal_since: u64,
    /// What each quarantine step saved aside (the data it held then).
    pub quarantined: Vec<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct SimLink {
    pub target: ReplicaTarget,
    /// Connected, copying until this time (writes are held meanwhile).
    pub copying_until: Option<Duration>,
    pub up: bool,
    pub next_try: Duration,
}

pub struct World {
    pub now: Duration,
    pub nodes: Vec<Node>,
    pub rng: StdRng,
    pub opts: Options,
    packets: Vec<(Duration, usize, hakit::mirror::advert::Advert)>,
    pub witness_up: bool,
}

impl World {
    pub fn new(seed: u64, opts: Options) -> World {
        let names = ["node1", "node2"];
        let nodes = (0..2)
            .map(|i| {
                let cfg = MachineConfig {
                    me: names[i].to_string(),
                    peer: names[1 - i].to_string(),
                    networks: vec!["default".to_string()],
                    pulse: PULSE,
                    timeout: TIMEOUT,
                    failover: opts.failover,
                    defaultprim: opts.defaultprim.clone(),
                    splitbrain_winner: opts.splitbrain_winner.clone(),
                    maxloop: opts.maxloop,
                    loop_interval: Duration::from_secs(3600),
                    witness_timeout: opts.witness.then_some(WITNESS_TIMEOUT),
                    checkers: opts.checkers.clone(),
                    has_data: opts.has_data,
                };
                Node {
                    name: names[i].to_string(),
                    cfg,
                    machine: None,
                    disk: NodeRecord::default(),
                    connected: true,
                    vip: false,
                    app: false,
                    step: None,
                    witness_probe: None,
                    next_pulse: Duration::ZERO,
                    incarnations: 0,
                    log: vec![],
                    scripts_run: vec![],
                    active_checkers: vec![],
                    data_mode: DataMode::Off,
                    data: 0,
                    acknowledged: 0,
                    link: None,
                    writes_held: false,
                    journal_since: 0,
                    quarantined: vec![],
                }
            })
            .collect();
        let mut w = World {
            now: Duration::ZERO,
            nodes,
            rng: StdRng::seed_from_u64(seed),
            opts,
            packets: vec![],
            witness_up: true,
        };
        w.boot(0);
        w.boot(1);
        w
    }

    /// (Re)start node `i`'s daemon from what its disk holds.
    pub fn boot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.incarnations += 1;
        let incarnation = (i as u64 + 1) << 32 | node.incarnations;
        node.step = None;
        node.witness_probe = None;
        // A crashed node's processes and addresses are gone with it.
        node.vip = false;
        node.app = false;
        node.data_mode = DataMode::Off;
        node.link = None;
        node.writes_held = false;
        let (m, actions) = Machine::new(node.cfg.clone(), node.disk, incarnation, self.now);
        node.machine = Some(m);
        self.apply(i, actions);
    }

    pub fn crash(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        node.machine = None;
        node.step = None;
        node.vip = false;
        node.app = false;
        node.data_mode = DataMode::Off;
        node.link = None;
        node.log.push(format!("{:>6} ms CRASH", now.as_millis()));
    }

    pub fn command(&mut self, i: usize, command: Command) -> Result<String, String> {
        let now = self.now;
        let Some(m) = self.nodes[i].machine.as_mut() else {
            return Err("crashed".to_string());
        };
        let (answer, actions) = m.command(now, command);
        self.apply(i, actions);
        answer
    }

    pub fn role(&self, i: usize) -> Option<Role> {
        self.nodes[i].machine.as_ref().map(|m| m.role())
    }

    pub fn settled(&self, i: usize) -> bool {
        self.nodes[i]
            .machine
            .as_ref()
            .is_some_and(|m| m.intended_role() == m.role() && self.nodes[i].step.is_none())
    }

    pub fn checker(&mut self, i: usize, ident: &str, failing: bool) {
        let now = self.now;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            let actions = m.handle(
                now,
                Input::Checker {
                    ident: ident.to_string(),
                    failing,
                    detail: if failing {
                        "process app: 0 running"
                    } else {
                        "ok"
                    }
                    .to_string(),
                },
            );
            self.apply(i, actions);
        }
    }

    fn apply(&mut self, i: usize, actions: Vec<Action>) {
        let now = self.now;
        for action in actions {
            match action {
                Action::Step(step) => {
                    let took = match step {
                        Step::Run(_) => {
                            let max = self.opts.script_time.as_millis() as u64;
                            Duration::from_millis(self.rng.random_range(1..=max.max(1)))
                        }
                        _ => Duration::from_millis(self.rng.random_range(1..=5)),
                    };
                    self.nodes[i].step = Some((step, now + took));
                }
                Action::Log(line) => self.nodes[i]
                    .log
                    .push(format!("{:>6} ms {line}", now.as_millis())),
                Action::Checkers(set) => self.nodes[i].active_checkers = set.into_iter().collect(),
                Action::ProbeWitnesses => self.nodes[i].witness_probe = Some(now),
                Action::ReleaseWrites => {
                    let node = &mut self.nodes[i];
                    node.writes_held = false;
                    node.acknowledged = node.data;
                }
                Action::Replicate(target) => {
                    if self.nodes[i].link.is_some_and(|l| l.up) {
                        // Writes in flight on the closed stream wait for the release.
                        self.nodes[i].writes_held = true;
                    }
                    self.nodes[i].link = target.map(|target| SimLink {
                        target,
                        copying_until: None,
                        up: false,
                        next_try: now,
                    })
                }
            }
        }
    }

    /// Hand node `i`'s machine an input, as its driver would.
    pub fn feed(&mut self, i: usize, input: Input) {
        let now = self.now;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            let actions = m.handle(now, input);
            self.apply(i, actions);
        }
    }

    /// Advance one tick: deliver heartbeats, finish steps and probes, tick the machines.
    pub fn tick(&mut self) {
        self.now += TICK;
        let now = self.now;
        // Heartbeats sent.
        for i in 0..2 {
            let node = &mut self.nodes[i];
            let Some(m) = node.machine.as_ref() else {
                continue;
            };
            if now < node.next_pulse {
                continue;
            }
            node.next_pulse = now + PULSE;
            let advert = m.advert(now);
            let lost = self.rng.random_bool(self.opts.loss);
            let delay = Duration::from_millis(self.rng.random_range(0..=3));
            if !lost {
                self.packets.push((now + delay, 1 - i, advert));
            }
        }
        // Heartbeats delivered, if both ends are connected and the receiver runs.
        let due: Vec<_> = self
            .packets
            .iter()
            .filter(|p| p.0 <= now)
            .cloned()
            .collect();
        self.packets.retain(|p| p.0 > now);
        for (_, to, advert) in due {
            if self.nodes[to].connected && self.nodes[1 - to].connected {
                self.feed(to, Input::Heartbeat { net: 0, advert });
            }
        }
        // Steps finish.
        for i in 0..2 {
            if let Some((step, at)) = self.nodes[i].step.clone()
                && at <= now
                && self.nodes[i].machine.is_some()
            {
                self.nodes[i].step = None;
                let node = &mut self.nodes[i];
                match &step {
                    Step::Persist(r) => node.disk = *r,
                    Step::AddVips => node.vip = true,
                    Step::DelVips => node.vip = false,
                    Step::Run(s) => {
                        node.scripts_run.push(*s);
                        match s {
                            Script::StartPrim => node.app = true,
                            Script::StopPrim => node.app = false,
                            _ => {}
                        }
                    }
                    Step::Data(mode) => node.data_mode = *mode,
                    Step::Quarantine => node.quarantined.push(node.data),
                    Step::AwaitCopy { .. } => panic!("AwaitCopy must never reach the driver"),
                }
                self.feed(
                    i,
                    Input::StepDone {
                        ok: true,
                        detail: "ok".to_string(),
                    },
                );
            }
        }
        // Witness probes: answered if the node reaches the witness when asking and now.
        for i in 0..2 {
            if let Some(since) = self.nodes[i].witness_probe {
                let reachable = self.nodes[i].connected && self.witness_up;
                let answered = reachable && now >= since + Duration::from_millis(2);
                if answered || now >= since + WITNESS_TIMEOUT {
                    self.nodes[i].witness_probe = None;
                    let detail = if answered {
                        "witness 10.0.0.254 answered"
                    } else {
                        "no witness answered"
                    };
                    self.feed(
                        i,
                        Input::Witness {
                            reachable: answered,
                            detail: detail.to_string(),
                        },
                    );
                }
            }
        }
        self.replicate();
        for i in 0..2 {
            self.feed(i, Input::Tick);
        }
    }

    /// Whether node `i` can reach its peer's receiver.
    pub fn peer_receives(&self, i: usize) -> bool {
        let peer = &self.nodes[1 - i];
        self.nodes[i].connected
            && peer.connected
            && peer.machine.is_some()
            && peer.data_mode == DataMode::Receive
    }

    /// Streams come up (after a copy that takes time) when the peer receives, and break when
    /// a write cannot reach it; the serving application writes once per tick.
    fn replicate(&mut self) {
        let now = self.now;
        for i in 0..2 {
            let Some(link) = self.nodes[i].link else {
                continue;
            };
            match link.copying_until {
                None if now >= link.next_try => {
                    let next_try = now + Duration::from_millis(100);
                    let copying_until = self
                        .peer_receives(i)
                        .then(|| now + Duration::from_millis(self.rng.random_range(20..300)));
                    // The real driver retries connecting until the target changes.
                    self.nodes[i].link = Some(SimLink {
                        copying_until,
                        next_try,
                        ..link
                    });
                }
                Some(until) if !link.up && now >= until => {
                    if !self.peer_receives(i) {
                        self.break_link(i, "the copy could not reach the peer");
                        continue;
                    }
                    let (mine, theirs) = (self.nodes[i].data, self.nodes[1 - i].data);
                    // A peer that was the primary may hold writes beyond ours: its own journal
                    // names them; ours must start no later than what it holds.
                    let upto = if link.target.peer_journal {
                        u64::MAX
                    } else {
                        mine
                    };
                    assert!(
                        !link.target.incremental
                            || (self.nodes[i].journal_since..=upto).contains(&theirs),
                        "incremental copy to a peer holding write {theirs}, journal since {}, \
                         mine {mine}\n{}",
                        self.nodes[i].journal_since,
                        self.dump()
                    );
                    self.nodes[1 - i].data = mine;
                    self.nodes[i].journal_since = mine;
                    self.nodes[i].link = Some(SimLink { up: true, ..link });
                    let join_id = link.target.join_id;
                    self.feed(
                        i,
                        Input::Replication(ReplicationEvent::Up {
                            join_id,
                            detail: "copied".to_string(),
                        }),
                    );
                }
                _ => {}
            }
        }
        for i in 0..2 {
            let node = &self.nodes[i];
            if !(node.app && node.data_mode == DataMode::Serve) || node.writes_held {
                continue;
            }
            let link = node.link;
            let copying = link.is_some_and(|l| l.copying_until.is_some() && !l.up);
            if copying {
                continue; // writes are frozen during a full copy
            }
            self.nodes[i].data += 1;
            if link.is_some_and(|l| l.up) {
                if self.peer_receives(i) {
                    self.nodes[1 - i].data = self.nodes[i].data;
                } else {
                    // The write waits for its verdict, which holds it.
                    self.break_link(i, "no ack within sendtimeout");
                    continue;
                }
            }
            self.nodes[i].acknowledged = self.nodes[i].data;
        }
    }

    /// Node `i`'s stream to its peer breaks (e.g. a send timed out).
    pub fn break_link(&mut self, i: usize, reason: &str) {
        let Some(link) = self.nodes[i].link.take() else {
            return;
        };
        self.nodes[i].writes_held = true;
        self.feed(
            i,
            Input::Replication(ReplicationEvent::Broken {
                join_id: link.target.join_id,
                reason: reason.to_string(),
            }),
        );
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.tick();
        }
    }

    /// Run until `cond` holds; panics with both logs after `limit`.
    pub fn run_until(&mut self, what: &str, limit: Duration, cond: impl Fn(&World) -> bool) {
        let end = self.now + limit;
        while !cond(self) {
            if self.now >= end {
                panic!("timed out waiting for {what}\n{}", self.dump());
            }
            self.tick();
        }
    }

    pub fn serving_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| {
                n.machine
                    .as_ref()
                    .is_some_and(|m| m.intended_role().is_serving())
            })
            .count()
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s.push_str(&format!(
                "--- {} role {:?} connected {} vip {} app {}\n",
                n.name,
                n.machine.as_ref().map(|m| (m.role(), m.readiness())),
                n.connected,
                n.vip,
                n.app
            ));
            let start = n.log.len().saturating_sub(60);
            for l in &n.log[start..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

/// Roles of both nodes, for compact assertions.
pub fn roles(w: &World) -> (Option<Role>, Option<Role>) {
    (w.role(0), w.role(1))
}

pub const SECS: fn(u64) -> Duration = Duration::from_secs;
