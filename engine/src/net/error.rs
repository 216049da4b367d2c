//! Errors of the network drivers: each names what was attempted and on which address or
//! interface.

use std::io;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot open a netlink (rtnetlink) socket: {0}")]
    NetlinkOpen(#[source] io::Error),

    #[error("netlink: listing {what} failed: {source}")]
    Dump {
        what: &'static str,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("no interface has an address in the subnet of {addr}; set <interface name=...>")]
    NoMatchingSubnet { addr: IpAddr },

    #[error("interface {name} not found")]
    InterfaceNotFound { name: String },

    #[error("{addr} is already on interface {present_on}, not on the configured {wanted}")]
    VipElsewhere {
        addr: IpAddr,
        present_on: String,
        wanted: String,
    },

    #[error("cannot add {addr}/{prefix_len} to {ifname}: {source}")]
    AddAddress {
        addr: IpAddr,
        prefix_len: u8,
        ifname: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("cannot remove {addr} from {ifname}: {source}")]
    DelAddress {
        addr: IpAddr,
        ifname: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("gratuitous ARP on {ifname} for {addr}: {step} failed: {source}")]
    Garp {
        ifname: String,
        addr: IpAddr,
        step: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("gratuitous ARP on {ifname}: the interface has no Ethernet (6-byte) hardware address")]
    NotEthernet { ifname: String },
}
