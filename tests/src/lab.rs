//! A lab: one switch namespace and its hosts, torn down when dropped.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result, bail};

use crate::cleanup::{
    self, cleanup_stale, kill_netns_processes, labs_dir, netns_exists, netns_lock,
};
use crate::host::{Host, HostSpec, PRIVATE_DIRS};
use crate::{names, prereq, switch};

/// The witness address, on the switch's bridge: every host can ping it.
pub const WITNESS: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 254);
/// Hosts get addresses of 10.88.0.0/24.
pub const SUBNET_PREFIX_LEN: u8 = 24;

/// A private switch (bridge `br0` in its own network namespace) and the hosts plugged into it.
/// Several labs can live at once, even in one process; each has its own namespaces and folders.
pub struct Lab {
    name: String,
    prefix: String,
    dir: PathBuf,
    switch_ns: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every namespace created (or being created), the switch first.
    netns: Vec<String>,
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
        let lab = Lab {
            name: name.to_string(),
            switch_ns: prefix.clone(),
            prefix,
            dir,
            state: Mutex::new(State::default()),
        };
        lab.state().netns.push(lab.switch_ns.clone());
        switch::create(&lab.switch_ns)
            .with_context(|| format!("creating the switch of lab {name}"))?;
        Ok(lab)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prefix of every namespace of this lab (`hkl<pid>_<n>`; the switch's is the prefix itself).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Adds a node: its own network namespace plugged into the switch with address `ip`/24, and
    /// its own `/etc/hakit`, `/var/lib/hakit`, `/var/log/hakit` and `/srv/app`.
    pub fn add_host(&self, name: &str, ip: &str) -> Result<Host> {
        self.add(name, ip, true)
    }

    /// Adds a client: a network namespace plugged into the switch, sharing the machine's files.
    pub fn add_client(&self, name: &str, ip: &str) -> Result<Host> {
        self.add(name, ip, false)
    }

    fn add(&self, name: &str, ip: &str, private_fs: bool) -> Result<Host> {
        let lab = &self.name;
        names::check_host_name(name)?;
        let ip: Ipv4Addr = ip
            .parse()
            .with_context(|| format!("bad address {ip:?} for host {name} of lab {lab}"))?;
        let [a, b, c, d] = ip.octets();
        if [a, b, c] != [10, 88, 0] || d == 0 || d == 255 || ip == WITNESS {
            bail!(
                "address {ip} of host {name}: use 10.88.0.1 to 10.88.0.253 (.254 is the witness)"
            );
        }
        let netns = names::host_netns(&self.prefix, name);
        {
            let mut state = self.state();
            if let Some(other) = state
                .hosts
                .iter()
                .find(|h| h.name() == name || h.ip() == ip)
            {
                bail!(
                    "lab {lab} already has host {} at {}",
                    other.name(),
                    other.ip()
                );
            }
            state.netns.push(netns.clone());
        }
        let port = names::switch_port(name);
        switch::plug(&self.switch_ns, &netns, &port, ip)
            .with_context(|| format!("plugging host {name} into the switch of lab {lab}"))?;
        let host = Host::start(HostSpec {
            name: name.to_string(),
            ip,
            netns,
            switch_ns: self.switch_ns.clone(),
            port,
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
