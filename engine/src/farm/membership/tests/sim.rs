//! A deterministic world for the farm membership machines: 2..N nodes, simulated time, a
//! lossy network with partitions and one-way cuts, crashes and restarts, checker failures.
//! Seeded: a failing seed replays exactly.
//!
//! Every action is checked as it is applied: a table is installed only for a view that every
//! member has proposed (in some advert it sent), includes the installing node, and equals the
//! table recomputed independently from the view.

use super::super::{Action, FarmConfig, FarmState, HandoverKind, Input, Membership, View, ViewIds};
use crate::farm::table::{BucketTable, Member};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

pub const TICK: Duration = Duration::from_millis(10);
pub const PULSE: Duration = Duration::from_millis(100);
pub const MLOST: u32 = 20;
pub const SLOST: u32 = 10;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub struct Node {
    pub name: String,
    pub cfg: FarmConfig,
    pub machine: Option<Membership>,
    incarnations: u64,
    next_pulse: Duration,
    pub log: Vec<String>,
    /// What this node's data plane enforces, from the actions applied.
    pub enforced: Option<(View, BucketTable)>,
    pub installs: usize,
    /// The administrator's intent: a restarted daemon starts the module again.
    pub started: bool,
    pub checker_failing: bool,
}

struct Packet {
    due: Duration,
    from: usize,
    to: usize,
    net: usize,
    advert: super::super::Advert,
}

pub struct World {
    pub now: Duration,
    pub nodes: Vec<Node>,
    pub rng: StdRng,
    pub hosts: Vec<Member>,
    /// Probability that one heartbeat on one network is lost.
    pub loss: f64,
    /// Partition: nodes hear each other only on the same side.
    pub side: Vec<u8>,
    /// Directed links that carry nothing: (from, to).
    pub cut: BTreeSet<(usize, usize)>,
    /// Networks that carry nothing.
    pub net_down: Vec<bool>,
    /// Heartbeats take 0..=this long: beyond a pulse, they arrive out of order.
    pub max_delay: Duration,
    packets: Vec<Packet>,
    /// Every (node, view id) a node ever proposed in an advert it sent.
    proposed: HashSet<(String, u64)>,
}

impl World {
    /// Nodes `node1..` with these powers, all on `networks` networks, none started.
    pub fn new(seed: u64, powers: &[u32], networks: usize) -> World {
        let hosts: Vec<Member> = powers
            .iter()
            .enumerate()
            .map(|(i, &p)| Member::new(format!("node{}", i + 1), p))
            .collect();
        let nets: Vec<String> = (0..networks).map(|i| format!("lan{i}")).collect();
        let nodes = hosts
            .iter()
            .map(|h| {
                let mut cfg = FarmConfig::with_defaults(&h.name, hosts.clone(), nets.clone());
                cfg.pulse = PULSE;
                cfg.mlost_count = MLOST;
                cfg.slost_count = SLOST;
                Node {
                    name: h.name.clone(),
                    cfg,
                    machine: None,
                    incarnations: 0,
                    next_pulse: Duration::ZERO,
                    log: Vec::new(),
                    enforced: None,
                    installs: 0,
                    started: false,
                    checker_failing: false,
                }
            })
            .collect();
        let mut w = World {
            now: Duration::ZERO,
            nodes,
            rng: StdRng::seed_from_u64(seed),
            hosts,
            loss: 0.0,
            side: vec![0; powers.len()],
            cut: BTreeSet::new(),
            net_down: vec![false; networks],
            max_delay: ms(5),
            packets: Vec::new(),
            proposed: HashSet::new(),
        };
        for i in 0..w.nodes.len() {
            w.boot(i);
        }
        w
    }

    /// (Re)start node `i`'s daemon: a new incarnation, started again if it was.
    pub fn boot(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        node.incarnations += 1;
        node.enforced = None;
        node.next_pulse = now + Duration::from_millis(self.rng.random_range(0..100));
        let incarnation = (i as u64 + 1) << 32 | node.incarnations;
        match Membership::new(node.cfg.clone(), incarnation, now) {
            Ok((m, actions)) => {
                node.machine = Some(m);
                self.apply(i, actions);
            }
            Err(e) => panic!("{}: {e}", node.name),
        }
        if self.nodes[i].checker_failing {
            self.feed(i, checker_failed());
        }
        if self.nodes[i].started {
            self.feed(i, Input::Start);
        }
    }

    pub fn crash(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        node.machine = None;
        node.enforced = None;
        node.log.push(format!("{:>6} ms CRASH", now.as_millis()));
    }

    pub fn running(&self, i: usize) -> bool {
        self.nodes[i].machine.is_some()
    }

    pub fn start(&mut self, i: usize) {
        self.nodes[i].started = true;
        self.feed(i, Input::Start);
    }

    pub fn stop(&mut self, i: usize) {
        self.nodes[i].started = false;
        self.feed(i, Input::Stop);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    pub fn fail_checker(&mut self, i: usize) {
        self.nodes[i].checker_failing = true;
        self.feed(i, checker_failed());
    }

    pub fn recover_checker(&mut self, i: usize) {
        self.nodes[i].checker_failing = false;
        self.feed(
            i,
            Input::CheckerRecovered {
                ident: "app".to_string(),
            },
        );
    }

    pub fn heal(&mut self) {
        self.side.iter_mut().for_each(|s| *s = 0);
        self.cut.clear();
        self.net_down.iter_mut().for_each(|d| *d = false);
    }

    pub fn state(&self, i: usize) -> Option<FarmState> {
        self.nodes[i].machine.as_ref().map(|m| m.state())
    }

    pub fn enforced_members(&self, i: usize) -> Option<Vec<&str>> {
        self.nodes[i]
            .enforced
            .as_ref()
            .map(|(v, _)| v.members.iter().map(String::as_str).collect())
    }

    /// Nodes running, started and healthy: the view everybody should end up with.
    pub fn expected_view(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.machine.is_some() && n.started && !n.checker_failing)
            .map(|n| n.name.clone())
            .collect()
    }

    /// Every node of the expected view is UP enforcing that view (hence the same table), and
    /// every other running node enforces nothing.
    pub fn converged(&self) -> bool {
        let expected = self.expected_view();
        self.nodes.iter().all(|n| {
            let Some(m) = &n.machine else { return true };
            match &n.enforced {
                Some((view, _)) => {
                    expected.contains(&n.name)
                        && view.members == expected
                        && m.state() == FarmState::Up
                }
                None => !expected.contains(&n.name),
            }
        })
    }

    pub fn feed(&mut self, i: usize, input: Input) {
        let now = self.now;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            let actions = m.handle(now, input);
            self.apply(i, actions);
        }
    }

    fn apply(&mut self, i: usize, actions: Vec<Action>) {
        let now = self.now;
        for action in actions {
            match action {
                Action::Log(line) => self.nodes[i]
                    .log
                    .push(format!("{:>6} ms {line}", now.as_millis())),
                Action::Withdraw => self.nodes[i].enforced = None,
                Action::InstallTable { view, table, moves } => {
                    self.check_install(i, &view, &table);
                    for m in &moves {
                        assert_eq!(table.owner(m.bucket), m.to.as_deref());
                        if m.kind == HandoverKind::Drain {
                            assert!(m.from.as_ref().is_some_and(|f| view.members.contains(f)));
                        }
                    }
                    let node = &mut self.nodes[i];
                    node.installs += 1;
                    node.enforced = Some((view, table));
                }
            }
        }
    }

    fn check_install(&self, i: usize, view: &View, table: &BucketTable) {
        let me = &self.nodes[i].name;
        let fail = |what: String| -> ! {
            panic!(
                "{me} installed {view} at {} ms: {what}\n{}",
                self.now.as_millis(),
                self.dump()
            )
        };
        if !view.members.contains(me) {
            fail("it is not a member".into());
        }
        for member in view.members.iter().filter(|m| *m != me) {
            if !self.proposed.contains(&(member.clone(), view.id.0)) {
                fail(format!("{member} never proposed it"));
            }
        }
        let ids = ViewIds::new(&self.nodes[i].cfg);
        if ids.view(view.members.clone()).id != view.id {
            fail("the id does not match its members".into());
        }
        let recomputed = BucketTable::for_view(
            &self.hosts,
            view.members.iter().map(String::as_str),
            self.nodes[i].cfg.buckets,
        );
        if recomputed.as_ref() != Ok(table) {
            fail("the table differs from the one recomputed from the view".into());
        }
        for host in self.hosts.iter().filter(|h| h.power == 0) {
            if table.load(&host.name).owned != 0 {
                fail(format!("{} has power 0 but owns buckets", host.name));
            }
        }
    }

    fn connected(&self, from: usize, to: usize, net: usize) -> bool {
        self.side[from] == self.side[to] && !self.cut.contains(&(from, to)) && !self.net_down[net]
    }

    /// Advance one tick: send due heartbeats, deliver arrived ones, tick every machine.
    pub fn tick(&mut self) {
        self.now += TICK;
        let now = self.now;
        for from in 0..self.nodes.len() {
            if now < self.nodes[from].next_pulse {
                continue;
            }
            let Some(m) = self.nodes[from].machine.as_mut() else {
                continue;
            };
            let advert = m.advert();
            self.nodes[from].next_pulse = now + PULSE;
            self.proposed
                .insert((self.nodes[from].name.clone(), advert.proposal.id.0));
            for to in (0..self.nodes.len()).filter(|&to| to != from) {
                for net in 0..self.net_down.len() {
                    let lost = self.rng.random_bool(self.loss);
                    let max = self.max_delay.as_millis() as u64;
                    let delay = Duration::from_millis(self.rng.random_range(0..=max));
                    if !lost && self.connected(from, to, net) {
                        self.packets.push(Packet {
                            due: now + delay,
                            from,
                            to,
                            net,
                            advert: advert.clone(),
                        });
                    }
                }
            }
        }
        let (due, later): (Vec<Packet>, Vec<Packet>) =
            self.packets.drain(..).partition(|p| p.due <= now);
        self.packets = later;
        for p in due {
            let from = self.nodes[p.from].name.clone();
            self.feed(
                p.to,
                Input::Heartbeat {
                    net: p.net,
                    from,
                    advert: p.advert,
                },
            );
        }
        for i in 0..self.nodes.len() {
            self.feed(i, Input::Tick);
        }
        self.check_consistency();
    }

    /// A node that does not want to serve enforces nothing; a node is UP exactly when it
    /// enforces a table.
    fn check_consistency(&self) {
        for n in &self.nodes {
            let Some(m) = &n.machine else { continue };
            let serving = n.enforced.is_some();
            if (serving && (!n.started || n.checker_failing))
                || serving != (m.state() == FarmState::Up)
                || serving != m.installed_view().is_some()
            {
                panic!(
                    "{} at {} ms: state {} but enforcing {:?}\n{}",
                    n.name,
                    self.now.as_millis(),
                    m.state(),
                    n.enforced.as_ref().map(|(v, _)| v.to_string()),
                    self.dump()
                );
            }
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.tick();
        }
    }

    /// Run until `cond` holds; panics with every log after `limit`.
    pub fn run_until(&mut self, what: &str, limit: Duration, cond: impl Fn(&World) -> bool) {
        let end = self.now + limit;
        while !cond(self) {
            if self.now >= end {
                panic!(
                    "timed out at {} ms waiting for {what}\n{}",
                    self.now.as_millis(),
                    self.dump()
                );
            }
            self.tick();
        }
    }

    /// Log lines of node `i` containing `text`.
    pub fn logged(&self, i: usize, text: &str) -> Vec<&str> {
        self.nodes[i]
            .log
            .iter()
            .map(String::as_str)
            .filter(|l| l.contains(text))
            .collect()
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s.push_str(&format!(
                "--- {} {:?} started {} checker failing {} enforcing {:?}\n",
                n.name,
                n.machine.as_ref().map(|m| m.state()),
                n.started,
                n.checker_failing,
                n.enforced.as_ref().map(|(v, _)| v.to_string()),
            ));
            let start = n.log.len().saturating_sub(40);
            for l in &n.log[start..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

fn checker_failed() -> Input {
    Input::CheckerFailed {
        ident: "app".to_string(),
        detail: "tcp 127.0.0.1:80 refused".to_string(),
    }
}
