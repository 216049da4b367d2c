//! Heartbeat liveness, a pure state machine: the peer is up while at least one heartbeat
//! network has carried a valid heartbeat within `timeout`, and lost only when every network
//! has been silent for that long.

use std::time::Duration;

/// What changed, for the module state machine and its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LivenessEvent {
    /// The first heartbeat after a loss (or ever) arrived on `net`.
    PeerFound { net: String },
    /// One network went silent while another still carries heartbeats.
    NetworkSilent { net: String, silent_for: Duration },
    /// A silent network carries heartbeats again.
    NetworkBack { net: String },
    /// Every network has been silent for at least the timeout; `detail` says for how long each.
    PeerLost { detail: String },
}

#[derive(Debug, Clone)]
struct Network {
    name: String,
    last_heard: Option<Duration>,
    silent: bool,
}

#[derive(Debug, Clone)]
pub struct Liveness {
    timeout: Duration,
    networks: Vec<Network>,
    peer_up: bool,
}

impl Liveness {
    pub fn new(networks: impl IntoIterator<Item = String>, timeout: Duration) -> Liveness {
        Liveness {
            timeout,
            networks: networks
                .into_iter()
                .map(|name| Network {
                    name,
                    last_heard: None,
                    silent: true,
                })
                .collect(),
            peer_up: false,
        }
    }

    pub fn peer_up(&self) -> bool {
        self.peer_up
    }

    /// A valid heartbeat arrived on network number `net` at `now`.
    pub fn heard(&mut self, net: usize, now: Duration) -> Vec<LivenessEvent> {
        let mut events = Vec::new();
        let Some(network) = self.networks.get_mut(net) else {
            return events;
        };
        network.last_heard = Some(now);
        if network.silent {
            network.silent = false;
            if self.peer_up {
                events.push(LivenessEvent::NetworkBack {
                    net: network.name.clone(),
                });
            } else {
                self.peer_up = true;
                events.push(LivenessEvent::PeerFound {
                    net: network.name.clone(),
                });
            }
        }
        events
    }

    /// Time passes: report networks that fell silent and, when all have, the peer's loss.
    pub fn poll(&mut self, now: Duration) -> Vec<LivenessEvent> {
        let mut events = Vec::new();
        if !self.peer_up {
            return events;
        }
        for network in &mut self.networks {
            let silent_for = network
                .last_heard
                .map_or(Duration::MAX, |t| now.saturating_sub(t));
            if !network.silent && silent_for >= self.timeout {
                network.silent = true;
                events.push(LivenessEvent::NetworkSilent {
                    net: network.name.clone(),
                    silent_for,
                });
            }
        }
        if self.networks.iter().all(|n| n.silent) {
            self.peer_up = false;
            // Every network reported silent above or before; one PeerLost replaces them.
            events.retain(|e| !matches!(e, LivenessEvent::NetworkSilent { .. }));
            events.push(LivenessEvent::PeerLost {
                detail: self.describe(now),
            });
        }
        events
    }

    /// Time since the last heartbeat on any network, `None` if none was ever heard.
    pub fn silent_for(&self, now: Duration) -> Option<Duration> {
        self.networks
            .iter()
            .filter_map(|n| n.last_heard)
            .max()
            .map(|t| now.saturating_sub(t))
    }

    /// "heartbeat default silent for 1003 ms, heartbeat backup never heard".
    pub fn describe(&self, now: Duration) -> String {
        self.networks
            .iter()
            .map(|n| match n.last_heard {
                Some(t) => format!(
                    "heartbeat {} silent for {} ms",
                    n.name,
                    now.saturating_sub(t).as_millis()
                ),
                None => format!("heartbeat {} never heard", n.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Milliseconds since the last heartbeat on each network, for status displays.
    pub fn per_network(&self, now: Duration) -> Vec<(String, Option<u64>)> {
        self.networks
            .iter()
            .map(|n| {
                let ms = n
                    .last_heard
                    .map(|t| now.saturating_sub(t).as_millis() as u64);
                (n.name.clone(), ms)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn two_nets() -> Liveness {
        Liveness::new(["lan".to_string(), "backup".to_string()], MS(1000))
    }

    #[test]
    fn peer_found_on_first_heartbeat_then_lost_only_when_all_networks_are_silent() {
        let mut l = two_nets();
        assert!(l.poll(MS(5000)).is_empty(), "never heard: nothing to lose");
        assert_eq!(
            l.heard(0, MS(0)),
            vec![LivenessEvent::PeerFound { net: "lan".into() }]
        );
        assert_eq!(
            l.heard(1, MS(10)),
            vec![LivenessEvent::NetworkBack {
                net: "backup".into()
            }]
        );
        // "lan" goes silent, "backup" keeps talking: the peer is not lost.
        for t in (100..=1500).step_by(100) {
            l.heard(1, MS(t));
        }
        let events = l.poll(MS(1500));
        assert_eq!(
            events,
            vec![LivenessEvent::NetworkSilent {
                net: "lan".into(),
                silent_for: MS(1500)
            }]
        );
        assert!(l.peer_up());
        // Now "backup" goes silent too.
        assert!(l.poll(MS(2400)).is_empty());
        let events = l.poll(MS(2500));
        assert!(matches!(&events[..], [LivenessEvent::PeerLost { detail }]
            if detail == "heartbeat lan silent for 2500 ms, heartbeat backup silent for 1000 ms"));
        assert!(!l.peer_up());
        assert_eq!(
            l.heard(0, MS(3000)),
            vec![LivenessEvent::PeerFound { net: "lan".into() }]
        );
    }

    #[test]
    fn unknown_network_index_is_ignored() {
        let mut l = two_nets();
        assert!(l.heard(7, MS(0)).is_empty());
        assert!(!l.peer_up());
    }
}
