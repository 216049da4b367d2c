//! The receiving loop shared by mirror and farm heartbeat sockets: every datagram is checked
//! (`check` authenticates and parses it, or says why it is dropped); accepted ones are
//! delivered, dropped ones counted and logged sparsely (a flood must not fill the disk).

use crate::modlog::{ModuleLog, Source};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Sender;

/// Runs until the receiving side of `deliver` is gone.
pub async fn receive<E>(
    socket: Arc<UdpSocket>,
    rejected: Arc<AtomicU64>,
    log: ModuleLog,
    deliver: Sender<E>,
    mut check: impl FnMut(&[u8], SocketAddr) -> Result<E, String>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                log.line(Source::Engine, &format!("heartbeat receive error: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        match check(&buf[..len.min(buf.len())], from) {
            Ok(event) => {
                if deliver.send(event).await.is_err() {
                    return;
                }
            }
            Err(why) => {
                let n = rejected.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    log.line(
                        Source::Engine,
                        &format!("heartbeat from {from} dropped ({n} so far): {why}"),
                    );
                }
            }
        }
    }
}
