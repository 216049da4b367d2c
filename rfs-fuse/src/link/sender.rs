//! [`StreamReplicator`]: the primary's end of the link, carrying every replicated directory
//! ("root") of the module in one ordered stream. Each root's overlay gets a
//! [`RootReplicator`] (from [`StreamReplicator::root`]), its
//! [`Replicator`](super::Replicator) hook.
//!
//! [`send_to`](StreamReplicator::send_to) writes the request frame at once, under the mutex
//! that assigns sequence numbers, so frames leave in `send_to` order whatever their root; the
//! returned [`Pending`] waits for the reply matching its sequence number. Any number of
//! requests may be in flight (the overlay's threads overlap their round trips). One reader
//! thread routes replies to their waiters.

use super::StreamPoint;
use super::error::LinkError;
use super::hook::{LocalOutcome, Pending, ReplicationError};
use super::judge::Slot;
use super::root::RootReplicator;
use super::shared::{LinkState, Shared};
use super::stats::LinkStats;
use super::transport::Transport;
use super::{bounded, kind, lock, reader};
use crate::protocol::op::Op;
use crate::protocol::{Message, PROTOCOL_VERSION, RemoteError, encode_message, write_message};
use std::io::{Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the primary says about itself when it opens the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The module whose folders the link replicates (the secondary checks it).
    pub module: String,
    /// This node's name, for the secondary's logs.
    pub node: String,
    /// This primary's stream; sequence numbers restart with a new session.
    pub session: u64,
    /// How many directories the module replicates (the secondary checks it): requests
    /// name roots `0..roots`.
    pub roots: u16,
}

/// The primary's end of a replication link. See the [module](self) documentation.
///
/// Dropping it closes the link ([`close`](Self::close)).
pub struct StreamReplicator {
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
    roots: u16,
    session: u64,
}

impl std::fmt::Debug for StreamReplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReplicator")
            .field("stats", &self.stats())
            .finish()
    }
}

impl StreamReplicator {
    /// Opens the link over a connection's two halves: sends `Hello`, waits up to
    /// `send_timeout` for the secondary's `HelloAck` (checking its version), then starts the
    /// reader thread's routing of replies. The writer's write timeout is set to
    /// `send_timeout`. The caller should have set `TCP_NODELAY` on a TCP connection.
    pub fn start<R, W>(
        reader: R,
        mut writer: W,
        hello: Hello,
        send_timeout: Duration,
    ) -> Result<StreamReplicator, LinkError>
    where
        R: Read + Send + 'static,
        W: Transport + Send + 'static,
    {
        writer
            .set_write_timeout(send_timeout)
            .map_err(LinkError::io("setting the write timeout"))?;
        let shutdown = writer
            .shutdown_handle()
            .map_err(LinkError::io("preparing the connection's shutdown"))?;
        let (roots, session) = (hello.roots, hello.session);
        let frame = encode_message(&Message::Hello {
            version: PROTOCOL_VERSION,
            module: hello.module,
            node: hello.node,
            session: hello.session,
            roots,
        })
        .map_err(|source| LinkError::Encode {
            what: "Hello",
            source,
        })?;
        writer
            .write_all(&frame)
            .and_then(|()| writer.flush())
            .map_err(LinkError::io("sending Hello"))?;

        let shared = Arc::new(Shared::new(Box::new(writer), shutdown, send_timeout));
        let (handshake_tx, handshake_rx) = mpsc::sync_channel(1);
        let thread = reader::spawn(Arc::clone(&shared), Box::new(reader), handshake_tx)
            .map_err(LinkError::Thread)?;
        let link = StreamReplicator {
            shared,
            reader: Mutex::new(Some(thread)),
            roots,
            session,
        };
        let error = match handshake_rx.recv_timeout(send_timeout) {
            Ok(Ok(Message::HelloAck {
                version,
                resume_from,
            })) if version == PROTOCOL_VERSION => {
                lock(&link.shared.tx).next_seq = resume_from;
                return Ok(link);
            }
            Ok(Ok(Message::HelloAck { version, .. })) => LinkError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            },
            Ok(Ok(Message::Goodbye { reason })) => LinkError::Refused(reason),
            Ok(Ok(other)) => {
                LinkError::Protocol(format!("expected HelloAck, got {}", kind(&other)))
            }
            Ok(Err(reason)) => LinkError::Handshake(reason),
            Err(RecvTimeoutError::Timeout) => LinkError::HandshakeTimeout(send_timeout),
            Err(RecvTimeoutError::Disconnected) => {
                LinkError::Handshake("the reader thread ended".to_string())
            }
        };
        link.abort(&error.to_string());
        Err(error)
    }

    /// Registers the callback run exactly once when the link breaks (timeout, lost
    /// connection, bad frame, the secondary's Goodbye): the engine goes ALONE. Run at once if
    /// the link already broke; never after a deliberate [`close`](Self::close). Runs on
    /// whichever thread noticed the break, with no lock held, before the waiters are
    /// released (so a `PeerLost` verdict implies the engine was told): keep it short, e.g.
    /// post an event. Replaces a callback registered earlier that has not run.
    pub fn on_broken(&self, callback: impl FnOnce(String) + Send + 'static) {
        self.shared.set_on_broken(Box::new(callback));
    }

    /// The [`Replicator`](super::Replicator) hook of replicated directory `root`, for its
    /// overlay. A root outside `0..roots` (see [`Hello::roots`]) gets a hook whose requests
    /// never leave (see [`send_to`](Self::send_to)).
    pub fn root(self: &Arc<Self>, root: u16) -> RootReplicator {
        RootReplicator::new(Arc::clone(self), root)
    }

    /// How many roots this link carries (from [`Hello::roots`]).
    pub fn roots(&self) -> u16 {
        self.roots
    }

    /// Registers the callback run when the secondary reports, after acknowledging a request
    /// as received, that it failed to apply it, and the failure does not match the local
    /// outcome: the replicas diverged although the overlay's verdict was `Ok`, and the
    /// engine must resync. Arguments: the request's sequence number and the secondary's
    /// error (whose message names the root, the operation and its paths: `root 1: Unlink a`).
    pub fn on_late_failure(&self, callback: impl Fn(u64, &RemoteError) + Send + Sync + 'static) {
        self.shared.set_on_late_failure(Arc::new(callback));
    }

    /// Whether the link broke (see [`on_broken`](Self::on_broken)).
    pub fn is_broken(&self) -> bool {
        matches!(lock(&self.shared.state).link, LinkState::Broken(_))
    }

    pub fn stats(&self) -> LinkStats {
        self.shared.stats()
    }

    /// Closes the link deliberately: new sends fail with `PeerLost`, `Goodbye` follows the
    /// requests already sent, and the secondary's replies to those are awaited (up to the
    /// send timeout) before the connection is shut down. Idempotent.
    pub fn close(&self) {
        let open = {
            let mut state = lock(&self.shared.state);
            let open = state.link == LinkState::Open;
            if open {
                state.link = LinkState::Closing;
            }
            open
        };
        if open && self.say_goodbye("closed by the primary") && !self.on_reader_thread() {
            // The secondary answers every request before it reads Goodbye, then closes.
            self.shared.wait_reader(self.shared.send_timeout);
        }
        self.finish();
    }

    /// Ends the link at once, telling the secondary why: requests still awaiting a reply
    /// fail with `PeerLost` without waiting (for a peer declared lost, or a failed
    /// handshake). `on_broken` does not run.
    pub fn abort(&self, reason: &str) {
        lock(&self.shared.state).link = LinkState::Closed;
        self.say_goodbye(reason);
        self.finish();
    }

    /// Best effort; whether it was written.
    fn say_goodbye(&self, reason: &str) -> bool {
        let Ok(frame) = encode_message(&Message::Goodbye {
            reason: bounded(reason.to_string()),
        }) else {
            return false;
        };
        let mut tx = lock(&self.shared.tx);
        tx.writer
            .write_all(&frame)
            .and_then(|()| tx.writer.flush())
            .is_ok()
    }

    /// Whether we run in a callback on the reader thread (which then cannot wait for
    /// itself to end).
    fn on_reader_thread(&self) -> bool {
        lock(&self.reader)
            .as_ref()
            .is_some_and(|thread| thread.thread().id() == std::thread::current().id())
    }

    fn finish(&self) {
        let wait = !self.on_reader_thread();
        let reader_ended = self.shared.finish(wait);
        let thread = lock(&self.reader).take();
        // A reader that did not end (a transport without shutdown, or a close from one of
        // its own callbacks) is left to end on its own: joining it could block forever.
        if let Some(thread) = thread
            && reader_ended
        {
            let _ = thread.join();
        }
    }

    /// Where the stream is: every request sent so far lies below it.
    pub fn sent(&self) -> StreamPoint {
        StreamPoint {
            session: self.session,
            next: lock(&self.shared.tx).next_seq,
        }
    }

    /// Queues `op` for replicated directory `root` and returns at once; the verdict is
    /// collected with [`Pending::wait`]. A request the secondary would refuse before applying
    /// it (a root outside `0..roots`, a limit of the wire format exceeded) never leaves and
    /// does not break the link: its verdict is `PeerFailed(EINVAL)`, or `Ok` if the local
    /// call failed too (neither replica changed).
    pub fn send_to(&self, root: u16, op: Op) -> Pending {
        let shared = &self.shared;
        let mut guard = lock(&shared.tx);
        let tx = &mut *guard;
        let seq = tx.next_seq;
        tx.buf.clear();
        if root >= self.roots
            || write_message(&mut tx.buf, &Message::Request { seq, root, op }).is_err()
        {
            return Pending::new(|local| match local {
                LocalOutcome::Failed(_) => Ok(()),
                LocalOutcome::Applied => Err(ReplicationError::PeerFailed(libc::EINVAL)),
            });
        }
        let slot = {
            let mut state = lock(&shared.state);
            if let Some(reason) = state.refusal() {
                return Pending::failed(ReplicationError::PeerLost(reason));
            }
            let slot = Arc::new(Slot::new(seq, shared.send_timeout));
            state.slots.insert(seq, Arc::clone(&slot));
            slot
        };
        tx.next_seq = seq.wrapping_add(1);
        let written = tx
            .writer
            .write_all(&tx.buf)
            .and_then(|()| tx.writer.flush());
        let len = tx.buf.len();
        tx.buf.clear();
        drop(guard); // before `on_broken` runs, which may call back into the link
        match written {
            Ok(()) => shared.sent(len),
            Err(e) => {
                // The frame may be partly written: the stream is unusable. The slot is
                // failed by the break, so the verdict returns at once.
                shared.break_link(format!("writing request {seq} to the secondary: {e}"));
            }
        }
        let shared = Arc::clone(shared);
        Pending::new(move |local| shared.verdict(&slot, local))
    }
}

impl Drop for StreamReplicator {
    fn drop(&mut self) {
        self.close();
    }
}
