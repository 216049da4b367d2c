//! One request awaiting its reply ([`Slot`]), and the rules that turn the secondary's reply
//! and the local outcome into a verdict ([`judge`]).

use super::hook::{LocalOutcome, ReplicationError};
use super::lock;
use crate::protocol::{AckLevel, RemoteError};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The verdict on a request the secondary failed to apply: if the primary failed with the
/// same errno, both replicas are unchanged alike (an `unlink` of a missing file, an exclusive
/// create of an existing one) and there is nothing to repair.
pub(super) fn judge(error: &RemoteError, local: LocalOutcome) -> Result<(), ReplicationError> {
    match local {
        LocalOutcome::Failed(errno) if errno == error.errno => Ok(()),
        _ => Err(ReplicationError::PeerFailed(error.errno)),
    }
}

/// Shared by the sender (which registers it), the verdict (which waits on it) and the reader
/// thread (which fills it in).
#[derive(Debug)]
pub(super) struct Slot {
    pub seq: u64,
    pub sent_at: Instant,
    deadline: Instant,
    state: Mutex<SlotState>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The highest success level the secondary reported.
    acked: Option<AckLevel>,
    /// The secondary's failure (final).
    error: Option<RemoteError>,
    /// Set when the verdict returned `Ok` on a `Received` ack before any error: an error
    /// arriving later is judged against it by the reader thread.
    local: Option<LocalOutcome>,
    /// The link broke before a reply.
    lost: Option<String>,
}

/// What a reply did to a slot.
#[derive(Debug)]
pub(super) struct Replied {
    /// It was the request's first reply: the end of its ack latency.
    pub first: bool,
    /// It was final (`Applied` or an error): the slot can be forgotten.
    pub last: bool,
    /// An error after the verdict already returned `Ok`, which does not match the local
    /// outcome: the replicas diverged without the overlay knowing.
    pub late_failure: Option<RemoteError>,
}

/// How a wait ended.
#[derive(Debug)]
pub(super) enum Waited {
    Verdict(Result<(), ReplicationError>),
    TimedOut,
}

impl Slot {
    pub fn new(seq: u64, timeout: Duration) -> Slot {
        let sent_at = Instant::now();
        Slot {
            seq,
            sent_at,
            deadline: sent_at.checked_add(timeout).unwrap_or(sent_at),
            state: Mutex::new(SlotState::default()),
            ready: Condvar::new(),
        }
    }

    /// Records a reply; `Err` (a protocol violation) for a reply after a final one. The
    /// waiter is woken by [`notify`](Self::notify), once the reply is accounted for.
    pub fn reply(&self, result: Result<AckLevel, RemoteError>) -> Result<Replied, String> {
        let mut state = lock(&self.state);
        if state.error.is_some() || state.acked == Some(AckLevel::Applied) {
            return Err(format!(
                "a reply to request {} after its final reply",
                self.seq
            ));
        }
        let first = state.acked.is_none();
        let mut replied = Replied {
            first,
            last: true,
            late_failure: None,
        };
        match result {
            Ok(level) => {
                state.acked = Some(level);
                replied.last = level == AckLevel::Applied;
            }
            Err(error) => {
                if let Some(local) = state.local
                    && judge(&error, local).is_err()
                {
                    replied.late_failure = Some(error.clone());
                }
                state.error = Some(error);
            }
        }
        Ok(replied)
    }

    pub fn notify(&self) {
        self.ready.notify_all();
    }

    /// The link broke: a waiter without a reply gets `PeerLost(reason)`.
    pub fn lose(&self, reason: &str) {
        let mut state = lock(&self.state);
        if state.lost.is_none() {
            state.lost = Some(reason.to_string());
        }
        drop(state);
        self.ready.notify_all();
    }

    /// Whether no reply has arrived yet.
    pub fn is_outstanding(&self) -> bool {
        let state = lock(&self.state);
        state.acked.is_none() && state.error.is_none()
    }

    /// Waits until the deadline for the first reply, then judges it against `local`. A
    /// reply that arrived counts even if the link broke after it.
    pub fn wait(&self, local: LocalOutcome) -> Waited {
        let mut state = lock(&self.state);
        loop {
            if let Some(error) = &state.error {
                return Waited::Verdict(judge(error, local));
            }
            if state.acked.is_some() {
                state.local = Some(local);
                return Waited::Verdict(Ok(()));
            }
            if let Some(reason) = &state.lost {
                return Waited::Verdict(Err(ReplicationError::PeerLost(reason.clone())));
            }
            let now = Instant::now();
            let Some(left) = self
                .deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Waited::TimedOut;
            };
            state = self
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enoent() -> RemoteError {
        RemoteError::new(libc::ENOENT, "Unlink x: ENOENT")
    }

    #[test]
    fn verdict_rules() {
        let e = enoent();
        assert_eq!(judge(&e, LocalOutcome::Failed(libc::ENOENT)), Ok(()));
        assert_eq!(
            judge(&e, LocalOutcome::Failed(libc::EACCES)),
            Err(ReplicationError::PeerFailed(libc::ENOENT))
        );
        assert_eq!(
            judge(&e, LocalOutcome::Applied),
            Err(ReplicationError::PeerFailed(libc::ENOENT))
        );
    }

    #[test]
    fn an_error_after_a_received_ack_is_judged_late() {
        let slot = Slot::new(7, Duration::from_secs(5));
        assert!(slot.reply(Ok(AckLevel::Received)).unwrap().first);
        assert!(matches!(
            slot.wait(LocalOutcome::Applied),
            Waited::Verdict(Ok(()))
        ));
        let replied = slot.reply(Err(enoent())).unwrap();
        assert!(!replied.first && replied.last);
        assert_eq!(replied.late_failure, Some(enoent()));
        assert!(slot.reply(Ok(AckLevel::Applied)).is_err());

        // The same error, matching the local failure: nothing to report.
        let slot = Slot::new(8, Duration::from_secs(5));
        slot.reply(Ok(AckLevel::Received)).unwrap();
        slot.wait(LocalOutcome::Failed(libc::ENOENT));
        assert_eq!(slot.reply(Err(enoent())).unwrap().late_failure, None);

        // An error arriving before the verdict is judged by the verdict itself.
        let slot = Slot::new(9, Duration::from_secs(5));
        slot.reply(Ok(AckLevel::Received)).unwrap();
        assert_eq!(slot.reply(Err(enoent())).unwrap().late_failure, None);
        assert!(matches!(
            slot.wait(LocalOutcome::Applied),
            Waited::Verdict(Err(ReplicationError::PeerFailed(libc::ENOENT)))
        ));
    }

    #[test]
    fn a_reply_wins_over_a_later_break_and_a_silent_peer_times_out() {
        let slot = Slot::new(1, Duration::from_secs(5));
        slot.reply(Ok(AckLevel::Applied)).unwrap();
        slot.lose("gone");
        assert!(matches!(
            slot.wait(LocalOutcome::Applied),
            Waited::Verdict(Ok(()))
        ));
        let slot = Slot::new(2, Duration::from_millis(1));
        assert!(matches!(slot.wait(LocalOutcome::Applied), Waited::TimedOut));
        slot.lose("gone");
        assert!(matches!(
            slot.wait(LocalOutcome::Applied),
            Waited::Verdict(Err(ReplicationError::PeerLost(_)))
        ));
    }
}
