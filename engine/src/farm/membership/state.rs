//! The states a farm module shows to administrators, in the model product's terms.

use serde::{Deserialize, Serialize};
use std::fmt;

/// STOP, WAIT, UP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FarmState {
    /// Not started by the administrator (or stopped): accepts no traffic.
    Stop,
    /// Started, but accepts no traffic: a checker fails, or no view has been agreed yet.
    Wait,
    /// Member of an agreed view, its share of the buckets installed (possibly 0 with power 0).
    /// Stays UP while a new view is being agreed: it keeps serving the installed table.
    Up,
}

impl FarmState {
    /// `hakit state -lq` exit code: STOP 0, WAIT 1, UP 2.
    pub fn exit_code(self) -> i32 {
        match self {
            FarmState::Stop => 0,
            FarmState::Wait => 1,
            FarmState::Up => 2,
        }
    }
}

impl fmt::Display for FarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FarmState::Stop => "STOP",
            FarmState::Wait => "WAIT",
            FarmState::Up => "UP",
        })
    }
}
