//! The three roots hakit uses, each overridable so that several nodes can run on one machine.

use std::path::PathBuf;

/// Configuration, state and log roots (`/etc/hakit`, `/var/lib/hakit`, `/var/log/hakit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub conf: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            conf: PathBuf::from("/etc/hakit"),
            state: PathBuf::from("/var/lib/hakit"),
            log: PathBuf::from("/var/log/hakit"),
        }
    }
}

impl Roots {
    pub fn cluster_file(&self) -> PathBuf {
        self.conf.join("cluster.xml")
    }

    pub fn key_file(&self) -> PathBuf {
        self.conf.join("cluster.key")
    }

    pub fn modules_dir(&self) -> PathBuf {
        self.conf.join("modules")
    }

    /// The control socket the CLI uses to reach the local daemon.
    pub fn control_socket(&self) -> PathBuf {
        self.state.join("hakit.sock")
    }
}
