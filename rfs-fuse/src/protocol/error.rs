//! Errors of the replication stream's wire format.
//!
//! A frame or message that fails any check closes the connection (and the primary resyncs
//! what was in flight), so the log line these errors produce is all an operator gets to
//! understand why: each one says *what* was wrong and *where* (which message field, which
//! limit, which checksum).

use super::op::PathError;

/// What is wrong with one field of a message. Shared by decoding (a peer sent it) and
/// encoding (we were about to send something the peer would reject).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("needs {needed} bytes but only {left} remain")]
    Truncated { needed: u64, left: usize },
    #[error("{len} bytes exceed the {max}-byte limit")]
    TooLong { len: u64, max: usize },
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    #[error("invalid boolean {0} (must be 0 or 1)")]
    BadBool(u8),
    #[error("unknown flag bits {0:#04x}")]
    UnknownBits(u8),
    #[error("{0} nanoseconds is not below one second")]
    BadNanos(u32),
    #[error("must not be empty")]
    Empty,
    #[error("must not contain a NUL byte")]
    Nul,
    #[error("must be valid UTF-8")]
    NotUtf8,
    #[error("{0} unexpected trailing bytes")]
    Trailing(usize),
    #[error("{value} is outside {min}..={max}")]
    OutOfRange { value: u64, min: u64, max: u64 },
    #[error("names not in strictly increasing order")]
    Unsorted,
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Path(#[from] PathError),
}

/// A frame's payload is not a valid message, e.g.
/// `Rename.to: path "../x" has an empty, `.` or `..` component`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct DecodeError {
    /// The message field at fault, as `Variant.field` (`Request.op` for the op's tag,
    /// `message` for the message tag and trailing bytes).
    pub field: &'static str,
    pub problem: Invalid,
}

/// A message that cannot be sent because the peer would reject it. Refusing it here keeps
/// the failure local (an errno for one operation) instead of closing the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode {field}: {problem}")]
    Field {
        field: &'static str,
        problem: Invalid,
    },
    #[error("cannot encode: {0}")]
    Frame(#[from] FrameError),
}

/// The byte stream is not a valid sequence of frames. The stream cannot be resynchronised
/// after this (frame boundaries are lost), so the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: u64, max: usize },
    #[error(
        "frame of {len} bytes fails its CRC32 check (header says {expected:#010x}, payload hashes to {actual:#010x})"
    )]
    BadCrc {
        len: usize,
        expected: u32,
        actual: u32,
    },
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
}

/// Either layer of [`MessageDecoder`](super::stream::MessageDecoder) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad message: {0}")]
    Decode(#[from] DecodeError),
}
