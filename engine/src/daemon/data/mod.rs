//! The replicated directories of one mirror module: what the state machine's data steps and
//! replication actions do on this node.
//!
//! - [`serve_side`]: PRIM/ALONE — each directory opened, then the overlay mounted read-write
//!   over it, every change going through a [`SwitchReplicator`](rfs_fuse::overlay::SwitchReplicator);
//! - [`replicate`]: the primary's stream to the SECOND's join attempt: connect, copy every
//!   directory under a write freeze, then switch the overlays to the stream;
//! - [`receive_side`]: SECOND — receivers opened on the directories, the overlay mounted
//!   read-only over them, and a TCP listener applying the primary's stream underneath.
//!
//! Everything here blocks (mounts, sockets, copies): the module task calls it from
//! `spawn_blocking` or dedicated threads.

mod copy;
pub mod copy_rate;
pub mod driver;
mod durability;
pub mod epochs;
pub mod estimate;
pub mod journal;
mod pace;
mod passes;
mod progress;
mod quarantine;
mod receive_side;
mod replicate;
mod serve_side;
mod syncer;
mod verify;

use crate::config::{AckLevel, Cluster, Module};
use crate::mirror::plan::DataMode;
use crate::mirror::replication::{ReplicaTarget, ReplicationEvent};
use crate::modlog::{ModuleLog, Source};
pub use progress::{CopyProgress, bytes_of};
use receive_side::ReceiveSide;
use rfs_fuse::link::LinkStats;
use rfs_fuse::sync::zones::ZoneSize;
use serve_side::ServeSide;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
pub use verify::{VerifyError, VerifyReport};

/// `sendtimeout` when not configured (at least the heartbeat timeout): a peer that is alive
/// but slow to apply (its fsync under load) must not break the stream; a dead peer is found
/// by the heartbeats, which end the stream at once.
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The replication port of a module: 5600 + 4 × (module id − 1), as the model product spaces
/// its replication ports.
pub fn rfs_port(module_id: u16) -> u16 {
    5600 + 4 * (module_id - 1)
}

#[derive(Debug, thiserror::Error)]
pub enum DataSetupError {
    #[error("replication: node {node} has no address on lan {lan} in cluster.xml")]
    NoAddress { lan: String, node: String },
    #[error("replication: the module has no heartbeat network to carry the stream")]
    NoNetwork,
    #[error("replication: {0} replicated directories; at most 65535")]
    TooManyDirs(usize),
    #[error("replication: ruzone_blocksize must be positive")]
    ZoneSize,
}

/// What the data plane needs from the configuration.
#[derive(Debug, Clone)]
pub struct DataConfig {
    pub module: String,
    pub me: String,
    pub dirs: Vec<PathBuf>,
    pub ack: rfs_fuse::protocol::AckLevel,
    pub send_timeout: Duration,
    /// Where this node listens as SECOND.
    pub listen: SocketAddr,
    /// Where the peer listens.
    pub peer: SocketAddr,
    /// The module's state folder (the change journal lives there).
    pub state_dir: PathBuf,
    /// `reiallowedbw`: a copy's data bytes per second at most.
    pub reiallowedbw: Option<u64>,
    /// How long an epoch of the change journal lasts while in sync (see [`epochs`]).
    pub epoch: Duration,
    /// How often the SECOND makes what it applied durable (see [`syncer`]).
    pub sync_every: Duration,
    /// The granularity of the change journal and of catch-up copies (`ruzone_blocksize`).
    pub zone_size: ZoneSize,
    /// `nbrei`: how many threads hash files when the replicas are compared.
    pub nbrei: usize,
}

impl DataConfig {
    /// `None` for a module without `<rfs>`. The stream uses the heartbeat network marked
    /// `ident="flow"`, or the first one.
    pub fn from_module(
        module: &Module,
        cluster: &Cluster,
        me: &str,
        peer: &str,
    ) -> Result<Option<DataConfig>, DataSetupError> {
        let Some(rfs) = &module.rfs else {
            return Ok(None);
        };
        if rfs.replicated.len() > usize::from(u16::MAX) {
            return Err(DataSetupError::TooManyDirs(rfs.replicated.len()));
        }
        let heartbeats = &module.heart.heartbeats;
        let flow = heartbeats
            .iter()
            .find(|h| h.ident.as_deref() == Some("flow"))
            .or(heartbeats.first())
            .ok_or(DataSetupError::NoNetwork)?;
        let port = rfs_port(module.id);
        let addr = |node: &str| {
            cluster
                .addr(&flow.lan, node)
                .map(|ip| SocketAddr::new(ip, port))
                .ok_or_else(|| DataSetupError::NoAddress {
                    lan: flow.lan.clone(),
                    node: node.to_string(),
                })
        };
        Ok(Some(DataConfig {
            module: module.name.clone(),
            me: me.to_string(),
            dirs: rfs.replicated.iter().map(|r| r.dir.clone()).collect(),
            ack: match rfs.ack {
                AckLevel::Second => rfs_fuse::protocol::AckLevel::Received,
                AckLevel::None => rfs_fuse::protocol::AckLevel::Applied,
            },
            send_timeout: rfs
                .sendtimeout
                .unwrap_or(module.heart.timeout.max(DEFAULT_SEND_TIMEOUT)),
            listen: addr(me)?,
            peer: addr(peer)?,
            state_dir: module.paths.state_dir.clone(),
            reiallowedbw: rfs.reiallowedbw,
            epoch: journal_epoch(module.heart.timeout),
            sync_every: journal_epoch(module.heart.timeout) / 3,
            zone_size: ZoneSize::new(rfs.ruzone_blocksize).ok_or(DataSetupError::ZoneSize)?,
            nbrei: usize::try_from(rfs.nbrei).unwrap_or(usize::MAX),
        }))
    }
}

/// Five heartbeat timeouts, within [5 s, 5 min]: a journal after a SECOND's failure names
/// about what changed during the failure and one or two epochs before it; each new epoch
/// costs one brief write freeze.
fn journal_epoch(heart_timeout: Duration) -> Duration {
    (heart_timeout * 5).clamp(Duration::from_secs(5), Duration::from_secs(300))
}

/// What `hakit state -v` shows about replication.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DataView {
    pub mode: DataMode,
    /// `second` (in the peer's memory) or `none` (applied on the peer).
    pub ack_level: String,
    pub dirs: Vec<PathBuf>,
    pub link: Option<LinkView>,
    /// The copy to the joining SECOND (primary only).
    pub copy: Option<CopyProgress>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LinkView {
    pub ops_sent: u64,
    pub bytes_sent: u64,
    pub in_flight: u64,
    pub ack_p50_us: Option<u64>,
    pub ack_p99_us: Option<u64>,
    pub broken: Option<String>,
}

impl From<LinkStats> for LinkView {
    fn from(s: LinkStats) -> LinkView {
        LinkView {
            ops_sent: s.ops_sent,
            bytes_sent: s.bytes_sent,
            in_flight: s.outstanding,
            ack_p50_us: s.ack_latency_p50.map(|d| d.as_micros() as u64),
            ack_p99_us: s.ack_latency_p99.map(|d| d.as_micros() as u64),
            broken: s.broken,
        }
    }
}

enum Side {
    Off,
    Serving(ServeSide),
    Receiving(ReceiveSide),
}

/// The data plane of one module. Cheap to share; every call blocks.
pub struct DataPlane {
    cfg: Arc<DataConfig>,
    log: ModuleLog,
    events: UnboundedSender<ReplicationEvent>,
    side: Mutex<Side>,
    durability: Arc<durability::Durability>,
    /// The last view, shown while a transition holds `side` (mounts can take seconds).
    last_view: Mutex<DataView>,
}

impl DataPlane {
    pub fn new(
        cfg: DataConfig,
        log: ModuleLog,
        events: UnboundedSender<ReplicationEvent>,
    ) -> DataPlane {
        DataPlane {
            cfg: Arc::new(cfg),
            log,
            events,
            side: Mutex::new(Side::Off),
            durability: Arc::default(),
            last_view: Mutex::new(DataView::default()),
        }
    }

    fn side(&self) -> std::sync::MutexGuard<'_, Side> {
        // A panic inside a transition leaves the previous side in place: still consistent.
        self.side.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Put the directories in `mode`; `Ok(what was done)` or `Err(why not)`.
    pub fn set_mode(&self, mode: DataMode) -> Result<String, String> {
        let mut side = self.side();
        let current = match &*side {
            Side::Off => DataMode::Off,
            Side::Serving(_) => DataMode::Serve,
            Side::Receiving(_) => DataMode::Receive,
        };
        if current == mode {
            return Ok(format!("already {}", describe(mode)));
        }
        let mut done = Vec::new();
        match std::mem::replace(&mut *side, Side::Off) {
            Side::Off => {}
            Side::Serving(serving) => done.push(serving.stop()),
            Side::Receiving(receiving) => done.push(receiving.stop()),
        }
        match mode {
            DataMode::Off => {}
            DataMode::Serve => {
                let serving = ServeSide::start(&self.cfg, Arc::clone(&self.durability))
                    .map_err(|e| join(&done, &e))?;
                done.push(serving.describe());
                *side = Side::Serving(serving);
            }
            DataMode::Receive => {
                let receiving = ReceiveSide::start(
                    Arc::clone(&self.cfg),
                    self.log.clone(),
                    Arc::clone(&self.durability),
                )
                .map_err(|e| join(&done, &e))?;
                done.push(receiving.describe());
                *side = Side::Receiving(receiving);
            }
        }
        Ok(done.join("; "))
    }

    /// Keep exactly this stream to the peer (primary only).
    pub fn replicate(&self, target: Option<ReplicaTarget>) {
        let mut side = self.side();
        let Side::Serving(serving) = &mut *side else {
            if target.is_some() {
                self.log.line(
                    Source::Engine,
                    "replication asked while the data is not served: ignored",
                );
            }
            return;
        };
        serving.replicate(target, &self.cfg, &self.log, &self.events);
    }

    /// Save aside what this node changed while its data diverged (before the peer's copy
    /// replaces it). Only with the folders unmounted.
    pub fn quarantine(&self) -> Result<String, String> {
        match &*self.side() {
            Side::Off => quarantine::quarantine(&self.cfg, &self.log),
            _ => Err(format!(
                "the replicated folders are still mounted ({}): nothing saved aside",
                self.cfg
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Compare this primary's replicated directories with the SECOND's (`hakit rfsverify`).
    /// `Err` with the reason when there is nothing to compare: this node does not serve the
    /// data, or no SECOND answers.
    pub fn verify(&self) -> Result<VerifyReport, String> {
        let backing = match &*self.side() {
            Side::Serving(serving) => serving.backing(),
            _ => {
                return Err(
                    "no peer to compare with: this node does not serve the module's \
                            data (run rfsverify on the primary)"
                        .to_string(),
                );
            }
        };
        verify::verify(&self.cfg, &backing).map_err(|e| e.to_string())
    }

    /// As SECOND: make everything received durable.
    pub fn sync_received(&self) -> Result<(), String> {
        match &*self.side() {
            Side::Receiving(receiving) => receiving.sync(),
            _ => Ok(()),
        }
    }

    /// Let the writes held since the stream broke return to the application.
    pub fn release_writes(&self) {
        if let Side::Serving(serving) = &*self.side() {
            serving.release_writes();
        }
    }

    /// As SECOND: up to where the primary's stream is durable here (for the heartbeat).
    pub fn durable_point(&self) -> Option<rfs_fuse::link::StreamPoint> {
        self.durability.own()
    }

    /// As primary: what the peer's last heartbeat said it holds durably.
    pub fn peer_durable(&self, point: Option<rfs_fuse::link::StreamPoint>) {
        self.durability.set_peer(point);
    }

    /// The copy to the peer in figures, while it runs (for the heartbeat).
    pub fn copy_figures(&self) -> Option<crate::mirror::advert::CopyFigures> {
        let copy = self.view().copy?;
        (copy.phase != "done").then_some(crate::mirror::advert::CopyFigures {
            bytes: copy.bytes,
            bytes_total: copy.bytes_total,
            eta_seconds: copy.eta_seconds,
        })
    }

    /// Never blocks: during a transition, the view from before it.
    pub fn view(&self) -> DataView {
        let Ok(side) = self.side.try_lock() else {
            return self
                .last_view
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
        };
        let (mode, link, copy) = match &*side {
            Side::Off => (DataMode::Off, None, None),
            Side::Serving(s) => (
                DataMode::Serve,
                s.link_stats().map(LinkView::from),
                s.copy_progress(),
            ),
            Side::Receiving(_) => (DataMode::Receive, None, None),
        };
        let view = DataView {
            mode,
            ack_level: match self.cfg.ack {
                rfs_fuse::protocol::AckLevel::Received => "second",
                rfs_fuse::protocol::AckLevel::Applied => "none",
            }
            .to_string(),
            dirs: self.cfg.dirs.clone(),
            link,
            copy,
        };
        *self
            .last_view
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = view.clone();
        view
    }
}

fn describe(mode: DataMode) -> &'static str {
    match mode {
        DataMode::Off => "unmounted",
        DataMode::Serve => "mounted read-write",
        DataMode::Receive => "mounted read-only and receiving",
    }
}

fn join(done: &[String], error: &str) -> String {
    if done.is_empty() {
        error.to_string()
    } else {
        format!("{}; then {error}", done.join("; "))
    }
}
