//! The messages of the replication stream and the limits every message respects.
//!
//! One connection carries one ordered stream per module, for all the module's replicated
//! directories ("roots", numbered from 0 in the module's configuration order). The primary
//! opens it with [`Message::Hello`], the secondary answers [`Message::HelloAck`]; then the
//! primary sends [`Message::Request`]s with increasing sequence numbers, each naming its root,
//! and the secondary answers each with one or more [`Message::Reply`]s. Either side may say
//! [`Message::Goodbye`] before closing, so that a deliberate stop is logged as such and not
//! as a lost peer.
//!
//! A second conversation asks the secondary what it holds: the primary opens the connection
//! with [`Message::ManifestRequest`], the secondary answers every entry of every root
//! ([`Message::ManifestEntry`], then [`Message::ManifestBlocks`] for a file with more hashes
//! than fit one message) and [`Message::ManifestEnd`]. Such a connection never replaces the
//! replication stream.

use super::manifest::{Entry, Hash};
use super::op::Op;

/// The wire format's version, sent in `Hello` and `HelloAck`. Bump it on any change to the
/// encoding in [`codec`](super::codec).
pub const PROTOCOL_VERSION: u16 = 3;

/// Largest `Write` payload: the FUSE `max_write` (1 MiB, capped by `fs.fuse.max_pages_limit`).
pub const MAX_WRITE: usize = 1 << 20;
/// Largest extended attribute name (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest extended attribute value (`XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 << 10;
/// Largest symlink target (`PATH_MAX`).
pub const MAX_SYMLINK_TARGET: usize = 4096;
/// Largest relative path, as [`RelPath::new`](super::op::RelPath::new) enforces.
pub const MAX_PATH: usize = 4096;
/// Largest module or node name in `Hello`.
pub const MAX_NAME: usize = 255;
/// Largest free text (error message, goodbye reason): room for two paths and some words.
pub const MAX_TEXT: usize = 16 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Primary → secondary, first message of a connection.
    Hello {
        /// The primary's [`PROTOCOL_VERSION`].
        version: u16,
        /// The module whose folders this stream replicates: a secondary serving several
        /// modules refuses a stream meant for another one.
        module: String,
        /// The primary's node name, for logs.
        node: String,
        /// Identifies the primary's stream (sequence numbers restart with a new session), so
        /// that a reconnection can resume where the previous connection stopped.
        session: u64,
        /// How many directories the module replicates: the secondary refuses a stream
        /// whose count differs from its own (the root indexes would not mean the same).
        roots: u16,
    },
    /// Primary → secondary: one mutating operation on replicated directory `root`, in
    /// stream order (one sequence across all roots).
    Request { seq: u64, root: u16, op: Op },
    /// Secondary → primary, answer to `Hello`.
    HelloAck {
        /// The version the secondary will speak.
        version: u16,
        /// The next sequence number the secondary expects in this session (what it has not
        /// received yet); requests below it need not be sent again.
        resume_from: u64,
    },
    /// Secondary → primary: how far request `seq` got. A secondary may send `Received` and
    /// later `Applied` for one request; an error is final.
    Reply {
        seq: u64,
        result: Result<AckLevel, RemoteError>,
    },
    /// Either side, before a deliberate close.
    Goodbye { reason: String },
    /// Primary → secondary, first message of a manifest connection: list every entry of
    /// every root, with the hashes of blocks of `block_size` bytes.
    ManifestRequest {
        version: u16,
        module: String,
        /// How many directories the module replicates, as in `Hello`.
        roots: u16,
        block_size: u32,
    },
    /// Secondary → primary: one entry of root `root`, carrying at most
    /// [`MAX_HASHES`](super::manifest::MAX_HASHES) of its block hashes.
    ManifestEntry { root: u16, entry: Box<Entry> },
    /// Secondary → primary: more block hashes of the entry just sent.
    ManifestBlocks { hashes: Vec<Hash> },
    /// Secondary → primary: the manifest is complete; `entries` were sent.
    ManifestEnd { entries: u64 },
    /// Primary → secondary, first message of a journal connection: send this node's own
    /// change journal (a secondary that was primary names there the writes it may hold that
    /// its peer never received).
    JournalRequest {
        version: u16,
        module: String,
        roots: u16,
    },
    /// Secondary → primary: the next bytes of root `root`'s journal records (at most
    /// [`MAX_WRITE`]).
    JournalChunk { root: u16, data: bytes::Bytes },
    /// Secondary → primary: every journal was sent, `bytes` in all.
    JournalEnd { bytes: u64 },
}

impl Message {
    /// Whether only the primary sends this kind of message (the receiving side checks it:
    /// a secondary must never accept a `Reply`, nor a primary a `Request`).
    pub fn is_from_primary(&self) -> bool {
        matches!(
            self,
            Message::Hello { .. }
                | Message::Request { .. }
                | Message::ManifestRequest { .. }
                | Message::JournalRequest { .. }
        )
    }
}

/// How far a request got on the secondary. Ordered: `Applied` implies `Received`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AckLevel {
    /// In the secondary's memory (`<rfs async="second">`, the default).
    Received,
    /// Applied to the secondary's file system (`<rfs async="none">`, and always for fsync).
    Applied,
}

/// The secondary failed to apply a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (errno {errno})")]
pub struct RemoteError {
    pub errno: i32,
    pub message: String,
}

impl RemoteError {
    /// Builds an error whose message fits [`MAX_TEXT`] (truncated at a character boundary),
    /// so that reporting a failure can never itself fail to encode.
    pub fn new(errno: i32, message: impl Into<String>) -> RemoteError {
        let mut message = message.into();
        if message.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        RemoteError { errno, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_error_messages_are_truncated_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT); // 2 bytes each
        let e = RemoteError::new(5, long);
        assert_eq!(e.message.len(), MAX_TEXT);
        let odd = format!("x{}", "é".repeat(MAX_TEXT));
        assert_eq!(RemoteError::new(5, odd).message.len(), MAX_TEXT - 1);
        assert_eq!(RemoteError::new(2, "gone").to_string(), "gone (errno 2)");
    }
}
