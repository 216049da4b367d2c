//! The replication hook: where every mutating operation leaves the overlay.
//!
//! The overlay calls [`Replicator::send`] *before* applying an operation locally and
//! [`Pending::wait`] *after*, so the frame travels to the peer while the local file system does
//! its part: the two latencies overlap instead of adding up.
//!
//! A verdict from the hook never fails the application's call: the application gets the
//! **local** result. A replication error means the peer may have missed the change; the engine
//! owns that situation (declares the peer lost, records the change for resynchronisation). The
//! overlay only logs it. Failing the application's write because the peer vanished would turn
//! a high-availability tool into an availability risk.

use std::sync::{Mutex, PoisonError};

use crate::protocol::op::Op;

/// Why the peer could not confirm an operation. Informational for the overlay (it never fails
/// the application's call); meaningful for the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    /// The peer is gone (connection lost, heartbeat verdict) or did not answer in time.
    #[error("peer lost: {0}")]
    PeerLost(String),
    /// The peer received the operation but could not apply it.
    #[error("peer could not apply the operation (errno {0})")]
    PeerFailed(i32),
}

/// What happened when the overlay applied the operation locally, handed to the verdict so the
/// engine can tell "both sides failed alike" from "the primary failed where the peer may have
/// succeeded" (ENOSPC, EIO: the peer's copy must then be repaired by resynchronisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalOutcome {
    Applied,
    /// The local system call failed with this errno.
    Failed(i32),
}

type Verdict = Box<dyn FnOnce(LocalOutcome) -> Result<(), ReplicationError> + Send>;

/// An operation handed to the peer, whose verdict is collected after the local apply.
#[must_use = "a pending operation must be waited for after the local apply"]
pub struct Pending(Option<Verdict>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Pending(in flight)"
        } else {
            "Pending(settled)"
        })
    }
}

impl Pending {
    /// Already confirmed: nothing to wait for (no peer, or a synchronous hook).
    pub fn ready() -> Pending {
        Pending(None)
    }

    /// A verdict to collect later; `verdict` receives the local outcome and blocks until the
    /// peer has answered.
    pub fn new(
        verdict: impl FnOnce(LocalOutcome) -> Result<(), ReplicationError> + Send + 'static,
    ) -> Pending {
        Pending(Some(Box::new(verdict)))
    }

    /// Already failed, e.g. the stream is closed.
    pub fn failed(error: ReplicationError) -> Pending {
        Pending::new(move |_| Err(error))
    }

    /// Wait for the peer's verdict on an operation that was applied locally.
    pub fn wait(self) -> Result<(), ReplicationError> {
        self.settle(LocalOutcome::Applied)
    }

    /// Wait for the peer's verdict, telling it how the local apply went.
    pub fn settle(self, local: LocalOutcome) -> Result<(), ReplicationError> {
        match self.0 {
            None => Ok(()),
            Some(verdict) => verdict(local),
        }
    }
}

/// Where mutating operations go. Implementations must keep the order of `send` calls: the
/// overlay calls `send` in the order it applies operations locally (it holds its ordering lock
/// across `send` and the local apply), and the peer must apply them in that order.
pub trait Replicator: Send + Sync + 'static {
    /// Queue `op` for the peer and return at once; the verdict is collected with
    /// [`Pending::wait`].
    fn send(&self, op: Op) -> Pending;
}

/// The ALONE case: no peer, every operation is confirmed at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReplication;

impl Replicator for NoReplication {
    fn send(&self, _op: Op) -> Pending {
        Pending::ready()
    }
}

/// Keeps every operation, in order, together with the local outcome. For tests and, later,
/// change tracking while no peer is connected.
#[derive(Debug, Default)]
pub struct Recorder {
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// A copy of the operations sent so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Take the operations sent so far, leaving the record empty.
    pub fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Replicator for Recorder {
    fn send(&self, op: Op) -> Pending {
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(op);
        Pending::ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::op::RelPath;

    #[test]
    fn recorder_keeps_order_and_verdicts_see_the_local_outcome() {
        let recorder = Recorder::new();
        for name in [&b"a"[..], b"b"] {
            let path = RelPath::new(name).unwrap();
            recorder.send(Op::Unlink { path }).wait().unwrap();
        }
        let ops = recorder.take();
        assert_eq!(ops.len(), 2);
        assert!(matches!(&ops[1], Op::Unlink { path } if path.to_bytes() == b"b"));
        assert!(recorder.ops().is_empty());

        let seen = std::sync::Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let pending = Pending::new(move |local| {
            *seen2.lock().unwrap() = Some(local);
            Err(ReplicationError::PeerLost("gone".into()))
        });
        assert!(pending.settle(LocalOutcome::Failed(libc::ENOSPC)).is_err());
        assert_eq!(
            *seen.lock().unwrap(),
            Some(LocalOutcome::Failed(libc::ENOSPC))
        );
        assert!(Pending::ready().wait().is_ok());
    }
}
