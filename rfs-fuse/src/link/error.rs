//! [`LinkError`]: why a replication link could not be set up or why it ended.
//!
//! These end up in the module log as the reason the peer was declared lost or refused, so
//! each says what was being done and what the peer did wrong.

use crate::protocol::{EncodeError, StreamError};
use crate::receiver::ApplyError;
use std::io;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The transport failed; `doing` says at which step (`"sending Hello"`).
    #[error("{doing}: {source}")]
    Io {
        doing: &'static str,
        #[source]
        source: io::Error,
    },
    /// The peer's bytes are not a valid stream (bad CRC, oversized frame, undecodable
    /// message). Frame boundaries are lost: the connection cannot continue.
    #[error("bad stream from the peer: {0}")]
    BadStream(#[from] StreamError),
    /// The peer sent a valid message at the wrong time (a second `Hello`, a gap in the
    /// sequence numbers, a reply to nothing).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The two sides speak different wire formats.
    #[error("protocol version mismatch: this side speaks version {ours}, the peer {theirs}")]
    VersionMismatch { ours: u16, theirs: u16 },
    /// The primary's stream is for another module than the one this secondary serves.
    #[error("module mismatch: this secondary serves {expected:?}, the primary sent {got:?}")]
    ModuleMismatch { expected: String, got: String },
    /// The primary replicates another number of directories than this secondary has
    /// receivers for: root indexes would not name the same directories on both sides.
    #[error(
        "replicated directory count mismatch: this secondary has {ours} roots, \
         the primary replicates {theirs}"
    )]
    RootsMismatch { ours: usize, theirs: u16 },
    /// A request names a root this secondary does not have.
    #[error("request {seq} names root {root}, but there are only {roots} roots")]
    NoSuchRoot { seq: u64, root: u16, roots: usize },
    /// The secondary said `Goodbye` instead of `HelloAck`; its reason is quoted.
    #[error("the peer refused the link: {0}")]
    Refused(String),
    /// The handshake did not complete.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The peer did not answer `Hello` within the send timeout.
    #[error("no answer to Hello within {0:?}")]
    HandshakeTimeout(Duration),
    /// The secondary's receiver refused a request as hostile or out of contract (a path
    /// escaping the root, an unknown handle): the stream is not trustworthy any more.
    #[error("request {seq} to root {root} refused: {error}")]
    RefusedOp {
        seq: u64,
        root: u16,
        #[source]
        error: ApplyError,
    },
    /// A message of ours could not be encoded (e.g. a module name over the limit).
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: EncodeError,
    },
    /// The secondary could not list its replicated directories.
    #[error("listing the replica: {0}")]
    Manifest(#[from] crate::sync::manifest::ManifestError),
    /// The reader thread could not be started.
    #[error("starting the link's reader thread: {0}")]
    Thread(#[source] io::Error),
}

impl LinkError {
    pub(super) fn io(doing: &'static str) -> impl FnOnce(io::Error) -> LinkError {
        move |source| LinkError::Io { doing, source }
    }
}
