//! The states a mirror module shows to administrators, in the model product's terms.

use serde::{Deserialize, Serialize};
use std::fmt;

/// STOP, WAIT, ALONE, PRIM, SECOND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// Not started by the administrator (or stopped).
    Stop,
    /// Started, but not allowed to serve nor to be secondary yet.
    Wait,
    /// Serving the application without a synchronised peer.
    Alone,
    /// Serving the application with a peer that is SECOND.
    Prim,
    /// Receiving the primary's data; the application does not run here.
    Second,
}

impl Role {
    /// `hakit state -lq` exit code: STOP 0, WAIT 1, ALONE 2, PRIM 3, SECOND 4.
    pub fn exit_code(self) -> i32 {
        match self {
            Role::Stop => 0,
            Role::Wait => 1,
            Role::Alone => 2,
            Role::Prim => 3,
            Role::Second => 4,
        }
    }

    /// PRIM and ALONE run the application and hold the virtual IP.
    pub fn is_serving(self) -> bool {
        matches!(self, Role::Alone | Role::Prim)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Stop => "STOP",
            Role::Wait => "WAIT",
            Role::Alone => "ALONE",
            Role::Prim => "PRIM",
            Role::Second => "SECOND",
        })
    }
}

/// Whether a role is settled: Transient while scripts run or data is being resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Readiness {
    NotReady,
    Transient,
    Ready,
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Readiness::NotReady => "NotReady",
            Readiness::Transient => "Transient",
            Readiness::Ready => "Ready",
        })
    }
}
