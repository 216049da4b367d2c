//! The farm membership state machine, one per node and farm module: `(state, now, input) ->
//! actions`, no I/O.
//!
//! Every pulse each node advertises (see [`Advert`]) whether it wants to serve, which peers it
//! hears, the view it proposes and the view it has installed. A node proposes the sorted set
//! of hosts that are alive, healthy (started, no checker failing) and hear it back, itself
//! included when it is healthy. Alive means heard on some network within the last
//! `mlost_count` pulses (2 s by default) for a member of the installed view, whose loss moves
//! traffic and so deserves patience, and within `slost_count` pulses (1 s) for any other peer
//! (joining, or while this node has no table), whose loss costs nothing. The loss is decided
//! at the first tick after that many pulses of silence and logged as "node3 lost after 20
//! missed heartbeats". The view id is a hash of that set and of the
//! configuration (see [`ViewId`]), so equal ids mean equal tables. A node installs the table
//! of its proposal only once every member of the proposal advertises the same id: no node ever
//! installs a view that one of its members did not propose. Until then it keeps enforcing its
//! previous table (it stays UP), so a failure costs the failed node's share only during the
//! detection and agreement time. A daemon that just started installs nothing without its
//! peers for `slost_count` pulses, unless it has heard all of them: otherwise a restarted node
//! would briefly take every bucket from a running farm.
//!
//! A node whose checker fails, or that is stopped, withdraws at once (accepts nothing) and
//! advertises itself unhealthy; its peers drop it from their proposals at the next heartbeat
//! and agree on a view without it. It returns the same way once healthy again.
//!
//! No quorum: the two sides of a partition each agree on their own view and both serve, as in
//! the model product (a farm node cut from its peers is usually cut from clients too).
//! Known limit: a non-transitive partition (A hears B, B hears C, A and C do not hear each
//! other) leaves the proposals different and nothing new is installed until it heals or
//! becomes a clean loss; the previous tables stay in force meanwhile.

mod advert;
mod config;
mod decide;
mod handover;
mod peers;
mod state;
#[cfg(test)]
mod tests;

pub use advert::{Advert, View, ViewId, ViewIds};
pub use config::{FarmConfig, FarmConfigError};
pub use handover::{Handover, HandoverKind};
pub use state::FarmState;

use crate::farm::table::{BucketTable, Load};
use peers::Peer;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Time passes (the driver ticks a few times per pulse).
    Tick,
    /// An authenticated farm heartbeat from host `from` arrived on network number `net`.
    Heartbeat {
        net: usize,
        from: String,
        advert: Advert,
    },
    /// A checker of this module reports a failure (or a new detail of one).
    CheckerFailed {
        ident: String,
        detail: String,
    },
    CheckerRecovered {
        ident: String,
    },
    /// The administrator starts the module.
    Start,
    /// The administrator stops the module.
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// One line for the module log.
    Log(String),
    /// Enforce this table from now on: accept the buckets `table` gives this node. `moves`
    /// lists every bucket whose owner changed since the table the cluster enforced before,
    /// and how its flows are handed over.
    InstallTable {
        view: View,
        table: BucketTable,
        moves: Vec<Handover>,
    },
    /// Accept no traffic: this node left the view (stopped, or a checker fails).
    Withdraw,
}

/// Everything the status displays need.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub node: String,
    pub state: FarmState,
    pub reason: String,
    pub proposal: View,
    pub installed: Option<View>,
    /// Every member's share in the installed table ("node1 85/256").
    pub loads: Vec<(String, Load)>,
    pub peers: Vec<PeerStatus>,
    pub failing_checkers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeerStatus {
    pub node: String,
    pub alive: bool,
    pub state: Option<FarmState>,
    pub healthy: Option<bool>,
    pub proposal: Option<ViewId>,
    pub installed: Option<ViewId>,
    /// Milliseconds since the last heartbeat, per network (`None`: never heard).
    pub heard_ms_ago: Vec<(String, Option<u64>)>,
}

#[derive(Debug, Clone)]
struct Installed {
    view: View,
    table: BucketTable,
}

#[derive(Debug, Clone)]
pub struct Membership {
    cfg: FarmConfig,
    ids: ViewIds,
    incarnation: u64,
    seq: u64,
    started: bool,
    /// When the daemon started: until `slost_count` pulses later, it may not have heard every
    /// live peer yet.
    born: Duration,
    failing: BTreeMap<String, String>,
    /// The other hosts of the farm group, by name.
    peers: Vec<Peer>,
    proposal: View,
    proposed_at: Duration,
    /// The current proposal has waited long enough for its disagreement to be logged.
    stall_reported: bool,
    installed: Option<Installed>,
    /// Senders already reported as not belonging here (logged once each).
    ignored_senders: BTreeSet<String>,
    reason: String,
}

impl Membership {
    /// A machine for a daemon that just started: STOP until `Input::Start`. `incarnation`
    /// must grow across daemon restarts (see `heartbeat::replay`).
    pub fn new(
        cfg: FarmConfig,
        incarnation: u64,
        now: Duration,
    ) -> Result<(Membership, Vec<Action>), FarmConfigError> {
        cfg.validate()?;
        let ids = ViewIds::new(&cfg);
        let mut names: Vec<&str> = cfg
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .filter(|n| *n != cfg.me)
            .collect();
        names.sort_unstable();
        let peers = names
            .into_iter()
            .map(|n| Peer::new(n.to_string(), &cfg.networks, cfg.member_timeout()))
            .collect();
        let log = format!(
            "farm daemon started: {} hosts, {} buckets, pulse {} ms, member lost after {} \
             missed heartbeats, other hosts after {}",
            cfg.hosts.len(),
            cfg.buckets,
            cfg.pulse.as_millis(),
            cfg.mlost_count,
            cfg.slost_count
        );
        let machine = Membership {
            proposal: ids.view(BTreeSet::new()),
            ids,
            cfg,
            incarnation,
            seq: 0,
            started: false,
            born: now,
            failing: BTreeMap::new(),
            peers,
            proposed_at: now,
            stall_reported: false,
            installed: None,
            ignored_senders: BTreeSet::new(),
            reason: "stopped".to_string(),
        };
        Ok((machine, vec![Action::Log(log)]))
    }

    pub fn state(&self) -> FarmState {
        if !self.started {
            FarmState::Stop
        } else if self.installed.is_some() {
            FarmState::Up
        } else {
            FarmState::Wait
        }
    }

    /// The view whose table this node enforces.
    pub fn installed_view(&self) -> Option<&View> {
        self.installed.as_ref().map(|i| &i.view)
    }

    pub fn installed_table(&self) -> Option<&BucketTable> {
        self.installed.as_ref().map(|i| &i.table)
    }

    pub fn proposal(&self) -> &View {
        &self.proposal
    }

    /// What goes into the next heartbeat (each call is a new advert: call once per pulse).
    /// Send it every pulse from daemon start, in every state: peers learn at once that a
    /// stopped node left, and a node that starts its module already knows its peers.
    pub fn advert(&mut self) -> Advert {
        self.seq += 1;
        Advert {
            incarnation: self.incarnation,
            seq: self.seq,
            state: self.state(),
            healthy: self.wants_to_serve(),
            hears: self
                .peers
                .iter()
                .filter(|p| p.alive)
                .map(|p| p.name.clone())
                .collect(),
            proposal: self.proposal.clone(),
            installed: self.installed_view().cloned(),
        }
    }

    pub fn status(&self, now: Duration) -> Status {
        Status {
            node: self.cfg.me.clone(),
            state: self.state(),
            reason: self.reason.clone(),
            proposal: self.proposal.clone(),
            installed: self.installed_view().cloned(),
            loads: self
                .installed_table()
                .map(|t| {
                    t.members()
                        .iter()
                        .map(|m| (m.name.clone(), t.load(&m.name)))
                        .collect()
                })
                .unwrap_or_default(),
            peers: self
                .peers
                .iter()
                .map(|p| {
                    let advert = p.live_advert();
                    PeerStatus {
                        node: p.name.clone(),
                        alive: p.alive,
                        state: advert.map(|a| a.state),
                        healthy: advert.map(|a| a.healthy),
                        proposal: advert.map(|a| a.proposal.id),
                        installed: advert.and_then(|a| a.installed.as_ref().map(|v| v.id)),
                        heard_ms_ago: p.heard_ms_ago(now),
                    }
                })
                .collect(),
            failing_checkers: self.failing.clone(),
        }
    }

    /// Feed one input; returns what to do.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let mut why = Vec::new();
        match input {
            Input::Tick => {
                let members = self.installed.as_ref().map(|i| &i.view.members);
                for peer in &mut self.peers {
                    let timeout = if members.is_some_and(|m| m.contains(&peer.name)) {
                        self.cfg.member_timeout()
                    } else {
                        self.cfg.joiner_timeout()
                    };
                    why.extend(peer.poll(now, timeout, self.cfg.pulse));
                }
            }
            Input::Heartbeat { net, from, advert } => {
                self.on_heartbeat(now, net, from, advert, &mut why)
            }
            Input::CheckerFailed { ident, detail } => {
                if self.failing.get(&ident) != Some(&detail) {
                    why.push(format!("checker {ident} failed: {detail}"));
                    self.failing.insert(ident, detail);
                }
            }
            Input::CheckerRecovered { ident } => {
                if self.failing.remove(&ident).is_some() {
                    why.push(format!("checker {ident} recovered"));
                }
            }
            Input::Start if self.started => out.push(Action::Log("start: already started".into())),
            Input::Start => {
                self.started = true;
                why.push("started by the administrator".to_string());
            }
            Input::Stop if !self.started => out.push(Action::Log("stop: already stopped".into())),
            Input::Stop => {
                self.started = false;
                why.push("stopped by the administrator".to_string());
            }
        }
        self.decide(now, why, &mut out);
        out
    }

    fn on_heartbeat(
        &mut self,
        now: Duration,
        net: usize,
        from: String,
        advert: Advert,
        why: &mut Vec<String>,
    ) {
        if net >= self.cfg.networks.len() {
            if self.ignored_senders.insert(format!("network #{net}")) {
                why.push(format!("ignoring heartbeats on unknown network #{net}"));
            }
            return;
        }
        match self.peers.iter_mut().find(|p| p.name == from) {
            Some(peer) => why.extend(peer.heard(net, now, advert)),
            None if self.ignored_senders.insert(from.clone()) => why.push(if from == self.cfg.me {
                format!(
                    "ignoring heartbeats that claim to come from this node ({from}): \
                     two nodes with the same name?"
                )
            } else {
                format!("ignoring heartbeats from {from}: not a host of this farm group")
            }),
            None => {}
        }
    }

    /// Started and no checker failing.
    fn wants_to_serve(&self) -> bool {
        self.started && self.failing.is_empty()
    }
}
