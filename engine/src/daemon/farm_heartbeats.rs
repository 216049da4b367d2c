//! Farm heartbeat sockets of one module: one UDP socket per farm lan, bound to this node's
//! address on it (port 4803 + 3 × (id - 1), the model product's farm port), sending to every
//! other host of the farm group. The envelope, MAC and replay checks are the mirror
//! heartbeats' (`heartbeat::wire`, `heartbeat::replay`); only the advert differs. A datagram
//! is accepted only from a farm host's address on that lan, naming that host, with a valid
//! MAC and a fresh position; everything else is dropped and counted.

use crate::config::Cluster;
use crate::farm::membership::Advert;
use crate::heartbeat::replay::ReplayGuard;
use crate::heartbeat::wire::{Heartbeat, Sealer, decode_as};
use crate::key::HeartbeatKey;
use crate::modlog::{ModuleLog, Source};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Sender;

/// The model product's farm membership port: 4803 + 3 × (module id - 1).
pub fn farm_port(module_id: u16) -> u16 {
    4803 + 3 * (module_id - 1)
}

#[derive(Debug, thiserror::Error)]
pub enum FarmHeartbeatError {
    #[error("farm lan {lan}: node {node} has no address on it in cluster.xml")]
    NoAddress { lan: String, node: String },
    #[error("farm lan {lan}: cannot bind {addr}: {source}")]
    Bind {
        lan: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A heartbeat that passed every check: `from` says `advert` on network `net`.
#[derive(Debug)]
pub struct Received {
    pub net: usize,
    pub from: String,
    pub advert: Advert,
}

struct Lan {
    socket: Arc<UdpSocket>,
    /// Every other farm host and its address on this lan.
    peers: Vec<(String, SocketAddr)>,
    send_error: bool,
}

pub struct FarmHeartbeats {
    sealer: Sealer,
    lans: Vec<Lan>,
    log: ModuleLog,
    pub rejected: Arc<AtomicU64>,
}

impl FarmHeartbeats {
    /// `lans`: the farm's networks, in the membership's order; `hosts`: the farm group.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        module: &str,
        module_id: u16,
        lans: &[String],
        cluster: &Cluster,
        me: &str,
        hosts: &[String],
        key: HeartbeatKey,
        log: ModuleLog,
    ) -> Result<FarmHeartbeats, FarmHeartbeatError> {
        let port = farm_port(module_id);
        let mut out = Vec::new();
        for lan in lans {
            let addr_of = |node: &str| {
                cluster
                    .addr(lan, node)
                    .map(|ip| SocketAddr::new(ip, port))
                    .ok_or_else(|| FarmHeartbeatError::NoAddress {
                        lan: lan.clone(),
                        node: node.to_string(),
                    })
            };
            let local = addr_of(me)?;
            let peers = hosts
                .iter()
                .filter(|h| *h != me)
                .map(|h| addr_of(h).map(|a| (h.clone(), a)))
                .collect::<Result<Vec<_>, _>>()?;
            let socket =
                UdpSocket::bind(local)
                    .await
                    .map_err(|source| FarmHeartbeatError::Bind {
                        lan: lan.clone(),
                        addr: local,
                        source,
                    })?;
            out.push(Lan {
                socket: Arc::new(socket),
                peers,
                send_error: false,
            });
        }
        Ok(FarmHeartbeats {
            sealer: Sealer::new(module, me, key),
            lans: out,
            log,
            rejected: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Sends `advert` to every peer on every lan. A send error is logged once per outage.
    pub fn send(&mut self, advert: Advert) {
        let datagram = self.sealer.seal(advert);
        for (i, lan) in self.lans.iter_mut().enumerate() {
            let mut failed = None;
            for (_, to) in &lan.peers {
                if let Err(e) = lan.socket.try_send_to(&datagram, *to) {
                    failed = Some(format!("farm heartbeat to {to} (lan #{i}) failed: {e}"));
                }
            }
            match failed {
                Some(why) if !lan.send_error => {
                    lan.send_error = true;
                    self.log.line(Source::Engine, &why);
                }
                Some(_) => {}
                None => lan.send_error = false,
            }
        }
    }

    /// One receiving task per lan.
    pub fn spawn_receivers(&self, events: Sender<Received>) {
        for (net, lan) in self.lans.iter().enumerate() {
            let receiver = Receiver {
                net,
                socket: lan.socket.clone(),
                peers: lan.peers.iter().map(|(n, a)| (n.clone(), a.ip())).collect(),
                module: self.sealer.module.clone(),
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
    peers: Vec<(String, IpAddr)>,
    module: String,
    key: HeartbeatKey,
    guard: ReplayGuard,
    rejected: Arc<AtomicU64>,
    log: ModuleLog,
    events: Sender<Received>,
}

impl Receiver {
    async fn run(mut self) {
        let (socket, rejected, log) =
            (self.socket.clone(), self.rejected.clone(), self.log.clone());
        let events = self.events.clone();
        super::heartbeat_recv::receive(socket, rejected, log, events, |datagram, from| {
            self.check(datagram, from)
        })
        .await;
    }

    fn check(&mut self, datagram: &[u8], from: SocketAddr) -> Result<Received, String> {
        let Some((name, _)) = self.peers.iter().find(|(_, ip)| *ip == from.ip()) else {
            return Err("not from a host of the farm group".to_string());
        };
        let hb: Heartbeat<Advert> = decode_as(&self.key, datagram).map_err(|e| e.to_string())?;
        if hb.module != self.module || hb.node != *name {
            return Err(format!(
                "for module {} from node {}, expected module {} from {name}",
                hb.module, hb.node, self.module
            ));
        }
        self.guard.accept(&hb).map_err(|e| e.to_string())?;
        Ok(Received {
            net: self.net,
            from: hb.node,
            advert: hb.advert,
        })
    }
}
