//! The status board: the latest state of every module on this node, written by the module
//! drivers, read by the control socket and the HTTP server. Mirror and farm modules are
//! listed apart: their states and details differ.

use crate::farm::membership::{self, FarmState};
use crate::mirror::fsm::Status;
use crate::mirror::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One module as the outside world sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleView {
    pub module: String,
    pub role: Role,
    /// Extra details shown by `state -v`: ack level, replication figures (later), ...
    pub status: Status,
    /// Heartbeats dropped because they failed authentication or replay checks.
    pub rejected_heartbeats: u64,
    /// Replicated directories and the stream's figures (modules with `<rfs>`).
    #[serde(default)]
    pub data: Option<super::data::DataView>,
}

/// One farm module as the outside world sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FarmView {
    pub module: String,
    pub state: FarmState,
    /// Members, shares ("node1 85/256"), peers and failing checkers.
    pub status: membership::Status,
    /// `start_both` or `stop_both` while it runs.
    pub running_script: Option<String>,
    /// "XDP Generic mode on eth0", or why the data plane cannot run here.
    pub data_plane: String,
    /// This node answers ARP for the VIP.
    pub arp_responder: bool,
    /// XDP packet counters since the filter was attached: (accepted, dropped, passed).
    pub packets: Option<(u64, u64, u64)>,
    /// Heartbeats dropped because they failed authentication or replay checks.
    pub rejected_heartbeats: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Board {
    inner: Arc<RwLock<BTreeMap<String, ModuleView>>>,
    farms: Arc<RwLock<BTreeMap<String, FarmView>>>,
}

impl Board {
    pub fn publish(&self, view: ModuleView) {
        // A poisoned lock only means a writer panicked mid-update; the map is still usable.
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(view.module.clone(), view);
    }

    pub fn get(&self, module: &str) -> Option<ModuleView> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(module).cloned()
    }

    pub fn all(&self) -> Vec<ModuleView> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }
}

impl Board {
    pub fn publish_farm(&self, view: FarmView) {
        let mut map = self.farms.write().unwrap_or_else(|e| e.into_inner());
        map.insert(view.module.clone(), view);
    }

    pub fn farm(&self, module: &str) -> Option<FarmView> {
        let map = self.farms.read().unwrap_or_else(|e| e.into_inner());
        map.get(module).cloned()
    }

    pub fn all_farms(&self) -> Vec<FarmView> {
        let map = self.farms.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }
}
