//! The journal conversation: a primary asks its returning peer, a former primary, for that
//! node's own change journal ([`request_journal`]): it names the writes the peer may hold that
//! the new primary never received, to be copied over again. The peer answers with its
//! journal files' bytes ([`serve_journal`]); reading the records is the engine's business.
//! It runs on its own connection beside the replication stream, like the manifest.

use super::error::LinkError;
use super::incoming::{Incoming, Opening};
use super::kind;
use super::manifest::{check_asked, send};
use super::server::goodbye;
use crate::protocol::message::MAX_WRITE;
use crate::protocol::{Message, PROTOCOL_VERSION};
use bytes::Bytes;
use std::io::{BufWriter, Read, Write};

/// The most journal bytes a peer may send in all (memory bound).
pub const MAX_JOURNAL_BYTES: u64 = 256 << 20;

/// Answers the journal request that opened this connection with `journals` (one byte string
/// per root, the module's in configuration order); how many bytes were sent. A request for
/// another module, protocol version or number of roots is refused with a Goodbye.
pub fn serve_journal<R: Read, W: Write>(
    opening: Opening<R>,
    writer: W,
    module: &str,
    journals: &[Vec<u8>],
) -> Result<u64, LinkError> {
    let mut writer = BufWriter::new(writer);
    let result = accepted(&opening.first, module, journals.len())
        .and_then(|()| send_journals(&mut writer, journals));
    if let Err(error) = &result {
        goodbye(&mut writer, &error.to_string());
    }
    result
}

fn accepted(request: &Message, module: &str, roots: usize) -> Result<(), LinkError> {
    let Message::JournalRequest {
        version,
        module: asked,
        roots: asked_roots,
    } = request
    else {
        return Err(LinkError::Protocol(format!(
            "expected JournalRequest, got {}",
            kind(request)
        )));
    };
    check_asked(*version, asked, *asked_roots, module, roots)
}

fn send_journals<W: Write>(writer: &mut W, journals: &[Vec<u8>]) -> Result<u64, LinkError> {
    let mut sent = 0u64;
    for (index, journal) in journals.iter().enumerate() {
        let root = u16::try_from(index).map_err(|_| {
            LinkError::Protocol(format!("root {index} beyond the protocol's range"))
        })?;
        for chunk in journal.chunks(MAX_WRITE) {
            let data = Bytes::copy_from_slice(chunk);
            send(writer, &Message::JournalChunk { root, data })?;
            sent += chunk.len() as u64;
        }
    }
    send(writer, &Message::JournalEnd { bytes: sent })?;
    writer
        .flush()
        .map_err(LinkError::io("sending the journal"))?;
    Ok(sent)
}

/// Asks the peer at the other end of a connection (see
/// [`side_connection`](super::side_connection)) for its change journal of each of the
/// module's `roots`.
pub fn request_journal<R: Read, W: Write>(
    reader: R,
    mut writer: W,
    module: &str,
    roots: u16,
) -> Result<Vec<Vec<u8>>, LinkError> {
    let request = Message::JournalRequest {
        version: PROTOCOL_VERSION,
        module: module.to_string(),
        roots,
    };
    send(&mut writer, &request)?;
    writer
        .flush()
        .map_err(LinkError::io("sending the journal request"))?;
    let mut incoming = Incoming::new(reader, "reading the journal");
    let mut journals = vec![Vec::new(); usize::from(roots)];
    let mut received = 0u64;
    loop {
        let message = incoming.next()?.ok_or_else(|| {
            LinkError::Protocol("the peer closed the connection before JournalEnd".into())
        })?;
        match message {
            Message::JournalChunk { root, data } => {
                let journal = journals.get_mut(usize::from(root)).ok_or_else(|| {
                    LinkError::Protocol(format!(
                        "a journal chunk names root {root}, but there are only {roots} roots"
                    ))
                })?;
                received += data.len() as u64;
                if received > MAX_JOURNAL_BYTES {
                    return Err(LinkError::Protocol(format!(
                        "the journal is larger than {MAX_JOURNAL_BYTES} bytes"
                    )));
                }
                journal.extend_from_slice(&data);
            }
            Message::JournalEnd { bytes } if bytes == received => return Ok(journals),
            Message::JournalEnd { bytes } => {
                return Err(LinkError::Protocol(format!(
                    "the journal announces {bytes} bytes but {received} arrived"
                )));
            }
            Message::Goodbye { reason } => return Err(LinkError::Refused(reason)),
            other => {
                return Err(LinkError::Protocol(format!(
                    "unexpected {} in a journal",
                    kind(&other)
                )));
            }
        }
    }
}
