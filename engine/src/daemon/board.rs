//! The status board: the latest state of every module on this node, written by the module
//! drivers, read by the control socket and the HTTP server.

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
}

#[derive(Debug, Clone, Default)]
pub struct Board {
    inner: Arc<RwLock<BTreeMap<String, ModuleView>>>,
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
