//! The validated configuration model: every default filled in, every reference checked.
//! Parsers in `cluster_xml` and `userconfig_xml` produce these; the rest of the engine only
//! ever sees these types.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `/etc/hakit/cluster.xml`: the nodes and their addresses on each network ("lan").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub lans: Vec<Lan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lan {
    pub name: String,
    pub nodes: Vec<ClusterNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub name: String,
    pub addr: IpAddr,
}

impl Cluster {
    /// Node names in the order of the first lan (every lan lists the same nodes).
    pub fn node_names(&self) -> Vec<&str> {
        self.lans
            .first()
            .map(|lan| lan.nodes.iter().map(|n| n.name.as_str()).collect())
            .unwrap_or_default()
    }

    pub fn lan(&self, name: &str) -> Option<&Lan> {
        self.lans.iter().find(|l| l.name == name)
    }

    /// Address of `node` on network `lan`.
    pub fn addr(&self, lan: &str, node: &str) -> Option<IpAddr> {
        self.lan(lan)?
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.addr)
    }
}

/// One module: `/etc/hakit/modules/<name>/conf/userconfig.xml` plus where its files live.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub name: String,
    /// `<service id=...>` (hakit extension, default 1): selects the module's ports
    /// (heartbeat UDP 8888+id-1, replication TCP 5600+4(id-1)) as the model product does.
    pub id: u16,
    pub mode: Mode,
    pub failover: bool,
    /// Mirror only: a farm module rejects `defaultprim` and keeps [`DefaultPrim::Alone`].
    pub defaultprim: DefaultPrim,
    /// `splitbrain_winner` (hakit extension): whose data a healed split brain keeps.
    pub splitbrain_winner: SplitBrainWinner,
    /// Local restarts allowed within `loop_interval` before a checker escalates to stopstart.
    pub maxloop: u32,
    pub loop_interval: Duration,
    /// Mirror heartbeat. A farm module has no `<heart>` (its heartbeat is `<farm>`): this is
    /// then the default heart, which nothing uses.
    pub heart: Heart,
    /// Mirror VIPs (`where="one_side_alias"`). Always empty for a farm module, whose VIPs are
    /// in [`Farm::vips`].
    pub vips: Vec<Vip>,
    pub errd: Errd,
    pub checks: Vec<Check>,
    pub splitbrain: Option<SplitBrain>,
    /// Always `None` for a farm module (it replicates nothing).
    pub rfs: Option<Rfs>,
    /// `Some` exactly when `mode` is [`Mode::Farm`].
    pub farm: Option<Farm>,
    pub user: User,
    pub paths: ModulePaths,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Two nodes, one primary, data replicated.
    Mirror,
    /// Two or more nodes all running the application behind a load-balanced VIP.
    Farm,
}

/// A farm module's `<farm>` and the farm part of its `<vip>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Farm {
    /// `<farm pulse>` (default 100 ms; bare numbers are milliseconds).
    pub pulse: Duration,
    /// `<farm mlost_count>` (default 20): pulses without a heartbeat before a member is lost.
    pub mlost_count: u32,
    /// `<farm slost_count>` (default 10): the same for a peer outside the installed view.
    pub slost_count: u32,
    /// `<farm><lan name/>`: heartbeat networks, lan names of cluster.xml (default: every lan,
    /// in cluster.xml's order).
    pub lans: Vec<String>,
    /// Every `<virtual_interface type="vmac_invisible"><virtual_addr where="alias"/>`.
    pub vips: Vec<FarmVip>,
    /// `<loadbalancing_list><group>`s; empty when there is no `<vip>` (a cloud load balancer
    /// in front), otherwise at least one.
    pub groups: Vec<LbGroup>,
}

/// A farm VIP, configured on every node, answered through a virtual MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarmVip {
    pub addr: IpAddr,
    /// `<virtual_interface virtual_mac>` if given; otherwise `5A:FE` and the VIP's four bytes
    /// (the last four of an IPv6 address).
    pub virtual_mac: [u8; 6],
    /// `<interface name=...>` if given; otherwise the interface whose subnet holds `addr`.
    pub interface: Option<String>,
}

/// `<group name><cluster><host name power/></cluster><rule .../></group>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbGroup {
    pub name: String,
    /// `(node, power)`: nodes of cluster.xml, each once; power is a relative weight, 0 = a
    /// member that receives no traffic. Without `<cluster>`: every node with power 1.
    pub hosts: Vec<(String, u32)>,
    /// At least one; no two rules of the module share a port and protocol.
    pub rules: Vec<LbRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbRule {
    /// `None`: every port (`port="*"` or no `port`).
    pub port: Option<u16>,
    pub proto: LbProto,
    pub filter: LbFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbProto {
    Tcp,
    Udp,
}

/// What the load-balancing hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbFilter {
    /// `on_addr`: the client address (session affinity).
    OnAddr,
    /// `on_port`: the client address and port.
    OnPort,
}

/// After a split brain (both nodes served), whose data is kept; the other side's changes
/// are saved aside in its quarantine folder before it takes the winner's copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SplitBrainWinner {
    /// The side that served longest (when both still serve), or the later data generation
    /// (when both restart): the side that most likely holds the most work.
    #[default]
    Longest,
    /// This node's side always wins.
    Node(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultPrim {
    /// No preference (`defaultprim="alone"`, the default).
    Alone,
    /// This node should be primary whenever its data is up to date (automatic swap-back).
    Node(String),
    /// Prefer the node that was primary last.
    LastPrim,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heart {
    pub pulse: Duration,
    pub timeout: Duration,
    /// One per network (lan name from cluster.xml); the peer is lost only when all are silent.
    pub heartbeats: Vec<HeartbeatNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatNet {
    pub lan: String,
    /// `ident="flow"` marks the network that also carries replication.
    pub ident: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    /// `<interface name=...>` if given; otherwise the interface whose subnet holds `addr`.
    pub interface: Option<String>,
    /// `arpreroute="on"`: send gratuitous ARP after adding the address.
    pub arpreroute: bool,
    /// `check="on"`: watch that the interface stays up.
    pub check: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errd {
    pub polltimer: Duration,
    pub procs: Vec<ProcCheck>,
}

/// `<proc name atleast atmax action class/>`: a process the module expects to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCheck {
    /// Matched against the process name (`/proc/<pid>/comm`) or, if it holds a `/` or space,
    /// against the command line.
    pub name: String,
    pub atleast: u32,
    /// `None` is the model product's `-1`: no upper bound.
    pub atmax: Option<u32>,
    pub action: CheckAction,
    pub class: CheckClass,
}

/// What to do when a checker fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckAction {
    /// stop_prim + start_prim here; after `maxloop` within `loop_interval`, stopstart.
    Restart,
    /// Stop here and start again (the peer takes over meanwhile): a failover.
    Stopstart,
    /// Stop the module here.
    Stop,
    /// Go to WAIT until the checker succeeds again.
    Wait,
}

/// When a checker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckClass {
    /// Only on the node serving the application (PRIM or ALONE).
    Prim,
    /// On every started node.
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ident: String,
    pub kind: CheckKind,
    pub when: CheckClass,
    pub action: CheckAction,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `<tcp><to addr port/></tcp>`: a TCP connect must succeed.
    Tcp { addr: IpAddr, port: u16 },
    /// `<ping><to addr/></ping>`: the address must answer ICMP echo.
    Ping { addr: IpAddr },
    /// `<custom exec arg/>`: a program that must keep running (exits = failure).
    Custom { exec: PathBuf, args: Vec<String> },
}

/// `<splitbrain ident exec="ping" arg="w1 w2"/>`: on loss of every heartbeat, a node that
/// reaches none of the witnesses goes to WAIT instead of serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitBrain {
    pub ident: String,
    pub witnesses: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfs {
    pub ack: AckLevel,
    /// How long the primary waits for the peer's acknowledgement before declaring the
    /// stream broken; `None`: 10 s or the heartbeat timeout if longer (a dead peer is found
    /// by the heartbeats, which end the stream at once).
    pub sendtimeout: Option<Duration>,
    pub nbrei: u32,
    pub ruzone_blocksize: u64,
    /// Bytes per second; `None` = unlimited.
    pub reiallowedbw: Option<u64>,
    pub replicated: Vec<Replicated>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckLevel {
    /// The peer has the operation in memory.
    Second,
    /// The peer has applied the operation to its file system.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicated {
    pub dir: PathBuf,
    pub read_only_on_second: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub nicestoptimeout: Duration,
    pub forcestoptimeout: Duration,
}

/// Where a module's files are, after the roots' overrides are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePaths {
    /// `<conf_root>/modules/<name>`
    pub module_dir: PathBuf,
    /// `<module_dir>/bin`: prestart, start_prim, stop_prim, ...
    pub bin_dir: PathBuf,
    /// `<state_root>/<name>`: persisted data generations.
    pub state_dir: PathBuf,
    /// `<log_root>/<name>`: module.log and application.log.
    pub log_dir: PathBuf,
}
