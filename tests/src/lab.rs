//! A lab: its networks (switch namespaces) and hosts, torn down when dropped.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result, bail};

use crate::cleanup::{
    self, cleanup_stale, kill_netns_processes, labs_dir, netns_exists, netns_lock,
};
use crate::host::{Host, HostSpec, PRIVATE_DIRS};
use crate::network::{Network, Subnet};
use crate::{names, prereq, switch};

/// The witness address, on the default network's bridge: every host can ping it.
pub const WITNESS: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 254);
/// A module's `<check>` with a split-brain checker pinging [`WITNESS`] (for
/// [`MirrorConfig::extra_xml`](crate::MirrorConfig)).
pub fn witness_check_xml() -> String {
    format!(r#"<check><splitbrain ident="witness" exec="ping" arg="{WITNESS}"/></check>"#)
}

/// Hosts get addresses of 10.88.0.0/24.
pub const SUBNET_PREFIX_LEN: u8 = 24;
const DEFAULT_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 88, 0, 0), SUBNET_PREFIX_LEN);

/// A private switch (bridge `br0` in its own network namespace) and the hosts plugged into it:
/// the default network, 10.88.0.0/24; more networks can be added ([`Lab::add_network`]).
/// Several labs can live at once, even in one process; each has its own namespaces and folders.
pub struct Lab {
    name: String,
    prefix: String,
    dir: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// Every namespace created (or being created), the default network's switch first.
    netns: Vec<String>,
    /// The default network first.
    networks: Vec<Network>,
    hosts: Vec<Host>,
}

impl Lab {
    /// Creates the switch. Checks the prerequisites first (root, tools) and removes what labs of
    /// dead processes left behind.
    pub fn new(name: &str) -> Result<Lab> {
        prereq::check()?;
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            bail!("bad lab name {name:?}: use 1 to 32 characters among A-Z, a-z, 0-9, '-', '_'");
        }
        cleanup_stale()?;
        for dir in PRIVATE_DIRS {
            // Mount points for the hosts' private folders; they stay empty in the root namespace.
            fs::create_dir_all(dir).with_context(|| format!("creating the mount point {dir}"))?;
        }
        let prefix = names::new_prefix();
        let dir = labs_dir().join(format!("{prefix}-{name}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let network = Network::new(
            name,
            "default",
            prefix.clone(),
            0,
            DEFAULT_SUBNET,
            Some(WITNESS),
        );
        let lab = Lab {
            name: name.to_string(),
            prefix: prefix.clone(),
            dir,
            state: Mutex::new(State {
                netns: vec![prefix],
                networks: vec![network.clone()],
                hosts: Vec::new(),
            }),
        };
        network.create_switch()?;
        Ok(lab)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prefix of every namespace of this lab (`hkl<pid>_<n>`; the default network's
    /// switch's is the prefix itself).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Adds a network `name` of `subnet` (e.g. `backup`, `10.89.0.0/24`): a switch namespace of
    /// its own, with a bridge (no address) to which [`Host::attach`] cables hosts. The n-th
    /// network added is `eth<n>` on the hosts.
    pub fn add_network(&self, name: &str, subnet: &str) -> Result<Network> {
        let lab = &self.name;
        let context = || format!("adding network {name} to lab {lab}");
        names::check_name("network", name).with_context(context)?;
        let subnet = Subnet::parse(subnet).with_context(context)?;
        let netns = names::network_netns(&self.prefix, name);
        let network = {
            let mut state = self.state();
            if let Some(other) = state
                .networks
                .iter()
                .find(|n| n.name() == name || n.subnet().overlaps(&subnet))
            {
                bail!(
                    "cannot add network {name} ({subnet}) to lab {lab}: it has network {} ({})",
                    other.name(),
                    other.subnet()
                );
            }
            let index = state.networks.len();
            let network = Network::new(lab, name, netns.clone(), index, subnet, None);
            state.netns.push(netns);
            state.networks.push(network.clone());
            network
        };
        network.create_switch()?;
        Ok(network)
    }

    /// Adds a node: its own network namespace plugged into the default network's switch with
    /// address `ip`/24 on `eth0`, and its own `/etc/hakit`, `/var/lib/hakit`, `/var/log/hakit`
    /// and `/srv/app`.
    pub fn add_host(&self, name: &str, ip: &str) -> Result<Host> {
        self.add(name, ip, true)
    }

    /// Adds a client: a network namespace plugged into the default network, sharing the
    /// machine's files.
    pub fn add_client(&self, name: &str, ip: &str) -> Result<Host> {
        self.add(name, ip, false)
    }

    fn add(&self, name: &str, ip: &str, private_fs: bool) -> Result<Host> {
        let lab = &self.name;
        names::check_name("host", name)?;
        let network = self.state().networks[0].clone();
        // Every host is on the default network: this also makes host names unique.
        let ip = network.claim(name, ip)?;
        let netns = names::host_netns(&self.prefix, name);
        self.state().netns.push(netns.clone());
        switch::add_host_ns(&netns)
            .with_context(|| format!("creating the namespace of host {name} of lab {lab}"))?;
        network.cable(name, &netns, ip)?;
        let host = Host::start(HostSpec {
            name: name.to_string(),
            network,
            ip,
            netns,
            root: self.dir.join(name),
            private_fs,
        })?;
        self.state().hosts.push(host.clone());
        Ok(host)
    }

    /// Kills every process of the lab's hosts, deletes its namespaces and folders. Idempotent;
    /// problems are reported on stderr (this runs in `Drop`, possibly while a test panics).
    pub fn teardown(&self) {
        let (netns, hosts) = {
            let mut state = self.state();
            (
                std::mem::take(&mut state.netns),
                std::mem::take(&mut state.hosts),
            )
        };
        let existing: Vec<&String> = netns.iter().rev().filter(|ns| netns_exists(ns)).collect();
        for ns in &existing {
            if let Err(e) = kill_netns_processes(ns) {
                eprintln!("hakit-lab: teardown of lab {}: {e:#}", self.name);
            }
        }
        for host in &hosts {
            host.stop_holder();
        }
        let _guard = netns_lock();
        for ns in &existing {
            if let Err(e) = cleanup::remove_netns(ns) {
                eprintln!("hakit-lab: teardown of lab {}: {e:#}", self.name);
            }
        }
        if self.dir.exists()
            && let Err(e) = fs::remove_dir_all(&self.dir)
        {
            eprintln!(
                "hakit-lab: teardown of lab {}: removing {}: {e}",
                self.name,
                self.dir.display()
            );
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}
