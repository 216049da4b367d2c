//! What [`serve`](super::serve) is given and what it returns.

use crate::link::StreamPoint;
use crate::protocol::AckLevel;
use std::sync::{Arc, Mutex};

/// Where [`serve`](super::serve) publishes how far it has applied the stream.
pub type AppliedPoint = Arc<Mutex<Option<StreamPoint>>>;

/// Late failures kept in [`ServeEnd`]; later ones are only counted (the callback sees all).
pub const MAX_KEPT_LATE_FAILURES: usize = 1024;

pub(super) type LateCallback = Box<dyn FnMut(&LateFailure) + Send>;

/// How the secondary serves one primary.
pub struct ServeOptions {
    /// The module this secondary replicates; a `Hello` for another is refused.
    pub module: String,
    /// When a request is acknowledged (`<rfs async=...>`).
    pub ack_level: AckLevel,
    pub(super) on_late_failure: Option<LateCallback>,
    pub(super) applied: Option<AppliedPoint>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("module", &self.module)
            .field("ack_level", &self.ack_level)
            .finish_non_exhaustive()
    }
}

impl ServeOptions {
    pub fn new(module: impl Into<String>, ack_level: AckLevel) -> ServeOptions {
        ServeOptions {
            module: module.into(),
            ack_level,
            on_late_failure: None,
            applied: None,
        }
    }

    /// After each batch, `point` says up to where the stream is applied (or failed: a
    /// failure is reported on its own).
    pub fn publish_applied(mut self, point: AppliedPoint) -> Self {
        self.applied = Some(point);
        self
    }

    /// Called for each request that failed after it was acknowledged as received, as it
    /// happens (the engine schedules a resync; the primary hears of it too and judges it
    /// against its local outcome).
    pub fn on_late_failure(mut self, callback: impl FnMut(&LateFailure) + Send + 'static) -> Self {
        self.on_late_failure = Some(Box::new(callback));
        self
    }
}

/// A request acknowledged as received that then failed to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateFailure {
    pub seq: u64,
    /// The replicated directory it was for: the one to resync.
    pub root: u16,
    pub errno: i32,
    /// Names the root, the operation and its paths.
    pub message: String,
}

/// How a connection ended cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The primary said Goodbye, with this reason.
    Goodbye(String),
    /// The primary closed the connection between two frames.
    Eof,
}

/// What a cleanly ended connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeEnd {
    /// The primary's node name and session, from its `Hello`.
    pub node: String,
    pub session: u64,
    pub ended: Ended,
    /// Requests handled (applied or failed).
    pub requests: u64,
    /// The first [`MAX_KEPT_LATE_FAILURES`] late failures.
    pub late_failures: Vec<LateFailure>,
    pub late_failures_total: u64,
}
