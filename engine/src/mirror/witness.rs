//! The split-brain witness: when a serving node needs a witness to answer before serving on,
//! and the probes it asks for.

use super::fsm::{Action, Machine};
use super::role::Role;
use std::time::Duration;

#[derive(Debug, Clone)]
pub(super) enum WitnessProbe {
    Idle,
    Running {
        since: Duration,
    },
    Done {
        since: Duration,
        reachable: bool,
        detail: String,
    },
}

impl Machine {
    /// Since when a serving node needs a witness's word to go on serving: since the peer
    /// was lost, or since the peer may be counting us lost because it confirmed none of our
    /// heartbeats for a timeout (asymmetric loss). `None`: no doubt, or no split-brain checker.
    pub(super) fn isolation_suspected_since(&self, now: Duration) -> Option<Duration> {
        self.cfg.witness_timeout?;
        if !self.liveness.peer_up() {
            return Some(self.lost_at);
        }
        let peer_may_take_over = self.peer.is_some_and(|p| p.role == Role::Second);
        let unconfirmed_since = self.lease_base + self.cfg.timeout;
        (peer_may_take_over && now >= unconfirmed_since).then_some(unconfirmed_since)
    }

    /// The peer confirmed one of our heartbeats recent enough that it is not counting us
    /// lost.
    pub(super) fn peer_hears_me(&self, now: Duration) -> bool {
        self.lease_base > Duration::ZERO && now < self.lease_base + self.cfg.timeout
    }

    /// The verdict of a witness probe started at or after `after`, asking for one if needed;
    /// `None` while it runs. Without a split-brain checker the answer is always yes.
    pub(super) fn witness_verdict(
        &mut self,
        now: Duration,
        after: Duration,
        out: &mut Vec<Action>,
    ) -> Option<(bool, String)> {
        if self.cfg.witness_timeout.is_none() {
            return Some((true, "no split-brain checker configured".to_string()));
        }
        match &self.witness {
            WitnessProbe::Done {
                since,
                reachable,
                detail,
            } if *since >= after => Some((*reachable, detail.clone())),
            WitnessProbe::Running { since } if *since >= after => None,
            _ => {
                out.push(Action::ProbeWitnesses);
                self.witness = WitnessProbe::Running { since: now };
                None
            }
        }
    }

    /// While isolated, probe the witnesses again every timeout; true once one answers.
    pub(super) fn witness_back(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
        match &self.witness {
            WitnessProbe::Done {
                reachable: true,
                detail,
                ..
            } => {
                out.push(Action::Log(format!("no longer isolated: {detail}")));
                self.isolated = false;
                true
            }
            WitnessProbe::Running { .. } => false,
            WitnessProbe::Done { since, .. } if now.saturating_sub(*since) < self.cfg.timeout => {
                false
            }
            _ => {
                out.push(Action::ProbeWitnesses);
                self.witness = WitnessProbe::Running { since: now };
                false
            }
        }
    }
}
