//! Checkers: what watches the application and the network, and the restart bookkeeping.
pub mod restart_budget;
