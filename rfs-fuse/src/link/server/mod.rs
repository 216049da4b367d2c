//! [`serve`]: the secondary's end of the link, applying the primary's requests in order,
//! each with the receiver of the root it names.
//!
//! Replies are batched: every request already decoded is handled before the replies are
//! written, so a burst of small writes costs one `write(2)` of replies, not one per request.
//! With [`AckLevel::Received`] the whole batch is acknowledged before any of it is applied
//! (except `Fsync`/`FsyncDir`, acknowledged only once durable), and each request is then
//! confirmed with `Applied` or its error, so that the primary can judge a late failure
//! against its own outcome.

use crate::link::error::LinkError;
use crate::link::incoming::{Incoming, Opening};
use crate::link::{StreamPoint, bounded, kind};
use crate::protocol::op::Op;
use crate::protocol::{AckLevel, Message, PROTOCOL_VERSION, RemoteError};
use crate::receiver::Receiver;
use bytes::BytesMut;

mod types;

use std::io::{Read, Write};
pub use types::{AppliedPoint, Ended, LateFailure, MAX_KEPT_LATE_FAILURES, ServeEnd, ServeOptions};

/// Serves one primary on one connection until it says Goodbye or closes (`Ok`), or until
/// the connection fails, a frame is bad, the primary breaks the protocol (wrong version,
/// module or number of roots, a gap in sequence numbers, a root index out of range) or
/// sends a request the receiver refuses as hostile (`Err`; the primary is told why in a
/// Goodbye when the connection still allows it). A failed request is answered with its
/// errno and does not end the connection.
///
/// `receivers` holds one receiver per replicated directory of the module, indexed by root
/// (the primary's `Hello` must announce that many).
///
/// Blocks the calling thread. The caller owns the connection: set `TCP_NODELAY`, and a read
/// timeout if a silent primary should end the connection.
pub fn serve<R: Read, W: Write>(
    reader: R,
    writer: W,
    receivers: &mut [Receiver],
    options: ServeOptions,
) -> Result<ServeEnd, LinkError> {
    match Opening::read(reader) {
        Ok(opening) => serve_opened(opening, writer, receivers, options),
        Err(error) => {
            goodbye(writer, &error.to_string());
            Err(error)
        }
    }
}

/// [`serve`] a connection whose first message was already read (to tell a replication
/// stream from a manifest request).
pub fn serve_opened<R: Read, W: Write>(
    opening: Opening<R>,
    writer: W,
    receivers: &mut [Receiver],
    options: ServeOptions,
) -> Result<ServeEnd, LinkError> {
    let mut server = Server::new(opening.rest, writer, receivers, options);
    let result = server.handshake(opening.first).and_then(|()| server.run());
    match result {
        Ok(ended) => {
            server.end.ended = ended;
            Ok(server.end)
        }
        Err(error) => {
            server.goodbye(&error.to_string());
            Err(error)
        }
    }
}

/// A request accepted into a batch: in sequence, to an existing root.
struct Queued {
    seq: u64,
    root: u16,
    op: Op,
}

/// Why collecting a batch stopped, to act on once the batch is handled.
enum Stop {
    Ended(Ended),
    Failed(LinkError),
}

struct Server<'r, R, W> {
    incoming: Incoming<R>,
    writer: W,
    /// Replies not written yet.
    out: BytesMut,
    receivers: &'r mut [Receiver],
    options: ServeOptions,
    next_seq: u64,
    end: ServeEnd,
}

impl<'r, R: Read, W: Write> Server<'r, R, W> {
    fn new(
        incoming: Incoming<R>,
        writer: W,
        receivers: &'r mut [Receiver],
        options: ServeOptions,
    ) -> Server<'r, R, W> {
        Server {
            incoming,
            writer,
            out: BytesMut::new(),
            receivers,
            options,
            next_seq: 0,
            end: ServeEnd {
                node: String::new(),
                session: 0,
                ended: Ended::Eof,
                requests: 0,
                late_failures: Vec::new(),
                late_failures_total: 0,
            },
        }
    }

    fn handshake(&mut self, hello: Message) -> Result<(), LinkError> {
        let Message::Hello {
            version,
            module,
            node,
            session,
            roots,
        } = hello
        else {
            return Err(LinkError::Protocol(format!(
                "expected Hello, got {}",
                kind(&hello)
            )));
        };
        if version != PROTOCOL_VERSION {
            return Err(LinkError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            });
        }
        if module != self.options.module {
            return Err(LinkError::ModuleMismatch {
                expected: self.options.module.clone(),
                got: module,
            });
        }
        if usize::from(roots) != self.receivers.len() {
            return Err(LinkError::RootsMismatch {
                ours: self.receivers.len(),
                theirs: roots,
            });
        }
        self.end.node = node;
        self.end.session = session;
        // No session state survives a connection yet: every stream starts afresh, and the
        // handles a previous one left open would collide with the new one's.
        for receiver in self.receivers.iter_mut() {
            receiver.close_handles();
        }
        self.push(&Message::HelloAck {
            version: PROTOCOL_VERSION,
            resume_from: self.next_seq,
        })?;
        self.flush()
    }

    fn run(&mut self) -> Result<Ended, LinkError> {
        loop {
            let (batch, stop) = self.collect();
            self.process(batch)?;
            match stop {
                None => {}
                Some(Stop::Ended(ended)) => return Ok(ended),
                Some(Stop::Failed(error)) => return Err(error),
            }
        }
    }

    /// Every request decodable now (reading only if none is), up to the first message that
    /// ends the connection; the requests before a bad frame are still valid and handled.
    fn collect(&mut self) -> (Vec<Queued>, Option<Stop>) {
        let mut batch = Vec::new();
        let mut next = match self.next_message() {
            Ok(Some(message)) => Some(message),
            Ok(None) => return (batch, Some(Stop::Ended(Ended::Eof))),
            Err(error) => return (batch, Some(Stop::Failed(error))),
        };
        while let Some(message) = next {
            match message {
                Message::Request { seq, root, op } if seq == self.next_seq => {
                    let roots = self.receivers.len();
                    if usize::from(root) >= roots {
                        let error = LinkError::NoSuchRoot { seq, root, roots };
                        return (batch, Some(Stop::Failed(error)));
                    }
                    self.next_seq = seq.wrapping_add(1);
                    batch.push(Queued { seq, root, op });
                }
                Message::Request { seq, .. } => {
                    let error = LinkError::Protocol(format!(
                        "request {seq} out of order (expected {})",
                        self.next_seq
                    ));
                    return (batch, Some(Stop::Failed(error)));
                }
                Message::Goodbye { reason } => {
                    return (batch, Some(Stop::Ended(Ended::Goodbye(reason))));
                }
                other => {
                    let error = LinkError::Protocol(format!(
                        "unexpected {} from the primary",
                        kind(&other)
                    ));
                    return (batch, Some(Stop::Failed(error)));
                }
            }
            next = match self.incoming.buffered() {
                Ok(message) => message,
                Err(error) => return (batch, Some(Stop::Failed(error))),
            };
        }
        (batch, None)
    }

    fn process(&mut self, batch: Vec<Queued>) -> Result<(), LinkError> {
        let early = self.options.ack_level == AckLevel::Received;
        if early && !batch.is_empty() {
            for queued in &batch {
                if !is_sync(&queued.op) {
                    self.reply(queued.seq, Ok(AckLevel::Received))?;
                }
            }
            self.flush()?;
        }
        for Queued { seq, root, op } in batch {
            self.end.requests += 1;
            let roots = self.receivers.len();
            let Some(receiver) = self.receivers.get_mut(usize::from(root)) else {
                // `collect` let no such request through.
                return Err(LinkError::NoSuchRoot { seq, root, roots });
            };
            match receiver.apply(&op) {
                Ok(()) => self.reply(seq, Ok(AckLevel::Applied))?,
                Err(error) => {
                    let message = format!("root {root}: {error}");
                    let remote = RemoteError::new(error.errno() as i32, message);
                    self.reply(seq, Err(remote.clone()))?;
                    if error.is_refused() {
                        // Tell the primary which request, then end the connection.
                        let _ = self.flush();
                        return Err(LinkError::RefusedOp { seq, root, error });
                    }
                    if early && !is_sync(&op) {
                        self.late_failure(seq, root, remote);
                    }
                }
            }
        }
        if let Some(point) = &self.options.applied {
            *point
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(StreamPoint {
                session: self.end.session,
                next: self.next_seq,
            });
        }
        self.flush()
    }

    fn late_failure(&mut self, seq: u64, root: u16, error: RemoteError) {
        let failure = LateFailure {
            seq,
            root,
            errno: error.errno,
            message: error.message,
        };
        if let Some(callback) = &mut self.options.on_late_failure {
            callback(&failure);
        }
        self.end.late_failures_total += 1;
        if self.end.late_failures.len() < MAX_KEPT_LATE_FAILURES {
            self.end.late_failures.push(failure);
        }
    }

    /// The next message, reading as needed; `None` at a clean end of stream.
    fn next_message(&mut self) -> Result<Option<Message>, LinkError> {
        self.incoming.next()
    }

    fn reply(&mut self, seq: u64, result: Result<AckLevel, RemoteError>) -> Result<(), LinkError> {
        self.push(&Message::Reply { seq, result })
    }

    fn push(&mut self, message: &Message) -> Result<(), LinkError> {
        crate::protocol::write_message(&mut self.out, message).map_err(|source| LinkError::Encode {
            what: kind(message),
            source,
        })
    }

    fn flush(&mut self) -> Result<(), LinkError> {
        let written = self
            .writer
            .write_all(&self.out)
            .and_then(|()| self.writer.flush());
        self.out.clear();
        written.map_err(LinkError::io("sending replies to the primary"))
    }

    /// After the replies not written yet.
    fn goodbye(&mut self, reason: &str) {
        if self.flush().is_ok() {
            goodbye(&mut self.writer, reason);
        }
    }
}

/// Tells the primary why the connection ends; best effort: the connection may be what failed.
pub(crate) fn goodbye<W: Write>(mut writer: W, reason: &str) {
    let goodbye = Message::Goodbye {
        reason: bounded(reason.to_string()),
    };
    if let Ok(frame) = crate::protocol::encode_message(&goodbye) {
        let _ = writer.write_all(&frame).and_then(|()| writer.flush());
    }
}

/// Requests acknowledged only once applied whatever the ack level: fsync must be durable
/// on both replicas before it returns to the application.
fn is_sync(op: &Op) -> bool {
    matches!(op, Op::Fsync { .. } | Op::FsyncDir { .. })
}
