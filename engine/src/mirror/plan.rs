//! Steps the driver carries out one at a time, in order, reporting each back as done.

use super::data::{DataRecord, Generation};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What this node persists for a module; written before any step that depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeRecord {
    pub data: DataRecord,
    /// Started by the administrator and not stopped since: the module starts again when the
    /// daemon does.
    pub started: bool,
    /// As a node serving without its peer: the generation the peer held when they parted,
    /// from which this node's change journal brings it up to date. `None`: a returning peer
    /// is compared whole.
    #[serde(default)]
    pub incremental_base: Option<Generation>,
    /// The peer was the primary at `incremental_base` (this node took over from it): it may
    /// hold writes it applied but never had acknowledged, which its own change journal names
    /// and its return copies over again.
    #[serde(default)]
    pub base_from_primary: bool,
}

/// The module's scripts, in `<module>/bin/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Script {
    Prestart,
    StartPrim,
    StopPrim,
    StartSecond,
    StopSecond,
    Poststop,
}

impl Script {
    pub fn file_name(self) -> &'static str {
        match self {
            Script::Prestart => "prestart",
            Script::StartPrim => "start_prim",
            Script::StopPrim => "stop_prim",
            Script::StartSecond => "start_second",
            Script::StopSecond => "stop_second",
            Script::Poststop => "poststop",
        }
    }

    /// Stop scripts get the graceful-then-`force` treatment.
    pub fn is_stop(self) -> bool {
        matches!(self, Script::StopPrim | Script::StopSecond)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the record durably (before what depends on it).
    Persist(NodeRecord),
    Run(Script),
    /// Add every virtual IP and send gratuitous ARPs where configured.
    AddVips,
    DelVips,
    /// Put the replicated directories in this mode (only for modules with `<rfs>`).
    Data(DataMode),
    /// Before a node whose data diverged is overwritten by its peer's: save the files it
    /// changed (its change journal) outside the replicated directories, and list them.
    Quarantine,
    /// As SECOND: wait until the primary, at this data generation, has copied its data here.
    /// The state machine completes it itself from the primary's heartbeats; it is never
    /// handed to the driver.
    AwaitCopy {
        generation: Generation,
    },
}

impl Step {
    /// Whether a failure of this step must abort the rest of the plan.
    pub fn failure_aborts(&self) -> bool {
        matches!(
            self,
            Step::Persist(_)
                | Step::AddVips
                | Step::Data(DataMode::Serve | DataMode::Receive)
                | Step::Quarantine
                | Step::AwaitCopy { .. }
        )
    }
}

/// What the replicated directories are on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataMode {
    /// Not mounted: the directories are plain folders.
    #[default]
    Off,
    /// Mounted read-write for the application; every change goes to the peer when one
    /// replicates (PRIM, ALONE).
    Serve,
    /// Mounted read-only for applications while the primary's changes are applied underneath
    /// (SECOND).
    Receive,
}

/// A sequence of steps leading to a role.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub steps: VecDeque<Step>,
    /// The step handed to the driver and not reported yet.
    pub running: Option<Step>,
}
