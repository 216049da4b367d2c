//! The CLI's side of the control socket (blocking: the CLI needs no runtime).

use super::protocol::{Request, Response};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the hakit daemon at {path}: {source} (is `hakit daemon` running on this node?)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the hakit daemon at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the hakit daemon at {path} answered something unreadable: {source}")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// How long a request may take to be answered, but for [`call_patiently`].
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    call_patiently(socket, request, ANSWER_TIMEOUT)
}

/// [`call`] for a request whose answer may take up to `timeout` (a comparison of replicas).
pub fn call_patiently(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut bytes = serde_json::to_vec(request).map_err(|source| ClientError::Decode {
        path: socket.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    stream.write_all(&bytes).map_err(io)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(io)?;
    serde_json::from_str(&line).map_err(|source| ClientError::Decode {
        path: socket.to_path_buf(),
        source,
    })
}
