//! The daemon's side of the control socket.

use super::protocol::{MAX_REQUEST, Request, Response};
use crate::daemon::board::Board;
use crate::daemon::data::DataPlane;
use crate::daemon::module_task::{Event, ModuleHandle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

/// How long a command may wait for its module (which may be busy with a step).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}: another hakit daemon is already running here (its control socket answers)")]
    AlreadyRunning(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Bind the control socket, removing a stale one left by a dead daemon.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    UnixListener::bind(path).map_err(io)
}

/// What the control socket answers from: the modules' tasks, the board of their states, and
/// the data planes of modules that replicate folders.
pub struct Targets {
    pub modules: BTreeMap<String, ModuleHandle>,
    pub board: Board,
    pub planes: BTreeMap<String, Arc<DataPlane>>,
}

pub async fn serve(listener: UnixListener, targets: Targets) {
    let targets = Arc::new(targets);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let targets = Arc::clone(&targets);
        tokio::spawn(async move {
            let _ = handle(stream, &targets).await;
        });
    }
}

async fn handle(stream: UnixStream, targets: &Targets) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64 + 1));
    reader.read_line(&mut line).await?;
    let response = if line.len() > MAX_REQUEST {
        Response::Error {
            message: format!("request longer than {MAX_REQUEST} bytes"),
        }
    } else {
        match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(request, targets).await,
            Err(e) => Response::Error {
                message: format!("malformed request: {e}"),
            },
        }
    };
    let mut bytes = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

async fn answer(request: Request, targets: &Targets) -> Response {
    let (modules, board) = (&targets.modules, &targets.board);
    let unknown = |m: &str| Response::Error {
        message: format!(
            "no module named {m:?} on this node (modules: {})",
            modules.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    match request {
        Request::State { module: None } => Response::State {
            modules: board.all(),
            farms: board.all_farms(),
        },
        Request::State { module: Some(m) } => match (board.get(&m), board.farm(&m)) {
            (Some(view), _) => Response::State {
                modules: vec![view],
                farms: Vec::new(),
            },
            (None, Some(farm)) => Response::State {
                modules: Vec::new(),
                farms: vec![farm],
            },
            (None, None) => unknown(&m),
        },
        Request::Verify { module } => match targets.planes.get(&module) {
            Some(plane) => verify(Arc::clone(plane)).await,
            None if modules.contains_key(&module) => Response::Refused {
                message: format!("module {module} replicates no folder (no <rfs>)"),
            },
            None => unknown(&module),
        },
        Request::Command { module, command } => {
            let Some(handle) = modules.get(&module) else {
                return unknown(&module);
            };
            let (tx, rx) = oneshot::channel();
            if handle
                .events
                .send(Event::Command(command, tx))
                .await
                .is_err()
            {
                return Response::Error {
                    message: format!("module {module} is not running"),
                };
            }
            match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
                Ok(Ok(Ok(message))) => Response::Done { message },
                Ok(Ok(Err(message))) => Response::Refused { message },
                Ok(Err(_)) => Response::Error {
                    message: format!("module {module} stopped"),
                },
                Err(_) => Response::Error {
                    message: format!("module {module} did not answer within {COMMAND_TIMEOUT:?}"),
                },
            }
        }
    }
}

/// Compares the replicas on a blocking thread (it reads every file on both nodes).
async fn verify(plane: Arc<DataPlane>) -> Response {
    match tokio::task::spawn_blocking(move || plane.verify()).await {
        Ok(Ok(report)) => Response::Verified(report),
        Ok(Err(message)) => Response::Refused { message },
        Err(e) => Response::Error {
            message: format!("the comparison failed: {e}"),
        },
    }
}
