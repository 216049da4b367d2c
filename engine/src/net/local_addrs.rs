//! The addresses configured on this host (in the caller's network namespace).

use std::net::IpAddr;

use super::NetError;
use super::netlink::Netlink;

/// Every address of every interface (IPv4 and IPv6, loopback included), in kernel order
/// without duplicates. Used to find which cluster node this host is.
pub async fn local_addresses() -> Result<Vec<IpAddr>, NetError> {
    let nl = Netlink::open()?;
    let mut out: Vec<IpAddr> = Vec::new();
    for entry in nl.addresses().await? {
        if !out.contains(&entry.addr) {
            out.push(entry.addr);
        }
    }
    Ok(out)
}
