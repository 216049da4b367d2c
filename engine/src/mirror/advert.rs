//! What a node tells its peer in every heartbeat about one module.

use super::data::DataRecord;
use super::role::{Readiness, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    /// Random per daemon start: a new value means the peer restarted and forgot its role.
    pub incarnation: u64,
    pub role: Role,
    pub readiness: Readiness,
    pub data: DataRecord,
    /// The sender was primary and has stopped the application to hand the role over (swap).
    pub yielding: bool,
    /// The sender is SECOND and the administrator asked for a swap.
    pub swap_request: bool,
    /// How long the sender has been serving (PRIM or ALONE), in milliseconds; 0 otherwise.
    pub serving_ms: u64,
    /// Started with `second`: it will not become primary on its own.
    pub join_only: bool,
    /// As SECOND: the id of this node's current attempt to join the primary (new each time).
    pub join_id: u64,
    /// As primary: the peer's `join_id` whose in-sync state it has durably recorded. A SECOND
    /// is Ready, and may take over, only once its current `join_id` is acknowledged.
    pub acked_join: u64,
    /// As primary: the peer's `join_id` whose replication stream is up, its copy complete.
    /// The SECOND records its data as consistent only then.
    #[serde(default)]
    pub copied_join: u64,
    /// As primary: the peer's `join_id` whose stream broke. That SECOND misses writes: it is
    /// not Ready and must not take over before copying again.
    #[serde(default)]
    pub broken_join: u64,
    /// As SECOND: the generation of the complete copy its current join attempt starts from.
    #[serde(default)]
    pub join_base: Option<super::data::Generation>,
    /// As primary copying to the SECOND: how far the copy got (filled by the data plane, not
    /// the state machine; shown by the SECOND).
    #[serde(default)]
    pub copy: Option<CopyFigures>,
    /// As SECOND: up to where the primary's stream is durable here (filled by the data
    /// plane): the primary then forgets its change journal's older epochs.
    #[serde(default)]
    pub durable: Option<DurablePoint>,
    /// The sender's clock when it sent this advert (milliseconds since its daemon started).
    pub sent_ms: u64,
    /// The latest `sent_ms` the sender received from the receiver, and the receiver's
    /// incarnation it belongs to: tells a primary which of its heartbeats the peer has seen,
    /// hence from when the peer may consider it lost (see `Machine::isolation_suspected_since`).
    pub echo_ms: u64,
    pub echo_incarnation: u64,
}

/// A copy to the SECOND in figures, for the SECOND's `hakit state -v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyFigures {
    pub bytes: u64,
    pub bytes_total: Option<u64>,
    pub eta_seconds: Option<u64>,
}

/// Every request of the primary's stream `session` numbered below `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurablePoint {
    pub session: u64,
    pub next: u64,
}
