//! Requests and responses on the control socket.

use crate::daemon::board::{FarmView, ModuleView};
use crate::daemon::data::VerifyReport;
use crate::mirror::fsm::Command;
use serde::{Deserialize, Serialize};

/// A request is at most this long; longer ones are refused.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// An administrator command for one module.
    Command { module: String, command: Command },
    /// The state of one module, or of all.
    State { module: Option<String> },
    /// Compare both replicas of a module's replicated folders (`hakit rfsverify`).
    Verify { module: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// The command was accepted; what happens now.
    Done { message: String },
    /// The command was refused; why.
    Refused { message: String },
    State {
        modules: Vec<ModuleView>,
        /// Farm modules (absent in answers of older daemons).
        #[serde(default)]
        farms: Vec<FarmView>,
    },
    /// The replicas were compared.
    Verified(VerifyReport),
    /// The request itself was wrong (unknown module, bad JSON, ...).
    Error { message: String },
}
