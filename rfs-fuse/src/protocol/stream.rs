//! Both layers together: messages in frames, which is what the overlay and the receiver use.

use super::codec;
use super::error::{EncodeError, StreamError};
use super::frame::{self, FrameDecoder, HEADER_LEN};
use super::message::Message;
use bytes::{Bytes, BytesMut};

/// One whole frame carrying `msg`, in a single allocation: a write's data is copied once,
/// into the frame.
pub fn encode_message(msg: &Message) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::with_capacity(HEADER_LEN.saturating_add(codec::size_hint(msg)));
    write_message(&mut out, msg)?;
    Ok(out.freeze())
}

/// Appends one frame carrying `msg` to `dst` (e.g. a connection's output buffer, to batch
/// several messages in one write). On error `dst` is left as it was.
pub fn write_message(dst: &mut BytesMut, msg: &Message) -> Result<(), EncodeError> {
    dst.reserve(HEADER_LEN.saturating_add(codec::size_hint(msg)));
    let start = frame::begin(dst);
    if let Err(e) = codec::encode(msg, dst) {
        dst.truncate(start);
        return Err(e);
    }
    Ok(frame::seal(dst, start)?)
}

/// Turns a byte stream into messages: a [`FrameDecoder`] whose payloads are decoded. Any
/// error is final (returned again on every later call): the caller closes the connection.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    frames: FrameDecoder,
    failed: Option<StreamError>,
}

impl MessageDecoder {
    pub fn new() -> MessageDecoder {
        MessageDecoder::default()
    }

    /// Appends bytes received from the transport.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.frames.push(bytes);
        }
    }

    /// The next complete message, `Ok(None)` if more bytes are needed, or the error.
    #[allow(clippy::should_implement_trait)] // fallible: an `Iterator` would hide the error
    pub fn next(&mut self) -> Result<Option<Message>, StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = match self.frames.next() {
            Ok(Some(payload)) => codec::decode(&payload).map(Some).map_err(StreamError::from),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.frames = FrameDecoder::new();
        }
        result
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.frames.buffered()
    }

    /// To call at end of stream: an error if it ended inside a frame or had failed.
    pub fn finish(&self) -> Result<(), StreamError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(self.frames.finish()?),
        }
    }
}
