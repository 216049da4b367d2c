//! The part of a farm module's configuration the membership decisions depend on.

use crate::farm::table::{BucketTable, Member, TableError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FarmConfig {
    /// This node's name in the farm group.
    pub me: String,
    /// The farm group: every `<host name power>`, this node included. Every node must have
    /// the same group, powers and bucket count (the view id covers them, so nodes that differ
    /// never agree, and say so).
    pub hosts: Vec<Member>,
    /// Heartbeat networks (`<farm><lan name>`), in the order the driver numbers them.
    pub networks: Vec<String>,
    /// `<farm pulse>`: one heartbeat per pulse; the driver ticks a few times per pulse.
    pub pulse: Duration,
    /// `<farm mlost_count>`: a member of the installed view is lost after this many pulses
    /// without a heartbeat from it on any network.
    pub mlost_count: u32,
    /// `<farm slost_count>`: a peer outside the installed view (joining, or while this node
    /// has no table) is lost after this many pulses without a heartbeat.
    pub slost_count: u32,
    /// Buckets in the table (a power of two, at least 256).
    pub buckets: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FarmConfigError {
    #[error("this node ({0}) is not a host of the farm group")]
    NotAHost(String),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("the farm pulse must be longer than 0")]
    ZeroPulse,
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    #[error("the farm has no heartbeat network (<lan>)")]
    NoNetwork,
}

impl FarmConfig {
    /// The model product's timing: pulse 100 ms, mlost_count 20, slost_count 10, 256 buckets.
    pub fn with_defaults(me: &str, hosts: Vec<Member>, networks: Vec<String>) -> FarmConfig {
        FarmConfig {
            me: me.to_string(),
            hosts,
            networks,
            pulse: Duration::from_millis(100),
            mlost_count: 20,
            slost_count: 10,
            buckets: crate::farm::table::DEFAULT_BUCKETS,
        }
    }

    pub fn validate(&self) -> Result<(), FarmConfigError> {
        if !self.hosts.iter().any(|h| h.name == self.me) {
            return Err(FarmConfigError::NotAHost(self.me.clone()));
        }
        BucketTable::build(self.hosts.iter().cloned(), self.buckets)?;
        if self.pulse.is_zero() {
            return Err(FarmConfigError::ZeroPulse);
        }
        if self.mlost_count == 0 {
            return Err(FarmConfigError::ZeroCount("mlost_count"));
        }
        if self.slost_count == 0 {
            return Err(FarmConfigError::ZeroCount("slost_count"));
        }
        if self.networks.is_empty() {
            return Err(FarmConfigError::NoNetwork);
        }
        Ok(())
    }

    /// Silence after which a member of the installed view is lost (2 s by default).
    pub fn member_timeout(&self) -> Duration {
        self.pulse * self.mlost_count
    }

    /// Silence after which another peer is lost (1 s by default); also how long a node that
    /// starts listens for its peers before it may install a view on its own.
    pub fn joiner_timeout(&self) -> Duration {
        self.pulse * self.slost_count
    }

    pub fn power_of(&self, name: &str) -> Option<u32> {
        self.hosts.iter().find(|h| h.name == name).map(|h| h.power)
    }
}
