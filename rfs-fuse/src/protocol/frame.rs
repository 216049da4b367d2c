//! Framing over any byte stream: `[u32 payload length][u32 CRC32 of payload][payload]`,
//! both integers little-endian.
//!
//! The decoder is sans-IO (bytes in, frames out) so that it runs under tokio or std alike and
//! knows nothing of sockets or TLS: authentication or encryption can wrap the stream later
//! without touching it. A frame that is too large or fails its CRC is an error after which
//! the stream is unusable (frame boundaries are lost): the caller closes the connection.

use super::error::FrameError;
use super::message::MAX_WRITE;
use bytes::{BufMut, Bytes, BytesMut};

/// Length of a frame's header (length + CRC32).
pub const HEADER_LEN: usize = 8;

/// Largest payload (1114112 bytes): a maximal write (whose other fields take 30 bytes) plus
/// headroom. Every other message is far smaller: the largest, an xattr of 64 KiB with a
/// 4096-byte path, is under 70 KiB.
pub const MAX_FRAME: usize = MAX_WRITE + (64 << 10);

/// One whole frame around `payload`.
pub fn encode_frame(payload: &[u8]) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::with_capacity(HEADER_LEN.saturating_add(payload.len()));
    write_frame(&mut out, payload)?;
    Ok(out.freeze())
}

/// Appends one frame around `payload` to `dst` (e.g. a connection's output buffer). On error
/// `dst` is left as it was.
pub fn write_frame(dst: &mut BytesMut, payload: &[u8]) -> Result<(), FrameError> {
    let start = begin(dst);
    dst.put_slice(payload);
    seal(dst, start)
}

/// Starts a frame in `dst` whose payload the caller appends in place (so that a large payload
/// is copied once, into the frame); returns the frame's start for [`seal`].
pub(super) fn begin(dst: &mut BytesMut) -> usize {
    let start = dst.len();
    dst.put_bytes(0, HEADER_LEN);
    start
}

/// Fills in the header of the frame begun at `start` now that its payload is complete, or
/// removes the frame if the payload is too large.
pub(super) fn seal(dst: &mut BytesMut, start: usize) -> Result<(), FrameError> {
    let payload_start = start.saturating_add(HEADER_LEN);
    let payload = dst.get(payload_start..).unwrap_or_default();
    let too_large = FrameError::TooLarge {
        len: u64::try_from(payload.len()).unwrap_or(u64::MAX),
        max: MAX_FRAME,
    };
    let len = match u32::try_from(payload.len()) {
        Ok(len) if payload.len() <= MAX_FRAME => len,
        _ => {
            dst.truncate(start);
            return Err(too_large);
        }
    };
    let crc = crc32fast::hash(payload);
    if let Some(header) = dst.get_mut(start..payload_start) {
        let [a, b, c, d] = len.to_le_bytes();
        let [e, f, g, h] = crc.to_le_bytes();
        header.copy_from_slice(&[a, b, c, d, e, f, g, h]);
    }
    Ok(())
}

/// Splits a byte stream into frames. Feed it what the transport delivers with
/// [`push`](Self::push), then call [`next`](Self::next) until it returns `Ok(None)`.
///
/// It buffers at most one frame beyond what it has been pushed: a header announcing more
/// than [`MAX_FRAME`] is rejected as soon as its 4 length bytes arrive, before any of the
/// payload is awaited or space reserved for it. (The caller bounds what it pushes at once by
/// reading the transport in bounded chunks.) After an error it stays failed and drops input.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends bytes received from the transport.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete frame's payload, `Ok(None)` if more bytes are needed, or the error
    /// that makes the stream unusable (returned again on every later call).
    #[allow(clippy::should_implement_trait)] // fallible: an `Iterator` would hide the error
    pub fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.step().inspect_err(|e| {
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
        })
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// To call when the transport reaches end of stream: an error if it ended inside a
    /// frame (or the stream had already failed).
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None if self.buf.is_empty() => Ok(()),
            None => Err(FrameError::Truncated {
                buffered: self.buf.len(),
            }),
        }
    }

    fn step(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = read_u32(&self.buf, 0) else {
            return Ok(None);
        };
        let too_large = || FrameError::TooLarge {
            len: u64::from(len),
            max: MAX_FRAME,
        };
        let len = usize::try_from(len).map_err(|_| too_large())?;
        if len > MAX_FRAME {
            return Err(too_large());
        }
        let total = HEADER_LEN + len; // ≤ MAX_FRAME + 8: no overflow
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        let expected = read_u32(&frame, 4).unwrap_or_default();
        let payload = frame.slice(HEADER_LEN..);
        let actual = crc32fast::hash(&payload);
        if actual != expected {
            return Err(FrameError::BadCrc {
                len,
                expected,
                actual,
            });
        }
        Ok(Some(payload))
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}
