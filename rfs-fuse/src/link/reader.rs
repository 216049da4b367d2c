//! The sender's reader thread: turns the secondary's bytes into replies for the waiters.

use super::shared::Shared;
use crate::protocol::{Message, MessageDecoder};
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread::{self, JoinHandle};

/// Bytes read at once: a few replies' worth is typical; a large chunk only matters after a
/// stall, when many replies arrive together.
const READ_CHUNK: usize = 64 << 10;

/// The first message (or why none came) goes to `handshake`, for `start` to check; every
/// later one is a reply. When the stream ends for any reason, the link is broken (unless it
/// is being closed).
pub(super) fn spawn(
    shared: Arc<Shared>,
    reader: Box<dyn Read + Send>,
    handshake: SyncSender<Result<Message, String>>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("rfs-link-reader".to_string())
        .spawn(move || {
            let reason = run(&shared, reader, handshake);
            shared.reader_finished(reason);
        })
}

fn run(
    shared: &Shared,
    mut reader: Box<dyn Read + Send>,
    handshake: SyncSender<Result<Message, String>>,
) -> String {
    let mut decoder = MessageDecoder::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut handshake = Some(handshake);
    let reason = loop {
        match decoder.next() {
            Ok(Some(message)) => {
                if let Some(handshake) = handshake.take() {
                    // `start` gave up waiting: it shuts the connection down, ending us.
                    let _ = handshake.send(Ok(message));
                } else if let Err(reason) = shared.on_message(message) {
                    break reason;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("bad stream from the secondary: {e}"),
        }
        match reader.read(&mut chunk) {
            Ok(0) => {
                break match decoder.finish() {
                    Ok(()) => "the secondary closed the connection".to_string(),
                    Err(e) => format!("bad stream from the secondary: {e}"),
                };
            }
            Ok(n) => decoder.push(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break format!("reading from the secondary: {e}"),
        }
    };
    if let Some(handshake) = handshake {
        let _ = handshake.send(Err(reason.clone()));
    }
    reason
}
