//! What one node knows about each other host of the farm group: whether it is alive (heard
//! recently enough) and its latest advert.

use super::advert::{Advert, View};
use crate::heartbeat::liveness::{Liveness, LivenessEvent};
use std::time::Duration;

#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub name: String,
    /// Per-network bookkeeping of heartbeats (its own peer-up verdict is not used: the loss
    /// timeout here depends on whether the peer is a member, see `Peer::poll`).
    liveness: Liveness,
    /// Latest advert by `(incarnation, seq)`.
    pub advert: Option<Advert>,
    /// The view it advertised as installed before its current one.
    pub installed_before: Option<View>,
    pub alive: bool,
}

impl Peer {
    pub fn new(name: String, networks: &[String], member_timeout: Duration) -> Peer {
        Peer {
            name,
            liveness: Liveness::new(networks.iter().cloned(), member_timeout),
            advert: None,
            installed_before: None,
            alive: false,
        }
    }

    /// A heartbeat arrived on network `net`: returns what is worth logging.
    pub fn heard(&mut self, net: usize, now: Duration, advert: Advert) -> Vec<String> {
        let mut notes = Vec::new();
        let silent_for = self.liveness.silent_for(now);
        for event in self.liveness.heard(net, now) {
            if let LivenessEvent::NetworkBack { net } = event {
                notes.push(format!(
                    "heartbeats from {} on lan {net} are back",
                    self.name
                ));
            }
        }
        if !self.alive {
            self.alive = true;
            notes.push(match silent_for {
                Some(silent) => {
                    format!("{} heard again after {} ms", self.name, silent.as_millis())
                }
                None => format!("{} heard", self.name),
            });
        }
        let newer = self
            .advert
            .as_ref()
            .is_none_or(|old| (advert.incarnation, advert.seq) > (old.incarnation, old.seq));
        if newer {
            if let Some(old) = &self.advert {
                if old.incarnation != advert.incarnation {
                    notes.push(format!("{} restarted (new incarnation)", self.name));
                }
                if old.installed != advert.installed {
                    self.installed_before = old.installed.clone();
                }
                if (old.state, old.healthy) != (advert.state, advert.healthy) {
                    notes.push(format!(
                        "{} is now {} ({})",
                        self.name,
                        advert.state,
                        if advert.healthy {
                            "healthy"
                        } else {
                            "not serving"
                        }
                    ));
                }
            }
            self.advert = Some(advert);
        }
        notes
    }

    /// Time passes: the peer is lost once silent for `timeout`. Returns what is worth logging.
    pub fn poll(&mut self, now: Duration, timeout: Duration, pulse: Duration) -> Vec<String> {
        let mut notes = Vec::new();
        for event in self.liveness.poll(now) {
            if let LivenessEvent::NetworkSilent { net, silent_for } = event {
                notes.push(format!(
                    "heartbeats from {} on lan {net} silent for {} ms (still heard on another)",
                    self.name,
                    silent_for.as_millis()
                ));
            }
        }
        let silent_for = self.liveness.silent_for(now).unwrap_or(Duration::MAX);
        if self.alive && silent_for >= timeout {
            self.alive = false;
            notes.push(format!(
                "{} lost after {} missed heartbeats",
                self.name,
                silent_for.as_nanos() / pulse.as_nanos().max(1)
            ));
        }
        notes
    }

    /// Its latest advert, if it is alive.
    pub fn live_advert(&self) -> Option<&Advert> {
        self.advert.as_ref().filter(|_| self.alive)
    }

    /// Alive, wants to be in the view, and hears `me`.
    pub fn is_candidate(&self, me: &str) -> bool {
        self.live_advert()
            .is_some_and(|a| a.healthy && a.hears.contains(me))
    }

    pub fn heard_ms_ago(&self, now: Duration) -> Vec<(String, Option<u64>)> {
        self.liveness.per_network(now)
    }
}
