//! The replication link: the primary's [`StreamReplicator`] and the secondary's [`serve`]
//! loop, speaking the [`protocol`](crate::protocol) over any ordered byte stream.
//!
//! Neither side opens sockets or threads beyond its own reader: the engine connects (TCP,
//! later TLS), sets `TCP_NODELAY` (replies and small requests must not wait for Nagle's
//! algorithm: every application write waits for its ack), and hands the two halves of the
//! connection over (e.g. `TcpStream::try_clone`).
//!
//! One link carries every replicated directory ("root") of a module: each request names its
//! root, and each root's overlay sends through its own [`RootReplicator`]; the secondary
//! serves one [`Receiver`](crate::receiver::Receiver) per root.
//!
//! What the link guarantees:
//! - **order**: requests leave in [`StreamReplicator::send_to`] order, across all roots, and
//!   the secondary applies them in that order (it refuses a gap in the sequence numbers);
//! - **pipelining**: any number of requests may await their replies, matched by sequence;
//! - **bounded stalls**: a verdict never waits longer than the send timeout; a timeout, a lost
//!   connection or a bad frame *breaks* the link: every waiter gets
//!   [`ReplicationError::PeerLost`] at once and the engine's `on_broken` callback runs once;
//! - **ack levels**: with [`AckLevel::Received`](crate::protocol::AckLevel::Received) the
//!   secondary acknowledges before applying, then confirms with `Applied` or an error (a
//!   "late failure", which the primary judges against its local outcome); `Fsync` and
//!   `FsyncDir` are always acknowledged only once durable on the secondary.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod error;
pub use crate::overlay::replicate as hook;
mod incoming;
pub mod journal;
mod judge;
pub mod manifest;
mod reader;
mod root;
pub mod sender;
pub mod server;
mod shared;
mod stats;
pub mod transport;

pub use error::LinkError;
pub use hook::{LocalOutcome, Pending, ReplicationError, Replicator};
pub use incoming::Opening;
pub use journal::{request_journal, serve_journal};
pub use manifest::{fetch_manifest, request_manifest, serve_manifest, side_connection};
pub use root::RootReplicator;
pub use sender::{Hello, StreamReplicator};
pub use server::{AppliedPoint, Ended, LateFailure, ServeEnd, ServeOptions, serve, serve_opened};
pub use stats::{LATENCY_WINDOW, LinkStats};

/// A point of one primary's stream: every request of `session` numbered below `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPoint {
    pub session: u64,
    pub next: u64,
}

impl StreamPoint {
    /// Whether `self` includes everything up to `other` (the same session, as far or further).
    pub fn covers(self, other: StreamPoint) -> bool {
        self.session == other.session && self.next >= other.next
    }
}
pub use transport::{ShutdownHandle, Transport, Unmanaged};

use crate::protocol::Message;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here leaves it valid), so that one panicking thread cannot wedge the link.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Cuts `text` to the protocol's free-text limit at a character boundary, so that a reason
/// sent in `Goodbye` can never fail to encode.
fn bounded(mut text: String) -> String {
    let max = crate::protocol::message::MAX_TEXT;
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A message's variant, for error messages.
fn kind(message: &Message) -> &'static str {
    match message {
        Message::Hello { .. } => "Hello",
        Message::HelloAck { .. } => "HelloAck",
        Message::Request { .. } => "Request",
        Message::Reply { .. } => "Reply",
        Message::Goodbye { .. } => "Goodbye",
        Message::ManifestRequest { .. } => "ManifestRequest",
        Message::ManifestEntry { .. } => "ManifestEntry",
        Message::ManifestBlocks { .. } => "ManifestBlocks",
        Message::ManifestEnd { .. } => "ManifestEnd",
        Message::JournalRequest { .. } => "JournalRequest",
        Message::JournalChunk { .. } => "JournalChunk",
        Message::JournalEnd { .. } => "JournalEnd",
    }
}
