//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use hakit::config::Roots;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hakit",
    version,
    about = "High availability for Linux applications: mirror modules"
)]
pub struct Cli {
    #[command(flatten)]
    pub roots: RootArgs,
    #[command(subcommand)]
    pub command: Verb,
}

#[derive(Debug, Args)]
pub struct RootArgs {
    /// Configuration root (cluster.xml, cluster.key, modules/).
    #[arg(
        long,
        env = "HAKIT_CONF_ROOT",
        default_value = "/etc/hakit",
        global = true
    )]
    pub conf_root: PathBuf,
    /// State root (persisted data generations, control socket).
    #[arg(
        long,
        env = "HAKIT_STATE_ROOT",
        default_value = "/var/lib/hakit",
        global = true
    )]
    pub state_root: PathBuf,
    /// Log root (module.log and application.log of each module).
    #[arg(
        long,
        env = "HAKIT_LOG_ROOT",
        default_value = "/var/log/hakit",
        global = true
    )]
    pub log_root: PathBuf,
}

impl RootArgs {
    pub fn roots(&self) -> Roots {
        Roots {
            conf: self.conf_root.clone(),
            state: self.state_root.clone(),
            log: self.log_root.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ModuleArg {
    /// The module.
    #[arg(short = 'm', long = "module")]
    pub module: String,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Run the node daemon in the foreground (all modules of this node).
    Daemon {
        /// This node's name in cluster.xml (default: found from the local addresses).
        #[arg(long, env = "HAKIT_NODE")]
        node: Option<String>,
        /// Address of the HTTP server (health URL and JSON state).
        #[arg(long, env = "HAKIT_HTTP", default_value = "0.0.0.0:9010")]
        http: SocketAddr,
    },
    /// Start the module; it becomes PRIM, SECOND or ALONE as the cluster allows.
    Start(ModuleArg),
    /// Stop the module (the peer takes over if it is SECOND).
    Stop(ModuleArg),
    /// Restart the application here (stop script then start script).
    Restart(ModuleArg),
    /// Stop the module, let the peer take over, then start again.
    Stopstart(ModuleArg),
    /// Move the primary role to the other node.
    Swap(ModuleArg),
    /// Start as primary: this node's data is the reference (refused if it may be stale).
    Prim(ModuleArg),
    /// Start as secondary: never become primary on its own.
    Second(ModuleArg),
    /// Start as primary even if this node may have missed writes.
    Primforce(ModuleArg),
    /// Show the state of one module or of all.
    State {
        #[arg(short = 'm', long = "module")]
        module: Option<String>,
        /// Details: reason, data generations, peer, checkers.
        #[arg(short = 'v')]
        verbose: bool,
        /// One line per module.
        #[arg(short = 'l')]
        line: bool,
        /// Print nothing; exit with the state: STOP 0, WAIT 1, ALONE 2, PRIM 3, SECOND 4.
        #[arg(short = 'q', requires = "module")]
        quiet: bool,
    },
    /// Print the end of the module log.
    Log {
        #[arg(short = 'm', long = "module")]
        module: String,
        /// How many lines.
        #[arg(short = 'n', default_value_t = 100)]
        lines: usize,
    },
    /// Write an information line into the module log (for scripts).
    Printi(Print),
    /// Write an error line into the module log (for scripts).
    Printe(Print),
    /// What a SECOND returning now would receive (from this node's change journal).
    Rfsdiff(ModuleArg),
    /// Compare both replicas (run on the primary): differences in content (by block hash)
    /// and metadata; exit 0 identical, 1 different, 2 no SECOND to compare with.
    Rfsverify(ModuleArg),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigVerb),
    /// Turn automatic failover on or off for a module (until the daemon restarts).
    Failover {
        #[arg(value_enum)]
        state: OnOff,
        #[arg(short = 'm', long = "module")]
        module: String,
    },
    /// Cluster-wide tools.
    #[command(subcommand)]
    Cluster(ClusterVerb),
    /// Internal: the process that releases what a killed daemon held.
    #[command(hide = true)]
    Guardian {
        #[arg(long)]
        node: String,
    },
}

#[derive(Debug, Args)]
pub struct Print {
    /// The module (scripts get it in HAKIT_MODULE).
    #[arg(short = 'm', long = "module", env = "HAKIT_MODULE")]
    pub module: String,
    /// The message.
    #[arg(required = true)]
    pub message: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigVerb {
    /// Validate cluster.xml and every module's userconfig.xml without touching anything.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum ClusterVerb {
    /// Create the cluster key (copy the same file to every node).
    Genkey {
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}
