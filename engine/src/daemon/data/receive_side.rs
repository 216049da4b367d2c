//! SECOND: receivers opened on the replicated directories, the overlays mounted read-only
//! over them for applications, and a listener applying the primary's stream underneath.
//!
//! One primary at a time: a new stream from the peer's address ends the previous one (which
//! first applies everything it had read), connections from elsewhere are refused. A
//! connection that opens with a manifest request is answered beside the stream, which goes on.

use super::DataConfig;
use super::durability::Durability;
use super::journal::Journal;
use super::serve_side::unmount_patiently;
use super::syncer::Syncer;
use crate::modlog::{ModuleLog, Source};
use rfs_fuse::link::{
    AppliedPoint, Opening, ServeOptions, serve_journal, serve_manifest, serve_opened,
};
use rfs_fuse::overlay::{MountedOverlay, NoReplication, OverlayOptions, mount_in_place};
use rfs_fuse::receiver::Receiver;
use std::fs::File;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the listener checks whether it must stop.
const ACCEPT_POLL: Duration = Duration::from_millis(100);
/// Threads serving the read-only mount (only reads reach it).
const READ_ONLY_THREADS: usize = 4;
/// How long a new connection may take to say what it is for (the primary speaks at once).
const OPENING_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct ReceiveSide {
    mounts: Vec<MountedOverlay>,
    /// The directories underneath the read-only mounts, for `syncfs` and manifests.
    dirs: Arc<Vec<File>>,
    receivers: Arc<Mutex<Vec<Receiver>>>,
    stop: Arc<AtomicBool>,
    current: Arc<Mutex<Option<TcpStream>>>,
    listener: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReceiveSide {
    pub fn start(
        cfg: Arc<DataConfig>,
        log: ModuleLog,
        durability: Arc<Durability>,
    ) -> Result<ReceiveSide, String> {
        let mut receivers = Vec::new();
        let mut dirs = Vec::new();
        for dir in &cfg.dirs {
            if !dir.exists() {
                // It is about to receive the primary's copy.
                std::fs::create_dir_all(dir).map_err(|e| {
                    format!("{}: missing and cannot be created: {e}", dir.display())
                })?;
                log.line(
                    Source::Engine,
                    &format!(
                        "{} did not exist: created to receive the copy",
                        dir.display()
                    ),
                );
            }
            rfs_fuse::overlay::clean_stale(dir).map_err(|e| e.to_string())?;
            let receiver = Receiver::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            receivers.push(receiver);
            dirs.push(File::open(dir).map_err(|e| format!("{}: open: {e}", dir.display()))?);
        }
        let listener = TcpListener::bind(cfg.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("replication listener on {}: {e}", cfg.listen))?;
        let mut side = ReceiveSide {
            mounts: Vec::new(),
            dirs: Arc::new(dirs),
            receivers: Arc::new(Mutex::new(receivers)),
            stop: Arc::new(AtomicBool::new(false)),
            current: Arc::new(Mutex::new(None)),
            listener: None,
            syncer: None,
        };
        for dir in &cfg.dirs {
            let options = OverlayOptions {
                read_only: true,
                n_threads: READ_ONLY_THREADS,
            };
            match mount_in_place(dir, Arc::new(NoReplication), options) {
                Ok(m) => side.mounts.push(m),
                Err(e) => {
                    let undone = side.stop();
                    return Err(format!("{e} ({undone})"));
                }
            }
        }
        let applied = AppliedPoint::default();
        let syncer = Syncer {
            cfg: Arc::clone(&cfg),
            dirs: Arc::clone(&side.dirs),
            applied: Arc::clone(&applied),
            durability,
            stop: Arc::clone(&side.stop),
            log: log.clone(),
        };
        match syncer.spawn() {
            Ok(t) => side.syncer = Some(t),
            Err(e) => {
                let undone = side.stop();
                return Err(format!("cannot start the sync thread: {e} ({undone})"));
            }
        }
        let accept = Acceptor {
            cfg,
            log,
            applied,
            listener,
            dirs: Arc::clone(&side.dirs),
            receivers: Arc::clone(&side.receivers),
            stop: Arc::clone(&side.stop),
            current: Arc::clone(&side.current),
        };
        let thread = std::thread::Builder::new()
            .name("rfs-listen".into())
            .spawn(move || accept.run())
            .map_err(|e| format!("cannot start the replication listener: {e}"));
        match thread {
            Ok(t) => side.listener = Some(t),
            Err(e) => {
                let undone = side.stop();
                return Err(format!("{e} ({undone})"));
            }
        }
        Ok(side)
    }

    pub fn describe(&self) -> String {
        let dirs: Vec<String> = self
            .mounts
            .iter()
            .map(|m| m.dir().display().to_string())
            .collect();
        format!("mounted read-only, receiving: {}", dirs.join(", "))
    }

    /// Make what was received durable (before the SECOND records its copy as consistent).
    pub fn sync(&self) -> Result<(), String> {
        for (dir, path) in self.dirs.iter().zip(self.mounts.iter().map(|m| m.dir())) {
            nix::unistd::syncfs(dir).map_err(|e| format!("{}: syncfs: {e}", path.display()))?;
        }
        Ok(())
    }

    /// End the connection (everything read is applied first), stop listening, unmount.
    pub fn stop(mut self) -> String {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(stream) = locked(&self.current).take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for thread in [self.listener.take(), self.syncer.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
        let mut report = vec!["stopped receiving".to_string()];
        for mut mount in std::mem::take(&mut self.mounts) {
            report.push(unmount_patiently(&mut mount));
        }
        report.join("; ")
    }
}

struct Acceptor {
    cfg: Arc<DataConfig>,
    log: ModuleLog,
    /// Where the stream being served is applied up to (for the syncer).
    applied: AppliedPoint,
    listener: TcpListener,
    dirs: Arc<Vec<File>>,
    receivers: Arc<Mutex<Vec<Receiver>>>,
    stop: Arc<AtomicBool>,
    current: Arc<Mutex<Option<TcpStream>>>,
}

impl Acceptor {
    fn run(self) {
        let mut serving: Option<JoinHandle<()>> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let (stream, from) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
                Err(e) => {
                    self.log
                        .line(Source::Engine, &format!("replication listener: {e}"));
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
            };
            if from.ip() != self.cfg.peer.ip() {
                self.log.line(
                    Source::Engine,
                    &format!(
                        "replication connection from {from} refused: only {} may send",
                        self.cfg.peer.ip()
                    ),
                );
                continue;
            }
            let opening = match opening(&stream) {
                Ok(opening) => opening,
                Err(e) => {
                    let line = format!("replication connection from {from}: {e}");
                    self.log.line(Source::Engine, &line);
                    continue;
                }
            };
            if opening.is_manifest_request() {
                if let Err(e) = self.spawn_manifest(opening, stream, from) {
                    self.log.line(Source::Engine, &e);
                }
                continue;
            }
            if opening.is_journal_request() {
                if let Err(e) = self.spawn_journal(opening, stream, from) {
                    self.log.line(Source::Engine, &e);
                }
                continue;
            }
            // A new stream from the primary replaces the previous one, which first applies
            // what it had read.
            if let Some(old) = locked(&self.current).take() {
                let _ = old.shutdown(Shutdown::Both);
            }
            if let Some(thread) = serving.take() {
                let _ = thread.join();
            }
            match self.spawn_serve(opening, stream, from) {
                Ok(thread) => serving = Some(thread),
                Err(e) => self.log.line(Source::Engine, &e),
            }
        }
        if let Some(thread) = serving {
            let _ = thread.join();
        }
    }

    /// Sends this node's own change journal on its own thread (it was the primary: the new
    /// one copies again what it names). A journal that cannot be read is not sent: the
    /// primary then compares the trees.
    fn spawn_journal(
        &self,
        opening: Opening<TcpStream>,
        stream: TcpStream,
        from: SocketAddr,
    ) -> Result<(), String> {
        let (cfg, log) = (Arc::clone(&self.cfg), self.log.clone());
        std::thread::Builder::new()
            .name("rfs-journal".into())
            .spawn(move || {
                let line = match Journal::raw(&cfg.state_dir, cfg.dirs.len()) {
                    Ok(journals) => match serve_journal(opening, &stream, &cfg.module, &journals) {
                        Ok(bytes) => format!("my change journal ({bytes} bytes) sent to {from}"),
                        Err(e) => format!("change journal for {from} failed: {e}"),
                    },
                    Err(e) => format!("my change journal cannot be read ({e}): not sent to {from}"),
                };
                log.line(Source::Engine, &line);
            })
            .map(drop)
            .map_err(|e| format!("cannot start a journal thread: {e}"))
    }

    /// Answers a manifest request on its own thread, beside the stream.
    fn spawn_manifest(
        &self,
        opening: Opening<TcpStream>,
        stream: TcpStream,
        from: SocketAddr,
    ) -> Result<(), String> {
        let (dirs, module, workers, log) = (
            Arc::clone(&self.dirs),
            self.cfg.module.clone(),
            self.cfg.nbrei,
            self.log.clone(),
        );
        std::thread::Builder::new()
            .name("rfs-manifest".into())
            .spawn(move || {
                let roots: Vec<_> = dirs.iter().map(AsFd::as_fd).collect();
                let line = match serve_manifest(opening, stream, &module, &roots, workers) {
                    Ok(entries) => format!("manifest of {entries} entries sent to {from}"),
                    Err(e) => format!("manifest for {from} failed: {e}"),
                };
                log.line(Source::Engine, &line);
            })
            .map(drop)
            .map_err(|e| format!("cannot start a manifest thread: {e}"))
    }

    fn spawn_serve(
        &self,
        opening: Opening<TcpStream>,
        stream: TcpStream,
        from: SocketAddr,
    ) -> Result<JoinHandle<()>, String> {
        let prepare = || -> std::io::Result<TcpStream> {
            stream.set_nodelay(true)?;
            stream.try_clone()
        };
        let shutdown = prepare().map_err(|e| format!("replication connection from {from}: {e}"))?;
        *locked(&self.current) = Some(shutdown);
        let receivers = Arc::clone(&self.receivers);
        let (module, ack, log) = (self.cfg.module.clone(), self.cfg.ack, self.log.clone());
        let applied = Arc::clone(&self.applied);
        std::thread::Builder::new()
            .name("rfs-receive".into())
            .spawn(move || {
                let mut receivers = locked(&receivers);
                let late_log = log.clone();
                let options = ServeOptions::new(module, ack)
                    .publish_applied(applied)
                    .on_late_failure(move |failure| {
                        late_log.line(
                            Source::Engine,
                            &format!(
                                "replication: request {} failed after it was acknowledged: {}",
                                failure.seq, failure.message
                            ),
                        )
                    });
                let line = match serve_opened(opening, stream, &mut receivers[..], options) {
                    Ok(end) => format!(
                        "replication stream from {} ({from}) ended after {} requests: {:?}",
                        end.node, end.requests, end.ended
                    ),
                    Err(e) => format!("replication stream from {from} failed: {e}"),
                };
                log.line(Source::Engine, &line);
            })
            .map_err(|e| format!("cannot start a replication receiver thread: {e}"))
    }
}

/// The connection's first message, waited for at most [`OPENING_TIMEOUT`]; the stream is
/// blocking again, without a read timeout, afterwards.
fn opening(stream: &TcpStream) -> Result<Opening<TcpStream>, String> {
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(OPENING_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let reader = stream.try_clone().map_err(|e| e.to_string())?;
    let opening = Opening::read(reader).map_err(|e| e.to_string())?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(opening)
}
