//! The mirror module: roles, data generations and the module state machine.

pub mod advert;
pub mod arbitrate;
mod commands;
pub mod data;
pub mod fsm;
pub mod machine_config;
pub mod plan;
pub mod role;
