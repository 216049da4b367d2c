//! [`Incoming`]: the messages arriving on one connection, read in bounded chunks; and
//! [`Opening`], a connection's first message, read before deciding which conversation the
//! connection holds (a replication stream or a manifest request).

use super::error::LinkError;
use crate::protocol::{Message, MessageDecoder};
use std::io::{self, Read};

/// Bytes read at once: up to a few hundred small requests per batch.
const READ_CHUNK: usize = 256 << 10;

pub struct Incoming<R> {
    reader: R,
    decoder: MessageDecoder,
    chunk: Vec<u8>,
    /// What a read failure was doing, for its error (`"reading from the primary"`).
    doing: &'static str,
}

impl<R: Read> Incoming<R> {
    pub fn new(reader: R, doing: &'static str) -> Incoming<R> {
        Incoming {
            reader,
            decoder: MessageDecoder::new(),
            chunk: vec![0; READ_CHUNK],
            doing,
        }
    }

    /// The next message, reading as needed; `None` at a clean end of stream.
    pub fn next(&mut self) -> Result<Option<Message>, LinkError> {
        loop {
            if let Some(message) = self.decoder.next()? {
                return Ok(Some(message));
            }
            match self.reader.read(&mut self.chunk) {
                Ok(0) => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
                Ok(n) => self.decoder.push(self.chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LinkError::io(self.doing)(e)),
            }
        }
    }

    /// The next message already received, without reading.
    pub fn buffered(&mut self) -> Result<Option<Message>, LinkError> {
        Ok(self.decoder.next()?)
    }
}

/// A connection's first message and the rest of its stream.
pub struct Opening<R> {
    pub(super) first: Message,
    pub(super) rest: Incoming<R>,
}

impl<R: Read> Opening<R> {
    /// Reads the first message from the primary.
    pub fn read(reader: R) -> Result<Opening<R>, LinkError> {
        let mut rest = Incoming::new(reader, "reading from the primary");
        match rest.next()? {
            Some(first) => Ok(Opening { first, rest }),
            None => Err(LinkError::Handshake(
                "the primary closed the connection before its first message".to_string(),
            )),
        }
    }

    /// Whether the connection asks for a manifest (and so must not replace the stream).
    pub fn is_manifest_request(&self) -> bool {
        matches!(self.first, Message::ManifestRequest { .. })
    }

    /// Whether the connection asks for this node's change journal (likewise).
    pub fn is_journal_request(&self) -> bool {
        matches!(self.first, Message::JournalRequest { .. })
    }
}
