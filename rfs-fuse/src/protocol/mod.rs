//! The replication stream's vocabulary. The operation types in [`op`] are the contract
//! between the overlay (which produces them), the wire format and the receiver.

pub mod op;
