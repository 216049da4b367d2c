//! A three-node farm in a lab, with a client that has many source addresses: the fixture of
//! the farm scenarios and of the farm benchmark. Every node runs a small TCP service from
//! `start_both` that greets each connection with the node's name and answers every line with
//! it again.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use crate::hakit::State;
use crate::host::Host;
use crate::lab::Lab;
use crate::mirror::{cluster_xml, share_cluster_key};
use crate::node::Node;
use crate::wait::{DEADLINE, wait_until};

/// Client source addresses beyond its own: 10.88.0.150 and up.
const FIRST_SOURCE: u8 = 150;
const LOG_TAIL: usize = 40;

/// A farm module as the lab writes it. Values are inserted into the XML verbatim.
#[derive(Debug, Clone)]
pub struct FarmConfig {
    pub module: String,
    /// `(node, power)` of the farm group: node1, node2, node3 in this order.
    pub powers: [u32; 3],
    pub pulse: String,
    pub mlost_count: u32,
    pub slost_count: u32,
    pub vip: Ipv4Addr,
    pub port: u16,
    /// `on_port` or `on_addr`.
    pub filter: String,
    /// Inserted as is inside `<service>` (checkers).
    pub extra_xml: String,
}

impl Default for FarmConfig {
    /// Module `web`, powers 2/1/1, the model product's timing (pulse 100 ms, mlost_count 20,
    /// slost_count 10), VIP 10.88.0.10, TCP port 7000 balanced `on_port`.
    fn default() -> Self {
        FarmConfig {
            module: "web".into(),
            powers: [2, 1, 1],
            pulse: "100ms".into(),
            mlost_count: 20,
            slost_count: 10,
            vip: Ipv4Addr::new(10, 88, 0, 10),
            port: 7000,
            filter: "on_port".into(),
            extra_xml: String::new(),
        }
    }
}

impl FarmConfig {
    pub fn userconfig_xml(&self) -> String {
        let FarmConfig {
            pulse,
            mlost_count,
            slost_count,
            vip,
            port,
            filter,
            extra_xml,
            ..
        } = self;
        let hosts: String = self
            .powers
            .iter()
            .enumerate()
            .map(|(i, p)| format!(r#"<host name="node{}" power="{p}"/>"#, i + 1))
            .collect();
        format!(
            r#"<safe><service mode="farm">
  <farm pulse="{pulse}" mlost_count="{mlost_count}" slost_count="{slost_count}"><lan name="default"/></farm>
  <vip>
    <interface_list><interface><virtual_interface type="vmac_invisible"><virtual_addr addr="{vip}" where="alias"/></virtual_interface></interface></interface_list>
    <loadbalancing_list><group name="web"><cluster>{hosts}</cluster><rule port="{port}" proto="tcp" filter="{filter}"/></group></loadbalancing_list>
  </vip>
  <user nicestoptimeout="5s" forcestoptimeout="5s"/>{extra_xml}
</service></safe>
"#
        )
    }

    fn pid_file(&self) -> String {
        format!("/var/lib/hakit/{}-app.pid", self.module)
    }

    fn start_both(&self) -> String {
        let (pid_file, port, module) = (self.pid_file(), self.port, &self.module);
        format!(
            r#"#!/bin/sh
# Starts the {module} service on every farm node: greets each TCP connection with the node's
# name and answers each line with it again.
set -eu
pid_file={pid_file}
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then exit 0; fi
cat > /srv/app/serve.py <<'PY'
import socketserver, sys
node = sys.argv[2].encode() + b"\n"
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(node)
        for _ in self.rfile:
            self.wfile.write(node)
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256
Server(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
PY
/usr/bin/python3 /srv/app/serve.py {port} "${{HAKIT_NODE:-unknown}}" \
  < /dev/null >> /var/log/hakit/{module}-app.log 2>&1 &
echo $! > "$pid_file"
"#
        )
    }

    fn stop_both(&self) -> String {
        let (pid_file, module) = (self.pid_file(), &self.module);
        format!(
            r#"#!/bin/sh
# Stops the {module} service started by start_both; idempotent.
pid_file={pid_file}
[ -f "$pid_file" ] || exit 0
kill "$(cat "$pid_file")" 2>/dev/null || true
rm -f "$pid_file"
"#
        )
    }

    /// Writes cluster.xml, the module's userconfig.xml and scripts into every host.
    pub fn write(&self, hosts: &[&Host]) -> Result<()> {
        let cluster = cluster_xml(hosts)?;
        let dir = format!("/etc/hakit/modules/{}", self.module);
        for host in hosts {
            host.write_file("/etc/hakit/cluster.xml", &cluster, 0o644)?;
            host.write_file(
                format!("{dir}/conf/userconfig.xml"),
                self.userconfig_xml(),
                0o644,
            )?;
            host.write_file(format!("{dir}/bin/start_both"), self.start_both(), 0o755)?;
            host.write_file(format!("{dir}/bin/stop_both"), self.stop_both(), 0o755)?;
        }
        Ok(())
    }
}

/// One client connection: its source address and port, and who answered (or the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub source: String,
    pub port: u16,
    pub answer: String,
}

/// Connections held open by a client process (see [`Farm::hold`]).
pub struct Held {
    child: Child,
    output: PathBuf,
    go: PathBuf,
}

pub struct Farm {
    pub nodes: [Node; 3],
    pub client: Host,
    pub config: FarmConfig,
    sources: Vec<String>,
    /// Dropped last: the nodes' daemons go first.
    pub lab: Arc<Lab>,
}

impl Farm {
    /// node1..3 at 10.88.0.1..3, the client at 10.88.0.100 plus `sources` more addresses;
    /// daemons started and answering (modules STOP).
    pub fn new(name: &str, config: FarmConfig, sources: u8) -> Result<Farm> {
        Self::with_bin(name, config, sources, &crate::hakit_bin()?)
    }

    pub fn with_bin(
        name: &str,
        config: FarmConfig,
        sources: u8,
        bin: &std::path::Path,
    ) -> Result<Farm> {
        let lab = Arc::new(Lab::new(name)?);
        let nodes = [
            Node::new(lab.add_host("node1", "10.88.0.1")?, bin),
            Node::new(lab.add_host("node2", "10.88.0.2")?, bin),
            Node::new(lab.add_host("node3", "10.88.0.3")?, bin),
        ];
        let client = lab.add_client("client", "10.88.0.100")?;
        let mut addrs = vec!["10.88.0.100".to_string()];
        for i in 0..sources {
            let addr = format!("10.88.0.{}", FIRST_SOURCE + i);
            client.run_ok(["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            addrs.push(addr);
        }
        let hosts: Vec<&Host> = nodes.iter().map(Node::host).collect();
        config.write(&hosts)?;
        share_cluster_key(&nodes.iter().collect::<Vec<_>>())?;
        let mut farm = Farm {
            nodes,
            client,
            config,
            sources: addrs,
            lab,
        };
        for node in &mut farm.nodes {
            node.start_daemon()?;
        }
        let module = farm.config.module.clone();
        for node in &mut farm.nodes {
            node.wait_answer(&module)?;
        }
        Ok(farm)
    }

    pub fn module(&self) -> &str {
        &self.config.module
    }

    /// `hakit <verb> -m <module>` on node `i`.
    pub fn hakit(&self, i: usize, verb: &str) -> Result<String> {
        self.nodes[i].hakit(&[verb, "-m", self.module()])
    }

    /// `hakit state -m <module> -v` on node `i`.
    pub fn verbose_state(&self, i: usize) -> Result<String> {
        self.nodes[i].hakit(&["state", "-m", self.module(), "-v"])
    }

    /// Whether node `i` is UP (`state -lq` exits 2).
    pub fn is_up(&self, i: usize) -> Result<bool> {
        Ok(self.nodes[i].state(self.module())? == State::Alone)
    }

    /// Starts the module on every node.
    pub fn start_all(&self) -> Result<()> {
        for i in 0..3 {
            self.hakit(i, "start")?;
        }
        Ok(())
    }

    /// Waits until every node of `members` (indexes) is UP and enforces the view of exactly
    /// those members.
    pub fn wait_view(&self, members: &[usize]) -> Result<()> {
        let names: Vec<&str> = members.iter().map(|&i| self.nodes[i].name()).collect();
        let want = format!("view          {{{}}}", names.join(","));
        for &i in members {
            wait_until(
                &format!("{} to enforce {want:?}", self.nodes[i].name()),
                DEADLINE,
                || {
                    let v = self.verbose_state(i)?;
                    if v.contains("state         UP") && v.contains(&want) {
                        Ok(true)
                    } else {
                        Err(anyhow!("{v}"))
                    }
                },
            )?;
        }
        Ok(())
    }

    /// Opens `count` connections to the VIP one after the other, from the client's addresses
    /// in turn, each read for its greeting and closed.
    pub fn connect(&self, count: usize) -> Result<Vec<Answer>> {
        let script = r#"
import socket, sys
vip, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sources = sys.argv[4].split(",")
for i in range(count):
    src = sources[i % len(sources)]
    s = socket.socket()
    s.settimeout(5)
    try:
        s.bind((src, 0))
        s.connect((vip, port))
        line = s.makefile().readline().strip() or "ERROR empty"
        print(src, s.getsockname()[1], line, flush=True)
    except Exception as e:
        print(src, 0, "ERROR", type(e).__name__, flush=True)
    finally:
        s.close()
"#;
        let out = self.client.run_ok([
            "python3",
            "-c",
            script,
            &self.config.vip.to_string(),
            &self.config.port.to_string(),
            &count.to_string(),
            &self.sources.join(","),
        ])?;
        let answers = parse_answers(&out, "")?;
        if answers.len() != count {
            bail!("{} answers for {count} connections:\n{out}", answers.len());
        }
        Ok(answers)
    }

    /// Opens `count` connections and keeps them open; [`Farm::release`] then sends a line on
    /// each and reads who answers.
    pub fn hold(&self, count: usize, name: &str) -> Result<(Held, Vec<Answer>)> {
        let go = self.lab_file(&format!("{name}.go"))?;
        let script = r#"
import os, socket, sys, time
vip, port, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
sources = sys.argv[4].split(",")
conns = []
for i in range(count):
    src = sources[i % len(sources)]
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    s.connect((vip, port))
    f = s.makefile("rw")
    print("OPEN", src, s.getsockname()[1], f.readline().strip(), flush=True)
    conns.append((src, s, f))
print("HELD", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
for src, s, f in conns:
    try:
        f.write("again\n")
        f.flush()
        line = f.readline().strip() or "ERROR closed"
        print("AGAIN", src, s.getsockname()[1], line, flush=True)
    except Exception as e:
        print("AGAIN", src, s.getsockname()[1], "ERROR", type(e).__name__, flush=True)
print("DONE", flush=True)
"#;
        let log = format!("{name}.out");
        let child = self.client.spawn(
            [
                "python3",
                "-c",
                script,
                &self.config.vip.to_string(),
                &self.config.port.to_string(),
                &count.to_string(),
                &self.sources.join(","),
                &go.to_string_lossy(),
            ],
            &log,
        )?;
        let output = self.client.output_file(&log)?;
        let mut held = Held { child, output, go };
        wait_until("the held connections to open", DEADLINE, || {
            if let Some(status) = held.child.try_wait()? {
                return Err(crate::wait::abort(format!(
                    "the client exited ({status}): {}",
                    fs::read_to_string(&held.output).unwrap_or_default()
                )));
            }
            Ok(fs::read_to_string(&held.output)?.contains("HELD"))
        })?;
        let opened = parse_answers(&fs::read_to_string(&held.output)?, "OPEN ")?;
        Ok((held, opened))
    }

    /// Sends a line on every held connection; who answered each (or the error).
    pub fn release(&self, mut held: Held) -> Result<Vec<Answer>> {
        fs::write(&held.go, "go").context("creating the go file")?;
        wait_until("the held connections to answer again", DEADLINE, || {
            Ok(fs::read_to_string(&held.output)?.contains("DONE"))
        })?;
        let _ = held.child.wait();
        parse_answers(&fs::read_to_string(&held.output)?, "AGAIN ")
    }

    /// A path in the lab's folder (shared by the client, which has no private files).
    fn lab_file(&self, name: &str) -> Result<PathBuf> {
        let dir = self.client.output_file("x")?;
        let dir = dir.parent().context("the client's output folder")?;
        Ok(dir.join(name))
    }

    pub fn module_log(&self, i: usize) -> Result<String> {
        self.nodes[i]
            .host()
            .read_file(format!("/var/log/hakit/{}/module.log", self.module()))
    }

    /// The tails of every node's module log and daemon output.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let log = self
                .module_log(i)
                .unwrap_or_else(|e| format!("(none: {e:#})"));
            let daemon = node
                .daemon_log()
                .and_then(|p| fs::read_to_string(&p).context("reading the daemon output"))
                .unwrap_or_else(|e| format!("(none: {e:#})"));
            let name = node.name();
            text.push_str(&format!(
                "--- {name} module.log:\n{}\n--- {name} daemon output:\n{}\n",
                tail(&log),
                tail(&daemon)
            ));
        }
        text
    }

    /// Runs a scenario; on failure the error carries every node's logs.
    pub fn scenario(&mut self, body: impl FnOnce(&mut Farm) -> Result<()>) -> Result<()> {
        body(self).map_err(|e| anyhow!("{e:#}\n{}", self.logs()))
    }
}

/// Connections per answering node; an error if any connection failed or got something else
/// than a node name.
pub fn shares(answers: &[Answer]) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for a in answers {
        if !a.answer.starts_with("node") || a.answer.contains(' ') {
            bail!(
                "connection from {}:{} got {:?} instead of one node's greeting",
                a.source,
                a.port,
                a.answer
            );
        }
        *counts.entry(a.answer.clone()).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Lines `<prefix><source> <port> <answer...>`.
fn parse_answers(text: &str, prefix: &str) -> Result<Vec<Answer>> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter(|l| !prefix.is_empty() || l.split_whitespace().count() >= 3)
        .map(|l| {
            let mut words = l.splitn(3, ' ');
            let (Some(source), Some(port), Some(answer)) =
                (words.next(), words.next(), words.next())
            else {
                bail!("unexpected client output line {l:?}");
            };
            Ok(Answer {
                source: source.to_string(),
                port: port.parse().with_context(|| format!("port in {l:?}"))?,
                answer: answer.trim().to_string(),
            })
        })
        .collect()
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}
