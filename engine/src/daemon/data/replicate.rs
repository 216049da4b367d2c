//! The primary's stream to one join attempt of its SECOND: connect (retrying until the
//! SECOND listens), copy every replicated directory (see `copy`), then report the stream up.
//! A break at any point is reported once.

use super::DataConfig;
use super::copy::Copier;
use super::copy_rate;
use super::durability::Durability;
use super::epochs::Epochs;
use super::journal::Journal;
use super::pace::Pacer;
use super::progress::{CopyProgress, ProgressMeter};
use crate::mirror::replication::ReplicaTarget;
use crate::mirror::replication::ReplicationEvent;
use crate::modlog::{ModuleLog, Source};
use rfs_fuse::link::{Hello, LinkStats, StreamReplicator};
use rfs_fuse::overlay::{OpenHandles, SwitchReplicator};
use socket2::{Domain, Socket, Type};
use std::fs::File;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// Connection failures logged: the first, then one in this many.
const LOG_ONE_FAILURE_IN: u64 = 50;

/// The replicated directories as opened before the overlays were mounted over them (the
/// copy reads the real files through these, never through the overlays), and what each
/// overlay has open for writing (a new stream must adopt it).
#[derive(Debug, Default)]
pub(super) struct Backing {
    pub dirs: Vec<File>,
    pub open: Vec<OpenHandles>,
}

impl Backing {
    /// The directory by a path that reaches it underneath its mount. The trailing `.` makes
    /// the magic link itself (mode `lr-x------`) never the thing examined.
    pub fn path(&self, index: usize) -> Option<PathBuf> {
        let dir = self.dirs.get(index)?;
        Some(PathBuf::from(format!(
            "/proc/self/fd/{}/.",
            dir.as_raw_fd()
        )))
    }
}

type Slot = Arc<Mutex<Option<Arc<StreamReplicator>>>>;

/// The connection beside the stream a copy uses (manifest, journal).
type SideSlot = Arc<Mutex<Option<TcpStream>>>;

pub(super) struct ReplicationTask {
    join_id: u64,
    side: SideSlot,
    progress: Arc<ProgressMeter>,
    cancelled: Arc<AtomicBool>,
    link: Slot,
    thread: Option<JoinHandle<()>>,
}

/// What a replication task works on: the serving side's parts.
pub(super) struct TaskParts {
    pub journal: Arc<Journal>,
    pub cfg: Arc<DataConfig>,
    pub switches: Vec<SwitchReplicator>,
    pub backing: Arc<Backing>,
    pub durability: Arc<Durability>,
}

struct Ctx {
    join_id: u64,
    incremental: bool,
    peer_journal: bool,
    journal: Arc<Journal>,
    cfg: Arc<DataConfig>,
    switches: Vec<SwitchReplicator>,
    backing: Arc<Backing>,
    durability: Arc<Durability>,
    log: ModuleLog,
    events: UnboundedSender<ReplicationEvent>,
    cancelled: Arc<AtomicBool>,
    link: Slot,
    side: SideSlot,
    progress: Arc<ProgressMeter>,
}

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Option<Arc<StreamReplicator>>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplicationTask {
    pub fn start(
        target: ReplicaTarget,
        parts: TaskParts,
        log: ModuleLog,
        events: UnboundedSender<ReplicationEvent>,
    ) -> ReplicationTask {
        let TaskParts {
            journal,
            cfg,
            switches,
            backing,
            durability,
        } = parts;
        let join_id = target.join_id;
        let cancelled = Arc::new(AtomicBool::new(false));
        let link: Slot = Arc::new(Mutex::new(None));
        let side = SideSlot::default();
        let progress = Arc::new(ProgressMeter::new(cfg.reiallowedbw));
        let ctx = Ctx {
            join_id,
            incremental: target.incremental,
            peer_journal: target.peer_journal,
            journal,
            cfg,
            switches,
            backing,
            durability,
            log: log.clone(),
            events: events.clone(),
            cancelled: Arc::clone(&cancelled),
            link: Arc::clone(&link),
            side: Arc::clone(&side),
            progress: Arc::clone(&progress),
        };
        let thread = std::thread::Builder::new()
            .name("rfs-replicate".into())
            .spawn(move || ctx.run());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                let reason = format!("cannot start the replication thread: {e}");
                log.line(Source::Engine, &reason);
                let _ = events.send(ReplicationEvent::Broken { join_id, reason });
                None
            }
        };
        ReplicationTask {
            join_id,
            side,
            progress,
            cancelled,
            link,
            thread,
        }
    }

    pub fn join_id(&self) -> u64 {
        self.join_id
    }

    pub fn stats(&self) -> Option<LinkStats> {
        lock(&self.link).as_ref().map(|l| l.stats())
    }

    pub fn progress(&self) -> CopyProgress {
        self.progress.get()
    }

    /// End the stream at once (no break is reported; requests awaiting a reply fail and
    /// wait for the engine's release) and wait for the thread. Never waits for a peer that
    /// may be dead: this runs when the peer is lost.
    pub fn stop(mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let link = lock(&self.link).take();
        if let Some(link) = link {
            link.abort("replication stopped by the primary");
        }
        let side = self
            .side
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(side) = side {
            let _ = side.shutdown(Shutdown::Both);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Ctx {
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn report(&self, event: ReplicationEvent) {
        if !self.cancelled() {
            let _ = self.events.send(event);
        }
    }

    fn run(self) {
        let Some(link) = self.connect() else {
            return;
        };
        let link = Arc::new(link);
        {
            let mut slot = lock(&self.link);
            if self.cancelled() {
                drop(slot);
                link.close();
                return;
            }
            *slot = Some(Arc::clone(&link));
        }
        let (switches, events, join_id) =
            (self.switches.clone(), self.events.clone(), self.join_id);
        link.on_broken(move |reason| {
            // Before the failed verdicts are released: they must wait for the engine.
            for switch in &switches {
                switch.hold_all();
            }
            let _ = events.send(ReplicationEvent::Broken { join_id, reason });
        });
        let events = self.events.clone();
        link.on_late_failure(move |seq, error| {
            let reason = format!(
                "the peer failed to apply request {seq} after acknowledging it ({error}): its \
                 copy differs"
            );
            let _ = events.send(ReplicationEvent::Broken { join_id, reason });
        });
        let copier = Copier {
            incremental: self.incremental,
            peer_journal: self.peer_journal,
            journal: &self.journal,
            log: &self.log,
            progress: &self.progress,
            pacer: Mutex::new(Pacer::new(self.cfg.reiallowedbw)),
            dirs: &self.cfg.dirs,
            switches: &self.switches,
            backing: &self.backing,
            cancelled: &self.cancelled,
            link: &link,
            side: &self.side,
            peer: self.cfg.peer,
            module: &self.cfg.module,
        };
        match copier.run() {
            Ok(detail) => {
                let copied = self.progress.get();
                if let Some(rate) = copied.bytes_per_second
                    && copied.bytes >= copy_rate::MEANINGFUL
                {
                    copy_rate::record(&self.cfg.state_dir, rate);
                }
                self.report(ReplicationEvent::Up { join_id, detail })
            }
            Err(reason) => return self.report(ReplicationEvent::Broken { join_id, reason }),
        }
        Epochs {
            journal: &self.journal,
            switches: &self.switches,
            link: &link,
            durability: &self.durability,
            period: self.cfg.epoch,
            cancelled: &self.cancelled,
        }
        .run();
    }

    /// Connect until it works or the task is stopped.
    fn connect(&self) -> Option<StreamReplicator> {
        let mut failures = 0u64;
        loop {
            if self.cancelled() {
                return None;
            }
            match self.try_connect() {
                Ok(link) => {
                    self.log.line(
                        Source::Engine,
                        &format!(
                            "replication stream to {} open (join attempt {:016x})",
                            self.cfg.peer, self.join_id
                        ),
                    );
                    return Some(link);
                }
                Err(e) => {
                    failures += 1;
                    if failures % LOG_ONE_FAILURE_IN == 1 {
                        self.log.line(
                            Source::Engine,
                            &format!(
                                "replication stream to {}: {e} (attempt {failures}, retrying \
                                 every {} ms)",
                                self.cfg.peer,
                                RETRY_EVERY.as_millis()
                            ),
                        );
                    }
                    std::thread::sleep(RETRY_EVERY);
                }
            }
        }
    }

    fn try_connect(&self) -> Result<StreamReplicator, String> {
        let peer = self.cfg.peer;
        let socket = Socket::new(Domain::for_address(peer), Type::STREAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        // From our address on the replication network: the SECOND accepts only that one.
        let local = SocketAddr::new(self.cfg.listen.ip(), 0);
        socket
            .bind(&local.into())
            .map_err(|e| format!("bind {local}: {e}"))?;
        socket
            .connect_timeout(&peer.into(), CONNECT_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        let stream: TcpStream = socket.into();
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let reader = stream.try_clone().map_err(|e| format!("clone: {e}"))?;
        let hello = Hello {
            module: self.cfg.module.clone(),
            node: self.cfg.me.clone(),
            session: self.join_id,
            roots: self.cfg.dirs.len() as u16,
        };
        StreamReplicator::start(reader, stream, hello, self.cfg.send_timeout)
            .map_err(|e| e.to_string())
    }
}
