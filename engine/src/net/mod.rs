//! Network drivers: the node's own addresses, the virtual IP, gratuitous ARP.
//!
//! All netlink calls act in the network namespace of the calling thread at the time of the
//! call (each opens its own short-lived rtnetlink socket).

mod error;
mod garp;
mod local_addrs;
mod netlink;
mod vip;

pub use error::NetError;
pub use garp::send_gratuitous_arp;
pub(crate) use garp::{broadcast_sockaddr, ethernet_mac};
pub use local_addrs::local_addresses;
pub use vip::{VipPlacement, add_vip, del_vip, has_vip, interface_for};

#[cfg(test)]
pub(crate) mod testns;
#[cfg(test)]
mod tests;
