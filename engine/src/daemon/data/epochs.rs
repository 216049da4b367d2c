//! While the stream to the SECOND is up, the change journal moves on in epochs: every
//! [`DataConfig::epoch`] a new one starts (under a brief write freeze, so that everything
//! recorded before it has been sent), and the previous one is forgotten once the SECOND says
//! it made durable everything sent before the new one began. A SECOND that fails or
//! restarts then receives only what changed in the last epochs, however long the pair was
//! in sync before.

use super::durability::Durability;
use super::journal::Journal;
use rfs_fuse::link::{StreamPoint, StreamReplicator};
use rfs_fuse::overlay::SwitchReplicator;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the driver looks at the clock and the peer's durable point.
const POLL: Duration = Duration::from_millis(200);

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochStep {
    Wait,
    /// Start a new epoch.
    Rotate,
    /// Forget the previous epoch: the peer holds it durably.
    Retire,
}

/// `retiring`: the stream point the previous epoch ended at, while it is kept.
pub fn next_step(
    since_rotation: Duration,
    period: Duration,
    retiring: Option<StreamPoint>,
    peer_durable: Option<StreamPoint>,
) -> EpochStep {
    match retiring {
        Some(end) if peer_durable.is_some_and(|d| d.covers(end)) => EpochStep::Retire,
        Some(_) => EpochStep::Wait,
        None if since_rotation >= period => EpochStep::Rotate,
        None => EpochStep::Wait,
    }
}

pub(super) struct Epochs<'a> {
    pub journal: &'a Journal,
    pub switches: &'a [SwitchReplicator],
    pub link: &'a StreamReplicator,
    pub durability: &'a Durability,
    pub period: Duration,
    pub cancelled: &'a AtomicBool,
}

impl Epochs<'_> {
    /// Until the task is cancelled.
    pub fn run(&self) {
        let mut rotated = Instant::now();
        let mut retiring = None;
        while !self.cancelled.load(Ordering::SeqCst) {
            std::thread::sleep(POLL);
            let peer = self.durability.peer();
            match next_step(rotated.elapsed(), self.period, retiring, peer) {
                EpochStep::Wait => {}
                EpochStep::Rotate => {
                    rotated = Instant::now();
                    retiring = self.rotate();
                }
                EpochStep::Retire => {
                    self.journal.retire();
                    retiring = None;
                }
            }
        }
    }

    /// A new epoch with writes frozen; where the stream stood then. `None` if writes are
    /// held (the stream is breaking: the engine decides, the journal keeps everything).
    fn rotate(&self) -> Option<StreamPoint> {
        let mut frozen = Vec::new();
        for switch in self.switches {
            frozen.push(switch.freeze_unless_holding()?);
        }
        self.journal.rotate();
        Some(self.link.sent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(session: u64, next: u64) -> Option<StreamPoint> {
        Some(StreamPoint { session, next })
    }

    #[test]
    fn an_epoch_is_retired_only_once_the_peer_holds_its_end_durably() {
        let (s, period) = (Duration::from_secs, Duration::from_secs(30));
        assert_eq!(next_step(s(10), period, None, None), EpochStep::Wait);
        assert_eq!(next_step(s(30), period, None, at(1, 5)), EpochStep::Rotate);
        assert_eq!(
            next_step(s(90), period, at(1, 50), at(1, 49)),
            EpochStep::Wait
        );
        assert_eq!(
            next_step(s(1), period, at(1, 50), at(1, 50)),
            EpochStep::Retire
        );
        assert_eq!(
            next_step(s(1), period, at(1, 50), at(2, 900)),
            EpochStep::Wait,
            "a point of another stream says nothing about this one"
        );
        assert_eq!(next_step(s(1), period, at(1, 50), None), EpochStep::Wait);
    }
}
