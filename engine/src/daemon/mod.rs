//! The node daemon: one process running every module of this node, its control socket,
//! its HTTP server and its guardian.

pub mod board;
pub mod data;
pub mod farm_arp;
pub mod farm_heartbeats;
pub mod farm_plane;
pub mod farm_task;
pub mod guardian;
pub mod heartbeat_io;
mod heartbeat_recv;
pub mod identity;
pub mod module_task;
pub mod record_store;
pub mod steps;

use crate::config::{Mode, Roots, load_all};
use crate::control::server::{self as control, ControlError};
use crate::key::{ClusterKey, KeyError};
use crate::mirror::fsm::Machine;
use crate::mirror::machine_config::machine_config;
use crate::modlog::{ModuleLog, Source};
use board::Board;
use farm_task::{FarmTask, FarmTaskSetup};
use guardian::Guardian;
use heartbeat_io::{HeartbeatIo, HeartbeatIoError};
use identity::IdentityError;
use module_task::{Event, ModuleHandle, ModuleTask};
use record_store::RecordError;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use steps::StepExecutor;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub roots: Roots,
    /// The node name; found from the local addresses when absent.
    pub node: Option<String>,
    /// Where the HTTP server listens (health URL, JSON state).
    pub http: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("configuration errors:\n{0}")]
    Config(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot list this machine's addresses: {0}")]
    Addresses(crate::net::NetError),
    #[error("{0} (create it with `hakit cluster genkey` on one node and copy it to the others)")]
    Key(#[from] KeyError),
    #[error("module {module}: {source}")]
    Record { module: String, source: RecordError },
    #[error("module {module}: {source}")]
    Heartbeat {
        module: String,
        source: HeartbeatIoError,
    },
    #[error("module {module}: {message}")]
    Unsupported { module: String, message: String },
    #[error("module {module}: {source}")]
    Farm {
        module: String,
        source: farm_task::FarmTaskError,
    },
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("HTTP server: cannot listen on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Run until SIGTERM or SIGINT, then stop every module cleanly (the peer takes over) and exit.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let roots = &opts.roots;
    let config = load_all(roots).map_err(|errors| {
        DaemonError::Config(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let local = crate::net::local_addresses()
        .await
        .map_err(DaemonError::Addresses)?;
    let me = identity::find_me(&config.cluster, opts.node.as_deref(), &local)?;
    let key = ClusterKey::load(&roots.key_file())?.heartbeat_key();
    let guardian = Arc::new(
        Guardian::spawn(roots, &me).map_err(|source| DaemonError::Io {
            what: "cannot start the guardian process".to_string(),
            source,
        })?,
    );
    let epoch = Instant::now();
    // Grows across restarts: the peer's replay guard relies on it.
    let incarnation = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let board = Board::default();
    let mut handles = BTreeMap::new();
    let mut planes = BTreeMap::new();
    for module in config.modules {
        let name = module.name.clone();
        let peer = config
            .cluster
            .node_names()
            .into_iter()
            .find(|n| *n != me)
            .unwrap_or_default()
            .to_string();
        let log =
            ModuleLog::open(&name, &module.paths.log_dir).map_err(|source| DaemonError::Io {
                what: format!(
                    "module {name}: cannot open its log in {}",
                    module.paths.log_dir.display()
                ),
                source,
            })?;
        log.line(
            Source::Engine,
            &format!(
                "hakit {} daemon starting on node {me} (peer {peer})",
                env!("CARGO_PKG_VERSION")
            ),
        );
        if let (Mode::Farm, Some(farm)) = (module.mode, module.farm.clone()) {
            let (task, handle) = FarmTask::new(FarmTaskSetup {
                module,
                farm,
                cluster: &config.cluster,
                me: &me,
                key: key.clone(),
                log,
                board: board.clone(),
                guardian: guardian.clone(),
                incarnation,
                epoch,
            })
            .await
            .map_err(|source| DaemonError::Farm {
                module: name.clone(),
                source,
            })?;
            tokio::spawn(task.run());
            handles.insert(name, handle);
            continue;
        }
        release_stale_vips(&module, &log).await;
        let record =
            record_store::load(&module.paths.state_dir).map_err(|source| DaemonError::Record {
                module: name.clone(),
                source,
            })?;
        let cfg = machine_config(&module, &me, &peer);
        let (machine, initial) = Machine::new(cfg, record, incarnation, epoch.elapsed());
        let heartbeats = HeartbeatIo::open(
            &module,
            &config.cluster,
            &me,
            &peer,
            key.clone(),
            log.clone(),
        )
        .await
        .map_err(|source| DaemonError::Heartbeat {
            module: name.clone(),
            source,
        })?;
        let data_config = data::DataConfig::from_module(&module, &config.cluster, &me, &peer)
            .map_err(|e| DaemonError::Unsupported {
                module: name.clone(),
                message: e.to_string(),
            })?;
        let (data_events_tx, data_events) = tokio::sync::mpsc::unbounded_channel();
        let data =
            data_config.map(|cfg| Arc::new(data::DataPlane::new(cfg, log.clone(), data_events_tx)));
        if let Some(plane) = &data {
            planes.insert(name.clone(), Arc::clone(plane));
        }
        let executor = StepExecutor::new(module.clone(), &me, guardian.clone(), data.clone());
        let (task, handle) = ModuleTask::new(
            module,
            machine,
            initial,
            log,
            board.clone(),
            executor,
            heartbeats,
            &peer,
            epoch,
            data.map(|plane| (plane, data_events)),
        );
        tokio::spawn(task.run());
        handles.insert(name, handle);
    }
    let listener = control::bind(&roots.control_socket())?;
    let targets = control::Targets {
        modules: handles.clone(),
        board: board.clone(),
        planes,
    };
    tokio::spawn(control::serve(listener, targets));
    let http = tokio::net::TcpListener::bind(opts.http)
        .await
        .map_err(|source| DaemonError::Http {
            addr: opts.http,
            source,
        })?;
    let (http_stop, http_stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::http::serve(
        http,
        board.clone(),
        roots.clone(),
        async move {
            let _ = http_stopped.await;
        },
    ));
    eprintln!(
        "hakit daemon running as node {me}; control socket {}",
        roots.control_socket().display()
    );

    wait_for_termination().await;
    eprintln!("hakit daemon: stopping every module");
    shutdown_modules(&handles).await;
    let _ = http_stop.send(());
    guardian.goodbye();
    let _ = std::fs::remove_file(roots.control_socket());
    Ok(())
}

/// A virtual IP still present when the daemon starts was left by a daemon that died: no
/// module serves yet, so it goes.
async fn release_stale_vips(module: &crate::config::Module, log: &ModuleLog) {
    for vip in &module.vips {
        match crate::net::del_vip(vip.addr).await {
            Ok(true) => log.line(
                Source::Engine,
                &format!("removed virtual IP {} left by a previous daemon", vip.addr),
            ),
            Ok(false) => {}
            Err(e) => log.line(
                Source::Engine,
                &format!("cannot check virtual IP {}: {e}", vip.addr),
            ),
        }
    }
}

async fn wait_for_termination() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon can only be killed; run until then.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn shutdown_modules(handles: &BTreeMap<String, ModuleHandle>) {
    let mut waits = Vec::new();
    for (name, handle) in handles {
        let (tx, rx) = oneshot::channel();
        if handle.events.send(Event::Shutdown(tx)).await.is_ok() {
            waits.push((name.clone(), rx));
        }
    }
    for (name, rx) in waits {
        // Stop scripts have their own timeouts; this only guards against a stuck module.
        if tokio::time::timeout(Duration::from_secs(3600), rx)
            .await
            .is_err()
        {
            eprintln!("module {name} did not stop in time");
        }
    }
}
