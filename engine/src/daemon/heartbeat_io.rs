//! Heartbeat sockets of one module: one UDP socket per heartbeat network, bound to this
//! node's address on that network, sending to the peer's. Received datagrams are accepted
//! only from the peer's address, with a valid MAC and a fresh sequence; everything else is
//! dropped and counted, never acted on.

use super::module_task::Event;
use crate::config::{Cluster, Module};
use crate::heartbeat::replay::ReplayGuard;
use crate::heartbeat::wire::{Sealer, decode};
use crate::key::HeartbeatKey;
use crate::mirror::advert::Advert;
use crate::modlog::{ModuleLog, Source};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Sender;

/// The model product's mirror heartbeat port: 8888 + (module id - 1).
pub fn heartbeat_port(module_id: u16) -> u16 {
    8888 + (module_id - 1)
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatIoError {
    #[error("heartbeat {lan}: node {node} has no address on lan {lan} in cluster.xml")]
    NoAddress { lan: String, node: String },
    #[error("heartbeat {lan}: cannot bind {addr}: {source}")]
    Bind {
        lan: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct HeartbeatIo {
    sealer: Sealer,
    links: Vec<(Arc<UdpSocket>, SocketAddr)>,
    send_errors: Vec<bool>,
    log: ModuleLog,
    /// Datagrams dropped (bad source, bad MAC, replay, wrong module or node).
    pub rejected: Arc<AtomicU64>,
}

impl HeartbeatIo {
    pub async fn open(
        module: &Module,
        cluster: &Cluster,
        me: &str,
        peer: &str,
        key: HeartbeatKey,
        log: ModuleLog,
    ) -> Result<HeartbeatIo, HeartbeatIoError> {
        let port = heartbeat_port(module.id);
        let mut links = Vec::new();
        for hb in &module.heart.heartbeats {
            let addr_of = |node: &str| {
                cluster
                    .addr(&hb.lan, node)
                    .ok_or_else(|| HeartbeatIoError::NoAddress {
                        lan: hb.lan.clone(),
                        node: node.to_string(),
                    })
            };
            let local = SocketAddr::new(addr_of(me)?, port);
            let remote = SocketAddr::new(addr_of(peer)?, port);
            let socket = UdpSocket::bind(local)
                .await
                .map_err(|source| HeartbeatIoError::Bind {
                    lan: hb.lan.clone(),
                    addr: local,
                    source,
                })?;
            links.push((Arc::new(socket), remote));
        }
        Ok(HeartbeatIo {
            sealer: Sealer::new(&module.name, me, key),
            send_errors: vec![false; links.len()],
            links,
            log,
            rejected: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Send one heartbeat on every network. A send error (link down) is logged once per
    /// outage; the peer's liveness is judged on what it receives, not on this.
    pub fn send(&mut self, advert: Advert) {
        let datagram = self.sealer.seal(advert);
        for (i, (socket, remote)) in self.links.iter().enumerate() {
            match socket.try_send_to(&datagram, *remote) {
                Ok(_) => self.send_errors[i] = false,
                Err(e) if !self.send_errors[i] => {
                    self.send_errors[i] = true;
                    self.log.line(
                        Source::Engine,
                        &format!("heartbeat to {remote} failed: {e}"),
                    );
                }
                Err(_) => {}
            }
        }
    }

    /// One receiving task per network, feeding `Event::Heartbeat` into the module.
    pub fn spawn_receivers(&self, peer: &str, events: Sender<Event>) {
        for (net, (socket, remote)) in self.links.iter().enumerate() {
            let receiver = Receiver {
                net,
                socket: socket.clone(),
                expected: *remote,
                module: self.sealer.module.clone(),
                peer: peer.to_string(),
                key: self.sealer.key.clone(),
                guard: ReplayGuard::default(),
                rejected: self.rejected.clone(),
                log: self.log.clone(),
                events: events.clone(),
            };
            tokio::spawn(receiver.run());
        }
    }
}

struct Receiver {
    net: usize,
    socket: Arc<UdpSocket>,
    expected: SocketAddr,
    module: String,
    peer: String,
    key: HeartbeatKey,
    guard: ReplayGuard,
    rejected: Arc<AtomicU64>,
    log: ModuleLog,
    events: Sender<Event>,
}

impl Receiver {
    async fn run(mut self) {
        let (socket, rejected, log) =
            (self.socket.clone(), self.rejected.clone(), self.log.clone());
        let events = self.events.clone();
        let net = self.net;
        super::heartbeat_recv::receive(socket, rejected, log, events, |datagram, from| {
            self.check(datagram, from).map(|advert| Event::Heartbeat {
                net,
                advert: Box::new(advert),
            })
        })
        .await;
    }

    fn check(&mut self, datagram: &[u8], from: SocketAddr) -> Result<Advert, String> {
        if from.ip() != self.expected.ip() {
            return Err(format!(
                "not from {}'s address {}",
                self.peer,
                self.expected.ip()
            ));
        }
        let hb = decode(&self.key, datagram).map_err(|e| e.to_string())?;
        if hb.module != self.module || hb.node != self.peer {
            return Err(format!(
                "for module {} from node {}, expected module {} from {}",
                hb.module, hb.node, self.module, self.peer
            ));
        }
        self.guard.accept(&hb).map_err(|e| e.to_string())?;
        Ok(hb.advert)
    }
}
