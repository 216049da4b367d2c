//! One short-lived rtnetlink connection and the two dumps the VIP code needs.
//!
//! The socket is opened in the calling thread's network namespace; the connection task is
//! stopped when [`Netlink`] is dropped.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::LinkAttribute;

use super::NetError;

pub(crate) struct Netlink {
    pub(crate) handle: rtnetlink::Handle,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// One address as the kernel lists it.
pub(crate) struct AddrEntry {
    pub(crate) ifindex: u32,
    pub(crate) addr: IpAddr,
    pub(crate) prefix_len: u8,
    /// The message as dumped: handed back unchanged to delete the address.
    pub(crate) msg: AddressMessage,
}

impl Netlink {
    pub(crate) fn open() -> Result<Self, NetError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetError::NetlinkOpen)?;
        let conn = tokio::spawn(conn);
        Ok(Self { handle, conn })
    }

    pub(crate) async fn addresses(&self) -> Result<Vec<AddrEntry>, NetError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetError::Dump {
            what: "addresses",
            source,
        })?;
        Ok(msgs
            .into_iter()
            .filter_map(|msg| {
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
                // point-to-point links); IPv6 only sends IFA_ADDRESS.
                let local = msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                });
                let address = msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                });
                let addr = local.or(address)?;
                Some(AddrEntry {
                    ifindex: msg.header.index,
                    addr,
                    prefix_len: msg.header.prefix_len,
                    msg,
                })
            })
            .collect())
    }

    /// `(ifindex, name)` of every link.
    pub(crate) async fn links(&self) -> Result<Vec<(u32, String)>, NetError> {
        let msgs: Vec<_> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetError::Dump {
                what: "links",
                source,
            })?;
        Ok(msgs
            .into_iter()
            .filter_map(|msg| {
                let name = msg.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })?;
                Some((msg.header.index, name))
            })
            .collect())
    }
}

/// Whether `addr` lies in `net/prefix_len` (same family only).
pub(crate) fn in_subnet(net: IpAddr, prefix_len: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The errno a netlink request failed with, if it was a kernel NACK.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::in_subnet;

    #[test]
    fn subnet_membership() {
        let ip = |s: &str| s.parse().expect("test address");
        assert!(in_subnet(ip("10.77.0.1"), 24, ip("10.77.0.99")));
        assert!(!in_subnet(ip("10.77.0.1"), 24, ip("10.77.1.99")));
        assert!(in_subnet(ip("10.77.0.1"), 0, ip("192.168.1.1")));
        assert!(in_subnet(ip("10.77.0.1"), 32, ip("10.77.0.1")));
        assert!(!in_subnet(ip("10.77.0.1"), 32, ip("10.77.0.2")));
        assert!(in_subnet(ip("fd00::1"), 64, ip("fd00::99")));
        assert!(!in_subnet(ip("fd00::1"), 64, ip("fd00:0:0:1::99")));
        assert!(!in_subnet(ip("10.77.0.1"), 24, ip("fd00::1")));
    }
}
