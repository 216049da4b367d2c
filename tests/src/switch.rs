//! A network's switch (a bridge in its own namespace) and the veth cables that plug hosts into it.

use anyhow::Result;

use crate::cleanup::netns_lock;
use crate::exec;

const BRIDGE: &str = "br0";

/// Creates namespace `switch_ns` with bridge `br0` up, holding address `bridge_cidr` if given
/// (e.g. the witness).
pub(crate) fn create(switch_ns: &str, bridge_cidr: Option<&str>) -> Result<()> {
    netns_add(switch_ns)?;
    ip(&["-n", switch_ns, "link", "set", "lo", "up"])?;
    ip(&["-n", switch_ns, "link", "add", BRIDGE, "type", "bridge"])?;
    if let Some(cidr) = bridge_cidr {
        ip(&["-n", switch_ns, "addr", "add", cidr, "dev", BRIDGE])?;
    }
    ip(&["-n", switch_ns, "link", "set", BRIDGE, "up"])
}

/// Creates a host's namespace `host_ns`, with `lo` up.
pub(crate) fn add_host_ns(host_ns: &str) -> Result<()> {
    netns_add(host_ns)?;
    ip(&["-n", host_ns, "link", "set", "lo", "up"])
}

/// Cables interface `host_if` (address `cidr`) of namespace `host_ns` to bridge port `port` of
/// the switch.
pub(crate) fn cable(
    switch_ns: &str,
    port: &str,
    host_ns: &str,
    host_if: &str,
    cidr: &str,
) -> Result<()> {
    ip(&[
        "-n", host_ns, "link", "add", host_if, "type", "veth", "peer", "name", port, "netns",
        switch_ns,
    ])?;
    ip(&["-n", switch_ns, "link", "set", port, "master", BRIDGE, "up"])?;
    ip(&["-n", host_ns, "addr", "add", cidr, "dev", host_if])?;
    ip(&["-n", host_ns, "link", "set", host_if, "up"])
}

/// Brings bridge port `port` down or up: for the host behind it, like pulling or plugging the
/// cable (its interface loses carrier; its addresses and routes stay).
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
