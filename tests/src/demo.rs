//! The lab demo (`cargo xtask lab`): node1 and node2 run the `demo` mirror module, a client
//! reaches its web server through the VIP; node1's daemon is SIGKILLed, node2 takes over, and
//! node1's restarted daemon comes back as SECOND. Each step is printed with the time elapsed.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};

use crate::hakit::State;
use crate::host::Host;
use crate::lab::{Lab, WITNESS};
use crate::mirror::{MirrorConfig, share_cluster_key};

/// The demo application's replicated folder.
const DEMO_DATA: &str = "/srv/app/data";
use crate::node::Node;
use crate::wait::{DEADLINE, wait_until};

/// Lines of each daemon's output shown when the scenario fails.
const LOG_TAIL: usize = 15;

/// The demo's lab, set up and ready for [`Demo::scenario`]. Dropping it tears the lab down.
pub struct Demo {
    node1: Node,
    node2: Node,
    client: Host,
    config: MirrorConfig,
    bin: PathBuf,
    clock: Instant,
    /// Dropped after the nodes (fields drop in order).
    lab: Arc<Lab>,
}

impl Demo {
    /// Creates the lab (node1 10.88.0.1, node2 10.88.0.2, client 10.88.0.100), writes the demo
    /// module into both nodes, shares a cluster key and starts both daemons.
    pub fn setup(bin: &Path) -> Result<Demo> {
        let clock = Instant::now();
        let lab = Arc::new(Lab::new("demo")?);
        let node1 = Node::new(lab.add_host("node1", "10.88.0.1")?, bin);
        let node2 = Node::new(lab.add_host("node2", "10.88.0.2")?, bin);
        let client = lab.add_client("client", "10.88.0.100")?;
        let mut demo = Demo {
            node1,
            node2,
            client,
            config: MirrorConfig {
                rfs_dirs: vec![DEMO_DATA.to_string()],
                ..MirrorConfig::default()
            },
            bin: bin.to_path_buf(),
            clock,
            lab,
        };
        demo.step(format!(
            "lab {}: switch with witness {WITNESS}; node1 10.88.0.1, node2 10.88.0.2, client 10.88.0.100",
            demo.lab.prefix()
        ));
        demo.step(format!(
            "writing module {} into node1 and node2 (cluster.xml, userconfig.xml, start_prim, stop_prim)",
            demo.config.module
        ));
        demo.config.write(&[demo.node1.host(), demo.node2.host()])?;
        demo.step(format!(
            "node1: existing application data in {DEMO_DATA} (replicated in place)"
        ));
        demo.node1.host().run_ok([
            "sh",
            "-c",
            &format!(
                "mkdir -p {DEMO_DATA} && echo 'written before hakit' > {DEMO_DATA}/orders.txt"
            ),
        ])?;
        demo.step("node1: hakit cluster genkey; copying /etc/hakit/cluster.key to node2");
        share_cluster_key(&[&demo.node1, &demo.node2])?;
        demo.step("starting `hakit daemon` on node1 and node2");
        demo.node1.start_daemon()?;
        demo.node2.start_daemon()?;
        let module = demo.config.module.clone();
        demo.node1.wait_answer(&module)?;
        demo.node2.wait_answer(&module)?;
        Ok(demo)
    }

    /// The lab, e.g. to tear it down from a signal handler thread.
    pub fn lab(&self) -> &Arc<Lab> {
        &self.lab
    }

    /// The narrated failover scenario; an error says which step failed and what was seen.
    pub fn scenario(&mut self) -> Result<()> {
        let module = self.config.module.clone();
        let m = module.as_str();
        self.step(format!("node1: hakit prim -m {m}"));
        self.node1.hakit(&["prim", "-m", m])?;
        self.step(format!("node2: hakit second -m {m}"));
        self.node2.hakit(&["second", "-m", m])?;
        self.step("waiting for node1 PRIM and node2 SECOND Ready (in sync: it may take over)");
        self.node1.wait_state(m, State::Prim)?;
        self.node2.wait_ready(m, State::Second)?;
        self.step("node1 is PRIM, node2 is SECOND Ready");
        self.get_via_vip("node1")?;
        self.step(format!(
            "node1: the application appends to {DEMO_DATA}/orders.txt (on node2 before it returns)"
        ));
        self.node1.host().run_ok([
            "sh",
            "-c",
            &format!("echo 'order 1, acknowledged by node1' >> {DEMO_DATA}/orders.txt"),
        ])?;

        let pid = self.node1.daemon_pid().unwrap_or_default();
        self.step(format!("SIGKILL of node1's daemon (pid {pid})"));
        self.node1.kill_daemon()?;
        self.step("waiting for node2 to be ALONE");
        self.node2.wait_state(m, State::Alone)?;
        self.step("node2 is ALONE");
        self.get_via_vip("node2")?;
        let orders =
            self.node2
                .host()
                .run_ok(["sh", "-c", &format!("cat {DEMO_DATA}/orders.txt")])?;
        if !orders.contains("order 1") {
            bail!("node2 took over without the acknowledged order: {orders:?}");
        }
        self.step(format!(
            "node2 serves {DEMO_DATA}/orders.txt with the acknowledged order: {:?}",
            orders.trim()
        ));

        self.step("restarting node1's daemon");
        self.node1.start_daemon()?;
        if self.node1.wait_answer(m)? == State::Stop {
            self.step(format!(
                "node1's module is STOP after the restart: hakit start -m {m}"
            ));
            self.node1.hakit(&["start", "-m", m])?;
        }
        self.step("waiting for node1 SECOND and node2 PRIM");
        self.node1.wait_ready(m, State::Second)?;
        self.node2.wait_state(m, State::Prim)?;
        self.step("node1 is back as SECOND, node2 is PRIM");
        self.get_via_vip("node2")?;
        self.step("demo complete: failover and return worked");
        Ok(())
    }

    /// How to look around while the lab is kept up.
    pub fn how_to_explore(&self) -> String {
        let (n1, n2) = (self.node1.host(), self.node2.host());
        let bin = self.bin.display();
        let m = &self.config.module;
        format!(
            "The lab is up. From another terminal:\n  \
             nsenter -t {} -n -m -- bash                  # a shell on node1 (node2: -t {})\n  \
             nsenter -t {} -n -m -- {bin} state -m {m} -v\n  \
             ip netns exec {} curl http://{}:{}/\n  \
             node files: {} and {}",
            n1.pid(),
            n2.pid(),
            n1.pid(),
            self.client.netns(),
            self.config.vip,
            self.config.app_port,
            n1.root().display(),
            n2.root().display(),
        )
    }

    /// The last lines of both daemons' output, to explain a failure.
    pub fn daemon_logs(&self) -> String {
        let mut text = String::new();
        for node in [&self.node1, &self.node2] {
            let tail = node
                .daemon_log()
                .and_then(|path| {
                    let log = std::fs::read_to_string(&path)?;
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n    ");
                    Ok(format!("{}:\n    {tail}", path.display()))
                })
                .unwrap_or_else(|e| format!("(no log: {e:#})"));
            text.push_str(&format!("--- daemon of {}: {tail}\n", node.name()));
        }
        text
    }

    /// GET / through the VIP from the client, until the answer names `node`; prints it.
    fn get_via_vip(&self, node: &str) -> Result<()> {
        let (vip, port) = (self.config.vip, self.config.app_port);
        self.step(format!("client: GET http://{vip}:{port}/"));
        let want = format!("served by {node}");
        let mut answer = String::new();
        wait_until(&format!("the VIP to answer \"{want}\""), DEADLINE, || {
            answer = self.client.http_get(vip, port, "/")?.trim().to_string();
            if answer.contains(&want) {
                return Ok(true);
            }
            Err(anyhow!("answer {answer:?}"))
        })?;
        self.step(format!("client got: {answer}"));
        Ok(())
    }

    fn step(&self, text: impl Display) {
        println!("[{:>6.2}s] {text}", self.clock.elapsed().as_secs_f64());
    }
}
