//! The lab: simulated hosts on one machine, running the real `hakit` daemon.
//!
//! A [`Lab`] is a private "switch" network namespace holding a bridge `br0` (with the witness
//! address [`WITNESS`]) plus hosts. Each [`Host`] is a network namespace (`lo`, and `eth0`: a veth
//! whose peer is a port of the bridge) and, for nodes, a private mount namespace in which the
//! host's own temporary folders are bind-mounted over `/etc/hakit`, `/var/lib/hakit`,
//! `/var/log/hakit` and `/srv/app`, so every node sees the same paths as on a real server.
//! [`Lab::add_network`] adds a [`Network`]: another switch namespace, to which
//! [`Host::attach`] cables a host on `eth1` (then `eth2`...).
//!
//! Dropping a `Lab` (including while a test panics) kills every process of its hosts and deletes its
//! namespaces and folders; [`cleanup_stale`] (called by [`Lab::new`]) removes what labs of dead
//! processes left behind. Needs root and iproute2, iputils-ping and util-linux: missing
//! prerequisites are an error that says to run `cargo xtask setup`, never a skip.

#![forbid(unsafe_code)]

mod cleanup;
pub mod database;
pub mod demo;
mod exec;
pub mod farm;
mod hakit;
mod host;
mod http;
mod lab;
mod mirror;
mod names;
mod network;
mod node;
pub mod pair;
mod prereq;
mod switch;
pub mod torture;
mod wait;

pub use cleanup::cleanup_stale;
pub use hakit::{State, hakit_bin};
pub use host::Host;
pub use lab::{Lab, SUBNET_PREFIX_LEN, WITNESS, witness_check_xml};
pub use mirror::{MirrorConfig, cluster_xml, share_cluster_key};
pub use network::Network;
pub use nix::sys::signal::Signal;
pub use node::Node;
pub use wait::{DEADLINE, abort, wait_until};
