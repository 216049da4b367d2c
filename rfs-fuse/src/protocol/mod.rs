//! The replication stream. The operation types in [`op`] are the contract between the
//! overlay (which produces them), the wire format and the receiver.
//!
//! Layers, bottom up, all sans-IO (bytes in, bytes out; no sockets, no TLS, no runtime):
//! - [`frame`]: `[u32 length][u32 CRC32][payload]` over any ordered byte stream;
//! - [`codec`]: a message's canonical binary encoding, validating everything on decode;
//! - [`message`]: what the primary and the secondary say to each other;
//! - [`stream`]: both layers together ([`encode_message`], [`MessageDecoder`]).
//!
//! Any decoding error closes the connection: a corrupted stream is never applied.

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

pub mod codec;
pub mod error;
pub mod frame;
pub mod manifest;
pub mod message;
// `RelPath::new` indexes after its own emptiness check; op.rs is shared, left as is.
#[allow(clippy::indexing_slicing)]
pub mod op;
pub mod stream;

#[cfg(test)]
mod tests;

pub use error::{DecodeError, EncodeError, FrameError, Invalid, StreamError};
pub use frame::{FrameDecoder, MAX_FRAME, encode_frame, write_frame};
pub use message::{AckLevel, Message, PROTOCOL_VERSION, RemoteError};
pub use stream::{MessageDecoder, encode_message, write_message};
