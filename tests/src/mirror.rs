//! Writing a mirror module's configuration into lab nodes: the demo module by default, with the
//! knobs tests vary (heartbeat pulse, timeout and networks, failover, defaultprim, extra XML for
//! checkers).

use std::fs;
use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};

use crate::host::Host;
use crate::node::Node;

/// The cluster key `hakit cluster genkey` writes.
const KEY_FILE: &str = "/etc/hakit/cluster.key";

/// A mirror module as the lab writes it: `userconfig.xml` plus `start_prim`/`stop_prim` scripts
/// that run a tiny web server on [`MirrorConfig::app_port`] answering "served by <node>".
/// Values are inserted into the XML verbatim.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    pub module: String,
    /// Heartbeat period, e.g. `100ms`.
    pub pulse: String,
    /// Heartbeat loss detection time, e.g. `1s`.
    pub timeout: String,
    /// The lans heartbeats go on, one `<heartbeat name>` each: lab networks the nodes are on
    /// (`default`, or a network of [`crate::Lab::add_network`]).
    pub heartbeats: Vec<String>,
    pub failover: bool,
    /// `alone`, or a node name.
    pub defaultprim: String,
    pub vip: Ipv4Addr,
    pub app_port: u16,
    /// Inserted as is inside `<service>` (e.g. `<check>...</check>` for checkers).
    pub extra_xml: String,
    /// Replicated directories (`<rfs><replicated dir/>`); none: no `<rfs>`.
    pub rfs_dirs: Vec<String>,
    /// `<rfs async>`: `second` or `none`.
    pub rfs_async: String,
    /// More attributes of `<rfs>` as written in XML, e.g. `reiallowedbw="1024"`.
    pub rfs_attrs: String,
}

impl Default for MirrorConfig {
    /// The demo: module `demo`, pulse 100 ms, timeout 1 s, heartbeats on lan `default`,
    /// failover on, defaultprim alone,
    /// VIP 10.88.0.10, web server on port 8080.
    fn default() -> Self {
        MirrorConfig {
            module: "demo".into(),
            pulse: "100ms".into(),
            timeout: "1s".into(),
            heartbeats: vec!["default".into()],
            failover: true,
            defaultprim: "alone".into(),
            vip: Ipv4Addr::new(10, 88, 0, 10),
            app_port: 8080,
            extra_xml: String::new(),
            rfs_dirs: Vec::new(),
            rfs_async: "second".into(),
            rfs_attrs: String::new(),
        }
    }
}

impl MirrorConfig {
    pub fn userconfig_xml(&self) -> String {
        let MirrorConfig {
            pulse,
            timeout,
            defaultprim,
            vip,
            extra_xml,
            ..
        } = self;
        let failover = if self.failover { "on" } else { "off" };
        let heartbeats: String = self
            .heartbeats
            .iter()
            .map(|lan| format!(r#"<heartbeat name="{lan}"/>"#))
            .collect();
        let rfs = if self.rfs_dirs.is_empty() {
            String::new()
        } else {
            let dirs: String = self
                .rfs_dirs
                .iter()
                .map(|d| format!(r#"<replicated dir="{d}" mode="read_only"/>"#))
                .collect();
            format!(
                "\n  <rfs async=\"{}\" {}>{dirs}</rfs>",
                self.rfs_async, self.rfs_attrs
            )
        };
        format!(
            r#"<safe><service mode="mirror" defaultprim="{defaultprim}" failover="{failover}" maxloop="3" loop_interval="24h">
  <heart pulse="{pulse}" timeout="{timeout}">{heartbeats}</heart>
  <vip><interface_list><interface check="on" arpreroute="on"><real_interface><virtual_addr addr="{vip}" where="one_side_alias"/></real_interface></interface></interface_list></vip>
  <user nicestoptimeout="5s" forcestoptimeout="5s"/>{rfs}{extra_xml}
</service></safe>
"#
        )
    }

    /// Writes `cluster.xml` (naming `hosts`, see [`cluster_xml`]), the module's `userconfig.xml`
    /// and its scripts into every host.
    pub fn write(&self, hosts: &[&Host]) -> Result<()> {
        let cluster = cluster_xml(hosts)?;
        let module_dir = format!("/etc/hakit/modules/{}", self.module);
        for host in hosts {
            host.write_file("/etc/hakit/cluster.xml", &cluster, 0o644)?;
            host.write_file(
                format!("{module_dir}/conf/userconfig.xml"),
                self.userconfig_xml(),
                0o644,
            )?;
            host.write_file(
                format!("{module_dir}/bin/start_prim"),
                self.start_prim(),
                0o755,
            )?;
            host.write_file(
                format!("{module_dir}/bin/stop_prim"),
                self.stop_prim(),
                0o755,
            )?;
        }
        Ok(())
    }

    fn pid_file(&self) -> String {
        format!("/var/lib/hakit/{}-app.pid", self.module)
    }

    fn start_prim(&self) -> String {
        let (pid_file, port, module) = (self.pid_file(), self.app_port, &self.module);
        format!(
            r#"#!/bin/sh
# Starts the {module} application: a web server naming the node that serves it.
# hakit gives HAKIT_NODE, HAKIT_MODULE and HAKIT_ROLE.
set -eu
pid_file={pid_file}
if [ -f "$pid_file" ] && tr '\0' ' ' 2>/dev/null < "/proc/$(cat "$pid_file")/cmdline" | grep -q http.server; then
  exit 0
fi
mkdir -p /srv/app/www
echo "served by ${{HAKIT_NODE:-unknown}}" > /srv/app/www/index.html
/usr/bin/python3 -m http.server {port} --directory /srv/app/www \
  < /dev/null >> /var/log/hakit/{module}-app.log 2>&1 &
echo $! > "$pid_file"
"#
        )
    }

    fn stop_prim(&self) -> String {
        let (pid_file, module) = (self.pid_file(), &self.module);
        format!(
            r#"#!/bin/sh
# Stops the {module} application started by start_prim; idempotent.
pid_file={pid_file}
[ -f "$pid_file" ] || exit 0
pid=$(cat "$pid_file")
if tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q http.server; then
  kill "$pid" 2>/dev/null || true
  i=0
  # Gone, or a zombie waiting for its reaper (the process has stopped serving either way).
  while kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] \
    && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$pid" 2>/dev/null || true
fi
rm -f "$pid_file"
"#
        )
    }
}

/// `cluster.xml` with one lan per network of the first host (`default` first, then those it
/// was attached to), naming every host at its address on that network; every host must be on
/// every such network.
pub fn cluster_xml(hosts: &[&Host]) -> Result<String> {
    let Some(first) = hosts.first() else {
        bail!("cluster.xml needs at least one host");
    };
    let mut lans = String::new();
    for (network, _) in first.links() {
        let mut nodes = String::new();
        for host in hosts {
            let ip = host
                .ip_on(&network)
                .context("every node of cluster.xml needs an address on every lan")?;
            nodes.push_str(&format!(r#"<node name="{}" addr="{ip}"/>"#, host.name()));
        }
        lans.push_str(&format!(r#"<lan name="{}">{nodes}</lan>"#, network.name()));
    }
    Ok(format!("<cluster><lans>{lans}</lans></cluster>\n"))
}

/// `hakit cluster genkey` on the first node, then the key file copied to the others.
pub fn share_cluster_key(nodes: &[&Node]) -> Result<()> {
    let Some((first, others)) = nodes.split_first() else {
        return Ok(());
    };
    first.hakit(&["cluster", "genkey"])?;
    let source = first.host().path(KEY_FILE)?;
    if !source.is_file() {
        bail!(
            "`hakit cluster genkey` on {} did not write {KEY_FILE}",
            first.name()
        );
    }
    for node in others {
        let target = node.host().path(KEY_FILE)?;
        fs::copy(&source, &target).with_context(|| {
            format!(
                "copying the cluster key of {} to {}",
                first.name(),
                node.name()
            )
        })?;
    }
    Ok(())
}
