//! The state the sending threads, the verdicts and the reader thread share, and the one place
//! where the link breaks ([`Shared::break_link`]).

use super::hook::{LocalOutcome, ReplicationError};
use super::judge::{Slot, Waited};
use super::lock;
use super::stats::{LatencyWindow, LinkStats};
use super::transport::ShutdownHandle;
use crate::protocol::{AckLevel, Message, RemoteError};
use bytes::BytesMut;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub(super) type BrokenCallback = Box<dyn FnOnce(String) + Send>;
pub(super) type LateCallback = Arc<dyn Fn(u64, &RemoteError) + Send + Sync>;

/// The writing side, under the mutex that orders the stream: whoever holds it assigns the
/// next sequence number and writes that frame before anyone else can.
pub(super) struct Tx {
    pub writer: Box<dyn Write + Send>,
    /// Reused for every frame (it keeps the capacity of the largest write).
    pub buf: BytesMut,
    pub next_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LinkState {
    Open,
    /// `close` sent Goodbye and waits for the last replies.
    Closing,
    Closed,
    Broken(String),
}

/// The link's state and its waiters under one mutex, so that a sender cannot register a
/// waiter after the break drained them (it would then wait for its whole timeout).
pub(super) struct State {
    pub link: LinkState,
    pub slots: HashMap<u64, Arc<Slot>>,
}

impl State {
    /// Why a new request cannot be sent, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        match &self.link {
            LinkState::Open => None,
            LinkState::Closing | LinkState::Closed => Some("the link was closed".to_string()),
            LinkState::Broken(reason) => Some(reason.clone()),
        }
    }
}

/// `on_broken` runs exactly once: at the break if registered by then, else at registration.
#[derive(Default)]
struct BrokenNotice {
    callback: Option<BrokenCallback>,
    unreported: Option<String>,
    reported: bool,
}

#[derive(Default)]
struct Counters {
    ops_sent: AtomicU64,
    bytes_sent: AtomicU64,
    acks: AtomicU64,
    late_failures: AtomicU64,
    latency: Mutex<LatencyWindow>,
}

pub(super) struct Shared {
    pub tx: Mutex<Tx>,
    pub state: Mutex<State>,
    pub send_timeout: Duration,
    shutdown: ShutdownHandle,
    notice: Mutex<BrokenNotice>,
    late: Mutex<Option<LateCallback>>,
    counters: Counters,
    reader_done: Mutex<bool>,
    reader_done_cv: Condvar,
}

impl Shared {
    pub fn new(
        writer: Box<dyn Write + Send>,
        shutdown: ShutdownHandle,
        send_timeout: Duration,
    ) -> Shared {
        Shared {
            tx: Mutex::new(Tx {
                writer,
                buf: BytesMut::new(),
                next_seq: 0,
            }),
            state: Mutex::new(State {
                link: LinkState::Open,
                slots: HashMap::new(),
            }),
            send_timeout,
            shutdown,
            notice: Mutex::new(BrokenNotice::default()),
            late: Mutex::new(None),
            counters: Counters::default(),
            reader_done: Mutex::new(false),
            reader_done_cv: Condvar::new(),
        }
    }

    pub fn sent(&self, bytes: usize) {
        self.counters.ops_sent.fetch_add(1, Ordering::Relaxed);
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.counters.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Breaks the link (the first reason wins and is returned): new sends fail, the
    /// connection is shut down (waking a blocked reader or writer), `on_broken` runs unless
    /// the link was being closed deliberately, then every waiter gets `PeerLost`.
    pub fn break_link(&self, reason: String) -> String {
        let (slots, notify, reason) = {
            let mut state = lock(&self.state);
            let notify = match &state.link {
                LinkState::Open => true,
                LinkState::Closing => false,
                LinkState::Closed => return "the link was closed".to_string(),
                LinkState::Broken(first) => return first.clone(),
            };
            let slots: Vec<Arc<Slot>> = state.slots.drain().map(|(_, slot)| slot).collect();
            let unconfirmed = slots.iter().filter(|slot| !slot.is_outstanding()).count();
            let reason = if unconfirmed == 0 {
                reason
            } else {
                format!(
                    "{reason} ({unconfirmed} requests acknowledged as received were never \
                     confirmed applied)"
                )
            };
            state.link = LinkState::Broken(reason.clone());
            (slots, notify, reason)
        };
        self.shutdown.shutdown();
        // The engine hears of the break before any waiter returns `PeerLost`.
        if notify {
            let callback = {
                let mut notice = lock(&self.notice);
                match notice.callback.take() {
                    Some(callback) => {
                        notice.reported = true;
                        Some(callback)
                    }
                    None => {
                        notice.unreported = Some(reason.clone());
                        None
                    }
                }
            };
            if let Some(callback) = callback {
                callback(reason.clone());
            }
        }
        for slot in &slots {
            slot.lose(&reason);
        }
        reason
    }

    pub fn set_on_broken(&self, callback: BrokenCallback) {
        let reason = {
            let mut notice = lock(&self.notice);
            if notice.reported {
                return;
            }
            match notice.unreported.take() {
                Some(reason) => {
                    notice.reported = true;
                    reason
                }
                None => {
                    notice.callback = Some(callback);
                    return;
                }
            }
        };
        callback(reason);
    }

    pub fn set_on_late_failure(&self, callback: LateCallback) {
        *lock(&self.late) = Some(callback);
    }

    /// Ends the link without `on_broken` (a deliberate close or a failed handshake): shuts
    /// the connection down, gives the reader thread the send timeout to notice, and fails
    /// the remaining waiters. Returns whether the reader thread ended (not awaited unless
    /// `wait`).
    pub fn finish(&self, wait: bool) -> bool {
        self.shutdown.shutdown();
        let reader_ended = wait && self.wait_reader(self.send_timeout);
        let slots: Vec<Arc<Slot>> = {
            let mut state = lock(&self.state);
            if !matches!(state.link, LinkState::Broken(_)) {
                state.link = LinkState::Closed;
            }
            state.slots.drain().map(|(_, slot)| slot).collect()
        };
        for slot in slots {
            slot.lose("the link was closed before the secondary answered");
        }
        reader_ended
    }

    /// The verdict of `slot`'s request; a timeout breaks the link.
    pub fn verdict(&self, slot: &Slot, local: LocalOutcome) -> Result<(), ReplicationError> {
        match slot.wait(local) {
            Waited::Verdict(verdict) => verdict,
            Waited::TimedOut => {
                let reason = self.break_link(format!(
                    "no reply to request {} within the send timeout ({:?})",
                    slot.seq, self.send_timeout
                ));
                Err(ReplicationError::PeerLost(reason))
            }
        }
    }

    /// Handles one message from the secondary; `Err(reason)` breaks the link.
    pub fn on_message(&self, message: Message) -> Result<(), String> {
        match message {
            Message::Reply { seq, result } => self.on_reply(seq, result),
            Message::Goodbye { reason } => Err(format!("the secondary closed the link: {reason}")),
            Message::Hello { .. } => Err("protocol violation: Hello from the secondary".into()),
            Message::HelloAck { .. } => Err("protocol violation: a second HelloAck".into()),
            Message::Request { seq, .. } => Err(format!(
                "protocol violation: request {seq} from the secondary"
            )),
            other => Err(format!(
                "protocol violation: {} on the replication stream",
                super::kind(&other)
            )),
        }
    }

    fn on_reply(&self, seq: u64, result: Result<AckLevel, RemoteError>) -> Result<(), String> {
        let now = Instant::now();
        let (slot, replied) = {
            let mut state = lock(&self.state);
            let Some(slot) = state.slots.get(&seq).cloned() else {
                return Err(format!(
                    "protocol violation: a reply to request {seq}, which awaits none"
                ));
            };
            let replied = slot
                .reply(result)
                .map_err(|e| format!("protocol violation: {e}"))?;
            if replied.last {
                state.slots.remove(&seq);
            }
            (slot, replied)
        };
        // Counted before the waiter wakes, so that its caller sees its own ack in stats.
        if replied.first {
            self.counters.acks.fetch_add(1, Ordering::Relaxed);
            lock(&self.counters.latency).record(now.saturating_duration_since(slot.sent_at));
        }
        slot.notify();
        if let Some(error) = replied.late_failure {
            self.counters.late_failures.fetch_add(1, Ordering::Relaxed);
            let callback = lock(&self.late).clone();
            if let Some(callback) = callback {
                callback(seq, &error);
            }
        }
        Ok(())
    }

    /// The reader thread ended (end of stream, read error, bad frame, violation).
    pub fn reader_finished(&self, reason: String) {
        let closing = !matches!(lock(&self.state).link, LinkState::Open);
        if !closing {
            self.break_link(reason);
        }
        *lock(&self.reader_done) = true;
        self.reader_done_cv.notify_all();
    }

    /// Waits up to `timeout` for the reader thread to end; whether it did.
    pub fn wait_reader(&self, timeout: Duration) -> bool {
        let done = lock(&self.reader_done);
        let (done, _) = self
            .reader_done_cv
            .wait_timeout_while(done, timeout, |done| !*done)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *done
    }

    pub fn stats(&self) -> LinkStats {
        let (outstanding, broken) = {
            let state = lock(&self.state);
            let outstanding = state.slots.values().filter(|s| s.is_outstanding()).count();
            let broken = match &state.link {
                LinkState::Broken(reason) => Some(reason.clone()),
                _ => None,
            };
            (outstanding, broken)
        };
        let (p50, p99) = lock(&self.counters.latency).summary();
        LinkStats {
            ops_sent: self.counters.ops_sent.load(Ordering::Relaxed),
            bytes_sent: self.counters.bytes_sent.load(Ordering::Relaxed),
            outstanding: u64::try_from(outstanding).unwrap_or(u64::MAX),
            acks: self.counters.acks.load(Ordering::Relaxed),
            late_failures: self.counters.late_failures.load(Ordering::Relaxed),
            ack_latency_p50: p50,
            ack_latency_p99: p99,
            broken,
        }
    }
}
