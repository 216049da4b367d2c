//! A two-node mirror cluster in a lab, with a client: the fixture of the lab scenarios and of
//! the failover benchmark.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::hakit::State;
use crate::host::Host;
use crate::lab::Lab;
use crate::mirror::{MirrorConfig, share_cluster_key};
use crate::network::Network;
use crate::node::Node;
use crate::wait::{DEADLINE, wait_until};

/// The port of the HTTP server of each daemon (health URL, JSON state).
pub const HTTP_PORT: u16 = 9010;
/// Lines of each log shown when a scenario fails.
const LOG_TAIL: usize = 40;

pub struct MirrorPair {
    pub nodes: [Node; 2],
    pub client: Host,
    pub config: MirrorConfig,
    /// The second network of [`MirrorPair::with_backup_network`].
    backup: Option<Network>,
    /// Dropped last (fields drop in order): the nodes' daemons go first.
    pub lab: Arc<Lab>,
}

impl MirrorPair {
    /// node1 10.88.0.1, node2 10.88.0.2, client 10.88.0.100; `config` written into both nodes,
    /// a shared cluster key, both daemons started and answering.
    pub fn new(name: &str, config: MirrorConfig) -> Result<MirrorPair> {
        Self::with_bin(name, config, &crate::hakit_bin()?)
    }

    /// [`MirrorPair::new`] with a given hakit binary (e.g. a release build for benchmarks).
    pub fn with_bin(name: &str, config: MirrorConfig, bin: &std::path::Path) -> Result<MirrorPair> {
        Self::build(name, config, bin, false)
    }

    /// [`MirrorPair::new`] with a second network, `backup` (10.89.0.0/24: node1 10.89.0.1,
    /// node2 10.89.0.2 on their `eth1`; the client is not on it), written into cluster.xml as
    /// lan `backup`. Heartbeats go on it if `config.heartbeats` names it.
    pub fn with_backup_network(name: &str, config: MirrorConfig) -> Result<MirrorPair> {
        Self::build(name, config, &crate::hakit_bin()?, true)
    }

    fn build(
        name: &str,
        config: MirrorConfig,
        bin: &std::path::Path,
        with_backup: bool,
    ) -> Result<MirrorPair> {
        let lab = Arc::new(Lab::new(name)?);
        let node1 = Node::new(lab.add_host("node1", "10.88.0.1")?, bin);
        let node2 = Node::new(lab.add_host("node2", "10.88.0.2")?, bin);
        let client = lab.add_client("client", "10.88.0.100")?;
        let backup = if with_backup {
            let backup = lab.add_network("backup", "10.89.0.0/24")?;
            node1.host().attach(&backup, "10.89.0.1")?;
            node2.host().attach(&backup, "10.89.0.2")?;
            Some(backup)
        } else {
            None
        };
        config.write(&[node1.host(), node2.host()])?;
        share_cluster_key(&[&node1, &node2])?;
        let mut pair = MirrorPair {
            nodes: [node1, node2],
            client,
            config,
            backup,
            lab,
        };
        for node in &mut pair.nodes {
            node.start_daemon()?;
        }
        let module = pair.config.module.clone();
        for node in &mut pair.nodes {
            node.wait_answer(&module)?;
        }
        Ok(pair)
    }

    /// The second network of [`MirrorPair::with_backup_network`].
    pub fn backup(&self) -> Result<&Network> {
        self.backup.as_ref().ok_or_else(|| {
            anyhow!(
                "this pair has no backup network: build it with MirrorPair::with_backup_network"
            )
        })
    }

    pub fn module(&self) -> &str {
        &self.config.module
    }

    /// `hakit <verb> -m <module>` on node `i` (0 or 1).
    pub fn hakit(&self, i: usize, verb: &str) -> Result<String> {
        self.nodes[i].hakit(&[verb, "-m", self.module()])
    }

    pub fn state(&self, i: usize) -> Result<State> {
        self.nodes[i].state(self.module())
    }

    pub fn wait_state(&mut self, i: usize, want: State) -> Result<()> {
        let module = self.config.module.clone();
        self.nodes[i].wait_state(&module, want)
    }

    /// Waits until node `i` shows `want` and Ready in `hakit state -l`.
    pub fn wait_ready(&self, i: usize, want: State) -> Result<()> {
        self.nodes[i].wait_ready(self.module(), want)
    }

    /// First start: `prim` on node1, `second` on node2; waits for PRIM and SECOND Ready.
    pub fn start_pair(&mut self) -> Result<()> {
        self.hakit(0, "prim")?;
        self.hakit(1, "second")?;
        self.wait_in_sync(0)
    }

    /// Waits until node `prim` is PRIM Ready, the other SECOND Ready, and each sees the other
    /// so (a swap needs both to agree).
    pub fn wait_in_sync(&self, prim: usize) -> Result<()> {
        let second = 1 - prim;
        let (p, s) = (self.nodes[prim].name(), self.nodes[second].name());
        for (i, want) in [
            (prim, format!("{p}: PRIM (Ready); peer {s}: SECOND (Ready)")),
            (
                second,
                format!("{s}: SECOND (Ready); peer {p}: PRIM (Ready)"),
            ),
        ] {
            let node = &self.nodes[i];
            wait_until(&format!("{}: {want:?}", node.name()), DEADLINE, || {
                let line = node.hakit(&["state", "-m", self.module()])?;
                if line.contains(&want) {
                    Ok(true)
                } else {
                    Err(anyhow!("state {:?}", line.trim()))
                }
            })?;
        }
        Ok(())
    }

    /// Waits until the VIP answers "served by <node>" to the client.
    pub fn wait_served_by(&self, node: &str) -> Result<()> {
        let (vip, port) = (self.config.vip, self.config.app_port);
        let want = format!("served by {node}");
        wait_until(&format!("the VIP to answer {want:?}"), DEADLINE, || {
            let answer = self.client.http_get(vip, port, "/")?;
            if answer.contains(&want) {
                Ok(true)
            } else {
                Err(anyhow!("answer {:?}", answer.trim()))
            }
        })
    }

    /// The HTTP status of node `i`'s health URL, as a load balancer sees it from the client.
    pub fn ready_txt_status(&self, i: usize) -> Result<u16> {
        let path = format!("/var/modules/{}/ready.txt", self.module());
        match self
            .client
            .http_get(self.nodes[i].host().ip(), HTTP_PORT, &path)
        {
            Ok(_) => Ok(200),
            Err(e) if format!("{e:#}").contains(" 404 ") => Ok(404),
            Err(e) => Err(e),
        }
    }

    /// Bytes node `i` has sent on its cable (`eth0`) so far, from the kernel's interface
    /// counters: what replication really put on the wire.
    pub fn tx_bytes(&self, i: usize) -> Result<u64> {
        let out = self.nodes[i].host().run_ok(["cat", "/proc/net/dev"])?;
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("eth0:"))
            .ok_or_else(|| anyhow!("no eth0 in /proc/net/dev:\n{out}"))?;
        let fields: Vec<&str> = line
            .split(':')
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        Ok(fields.get(8).ok_or_else(|| anyhow!("{line}"))?.parse()?)
    }

    /// Waits until `view` (e.g. a listing of the replicated folder) reads the same on both
    /// nodes; that view. The error shows both when they never agree.
    pub fn wait_same(
        &self,
        what: &str,
        view: impl Fn(&MirrorPair, usize) -> Result<String>,
    ) -> Result<String> {
        let mut last = String::new();
        wait_until(what, DEADLINE, || {
            let (a, b) = (view(self, 0)?, view(self, 1)?);
            if a == b {
                last = a;
                Ok(true)
            } else {
                Err(anyhow!("node1:\n{a}\nnode2:\n{b}"))
            }
        })?;
        Ok(last)
    }

    /// Node `i`'s module log.
    pub fn module_log(&self, i: usize) -> Result<String> {
        let path = format!("/var/log/hakit/{}/module.log", self.module());
        self.nodes[i].host().read_file(path)
    }

    /// The tails of both nodes' module logs and daemon outputs, to explain a failure.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let module_log = self
                .module_log(i)
                .unwrap_or_else(|e| format!("(none: {e:#})"));
            let app_log = node
                .host()
                .read_file(format!("/var/log/hakit/{}/application.log", self.module()))
                .unwrap_or_else(|e| format!("(none: {e:#})"));
            let daemon_log = node
                .daemon_log()
                .and_then(|p| std::fs::read_to_string(&p).context("reading the daemon output"))
                .unwrap_or_else(|e| format!("(none: {e:#})"));
            let name = node.name();
            text.push_str(&format!(
                "--- {name} module.log:\n{}\n--- {name} application.log:\n{}\n--- {name} daemon output:\n{}\n",
                tail(&module_log),
                tail(&app_log),
                tail(&daemon_log)
            ));
        }
        text
    }

    /// Runs a scenario; on failure the error carries both nodes' logs.
    pub fn scenario(&mut self, body: impl FnOnce(&mut MirrorPair) -> Result<()>) -> Result<()> {
        body(self).map_err(|e| anyhow!("{e:#}\n{}", self.logs()))
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}
