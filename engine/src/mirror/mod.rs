//! The mirror module: roles, data generations and the module state machine.
//!
//! The machine is `fsm::Machine`; its behaviour is split by concern: `decide*.rs` (what to do
//! in each role), `witness.rs` (split-brain witness), `checker_actions.rs` (checker failures),
//! `commands.rs` (administrator commands).

pub mod advert;
pub mod arbitrate;
mod checker_actions;
mod commands;
pub mod data;
mod decide;
mod decide_second;
mod decide_serving;
pub mod fsm;
pub mod machine_config;
pub mod plan;
pub mod replication;
pub mod role;
mod witness;
