//! One-shot reachability probes: TCP connect, ICMP echo, and the split-brain witnesses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::net::TcpStream;

use crate::scripts::fmt_duration;

/// Echo requests sent by one ping probe (spread over its timeout); one reply is enough.
const PING_TRIES: u16 = 3;
const PING_PAYLOAD: [u8; 56] = [0; 56];

/// A TCP connection to `addr:port` must be accepted within `timeout`. It is closed at once.
pub async fn tcp_probe(addr: IpAddr, port: u16, timeout: Duration) -> Result<(), String> {
    let target = SocketAddr::new(addr, port);
    match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(format!("tcp {target}: {e}")),
        Err(_) => Err(format!(
            "tcp {target}: no answer within {}",
            fmt_duration(timeout)
        )),
    }
}

/// `addr` must answer an ICMP echo request within `timeout` (up to three requests are sent
/// within that time, so one lost packet does not fail the probe). Needs root (raw socket)
/// or a `net.ipv4.ping_group_range` that includes hakit's group.
pub async fn ping_probe(addr: IpAddr, timeout: Duration) -> Result<(), String> {
    let client = icmp_client(addr)?;
    ping_with(&client, addr, timeout).await
}

/// Which witnesses answered a ping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WitnessVerdict {
    pub reachable: Vec<IpAddr>,
    /// With what went wrong for each.
    pub unreachable: Vec<(IpAddr, String)>,
}

impl WitnessVerdict {
    pub fn any_reachable(&self) -> bool {
        !self.reachable.is_empty()
    }

    /// E.g. "witnesses reachable: 10.0.0.254; unreachable: 10.0.1.254 (no reply within 2000 ms)".
    pub fn describe(&self) -> String {
        let reachable = if self.reachable.is_empty() {
            "none".to_string()
        } else {
            join(self.reachable.iter().map(ToString::to_string))
        };
        let unreachable = if self.unreachable.is_empty() {
            "none".to_string()
        } else {
            join(
                self.unreachable
                    .iter()
                    .map(|(a, why)| format!("{a} ({why})")),
            )
        };
        format!("witnesses reachable: {reachable}; unreachable: {unreachable}")
    }
}

/// Pings every witness concurrently, each within `timeout`.
pub async fn probe_witnesses(witnesses: &[IpAddr], timeout: Duration) -> WitnessVerdict {
    // One ICMP socket per address family, shared by all the pings of that family.
    let v4 = witnesses
        .iter()
        .any(IpAddr::is_ipv4)
        .then(|| icmp_client(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
    let v6 = witnesses
        .iter()
        .any(IpAddr::is_ipv6)
        .then(|| icmp_client(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)));
    let results = futures::future::join_all(witnesses.iter().map(|&addr| {
        let client = if addr.is_ipv4() { &v4 } else { &v6 };
        async move {
            let result = match client {
                Some(Ok(client)) => ping_with(client, addr, timeout).await,
                Some(Err(e)) => Err(e.clone()),
                None => Err("no ICMP socket".to_string()),
            };
            (addr, result)
        }
    }))
    .await;
    let mut verdict = WitnessVerdict::default();
    for (addr, result) in results {
        match result {
            Ok(()) => verdict.reachable.push(addr),
            Err(why) => verdict.unreachable.push((addr, why)),
        }
    }
    verdict
}

fn icmp_client(addr: IpAddr) -> Result<Client, String> {
    let config = match addr {
        IpAddr::V4(_) => Config::default(),
        IpAddr::V6(_) => Config::builder().kind(ICMP::V6).build(),
    };
    Client::new(&config).map_err(|e| format!("ping {addr}: cannot open an ICMP socket: {e}"))
}

async fn ping_with(client: &Client, addr: IpAddr, timeout: Duration) -> Result<(), String> {
    let mut pinger = client.pinger(addr, PingIdentifier(rand::random())).await;
    pinger.timeout((timeout / u32::from(PING_TRIES)).max(Duration::from_millis(1)));
    for seq in 0..PING_TRIES {
        match pinger.ping(PingSequence(seq), &PING_PAYLOAD).await {
            Ok(_) => return Ok(()),
            Err(SurgeError::Timeout { .. }) => {}
            // Unreachable network, no permission, ...: trying again will not help.
            Err(e) => return Err(format!("ping {addr}: {e}")),
        }
    }
    Err(format!(
        "ping {addr}: no reply within {}",
        fmt_duration(timeout)
    ))
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}
