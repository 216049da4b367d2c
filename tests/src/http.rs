//! HTTP GET from inside a host's network namespace: a short-lived thread joins the namespace
//! with `setns(2)` (a per-thread property for network namespaces) and uses a plain
//! `std::net::TcpStream` with timeouts, so no tool is needed in the host.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};

use crate::host::Host;

const TIMEOUT: Duration = Duration::from_secs(5);

impl Host {
    /// `GET http://<addr>:<port><path>` from this host; the body of a 200 answer, else an error
    /// with the status line. Connect, read and write each time out after 5 s.
    pub fn http_get(&self, addr: impl Into<IpAddr>, port: u16, path: &str) -> Result<String> {
        self.http_get_within(addr, port, path, TIMEOUT)
    }

    /// [`Host::http_get`] with its own connect/read timeout (for fine-grained polling).
    pub fn http_get_within(
        &self,
        addr: impl Into<IpAddr>,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<String> {
        let target = SocketAddr::new(addr.into(), port);
        let url = format!("http://{target}{path}");
        let netns = PathBuf::from("/run/netns").join(self.netns());
        let request = format!("GET {path} HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        let raw = thread::Builder::new()
            .name(format!("http-get-{}", self.name()))
            .spawn(move || exchange(&netns, target, request.as_bytes(), timeout))
            .context("starting the HTTP client thread")?
            .join()
            .map_err(|_| anyhow!("the HTTP client thread panicked"))?
            .with_context(|| format!("GET {url} from {}", self.name()))?;
        parse_response(&raw).with_context(|| format!("GET {url} from {}", self.name()))
    }
}

fn exchange(
    netns: &PathBuf,
    target: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let ns = File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    setns(&ns, CloneFlags::CLONE_NEWNET).context("entering the network namespace")?;
    let mut stream = TcpStream::connect_timeout(&target, timeout).context("connecting")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request).context("sending the request")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).context("reading the answer")?;
    Ok(raw)
}

fn parse_response(raw: &[u8]) -> Result<String> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("malformed answer ({} bytes, no end of headers)", raw.len());
    };
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("answer {status:?}");
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn parses_bodies_and_rejects_errors() {
        let ok = parse_response(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nserved by node1\n").unwrap();
        assert_eq!(ok, "served by node1\n");
        let err = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap_err();
        assert!(format!("{err}").contains("404"));
        assert!(parse_response(b"garbage").is_err());
    }
}
