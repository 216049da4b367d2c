//! The lab's switch (a bridge in its own namespace) and the veth cables that plug hosts into it.

use std::net::Ipv4Addr;

use anyhow::Result;

use crate::cleanup::netns_lock;
use crate::exec;
use crate::lab::{SUBNET_PREFIX_LEN, WITNESS};

const BRIDGE: &str = "br0";
/// The host side of the cable, as a host sees it.
const HOST_IF: &str = "eth0";

/// Creates namespace `switch_ns` with bridge `br0` up and holding the witness address.
pub(crate) fn create(switch_ns: &str) -> Result<()> {
    netns_add(switch_ns)?;
    ip(&["-n", switch_ns, "link", "set", "lo", "up"])?;
    ip(&["-n", switch_ns, "link", "add", BRIDGE, "type", "bridge"])?;
    let witness = format!("{WITNESS}/{SUBNET_PREFIX_LEN}");
    ip(&["-n", switch_ns, "addr", "add", &witness, "dev", BRIDGE])?;
    ip(&["-n", switch_ns, "link", "set", BRIDGE, "up"])
}

/// Creates namespace `host_ns` with `lo` up and `eth0` (address `addr`) cabled to bridge port
/// `port` of the switch.
pub(crate) fn plug(switch_ns: &str, host_ns: &str, port: &str, addr: Ipv4Addr) -> Result<()> {
    netns_add(host_ns)?;
    ip(&["-n", host_ns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n", host_ns, "link", "add", HOST_IF, "type", "veth", "peer", "name", port, "netns",
        switch_ns,
    ])?;
    ip(&["-n", switch_ns, "link", "set", port, "master", BRIDGE, "up"])?;
    let cidr = format!("{addr}/{SUBNET_PREFIX_LEN}");
    ip(&["-n", host_ns, "addr", "add", &cidr, "dev", HOST_IF])?;
    ip(&["-n", host_ns, "link", "set", HOST_IF, "up"])
}

/// Brings bridge port `port` down or up: for the host behind it, like pulling or plugging the
/// cable (its `eth0` loses carrier; its addresses and routes stay).
pub(crate) fn set_port(switch_ns: &str, port: &str, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    ip(&["-n", switch_ns, "link", "set", port, state])
}

fn netns_add(ns: &str) -> Result<()> {
    let _guard = netns_lock();
    ip(&["netns", "add", ns])
}

fn ip(args: &[&str]) -> Result<()> {
    exec::root("ip", args).map(drop)
}
