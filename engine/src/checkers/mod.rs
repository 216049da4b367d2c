//! Checkers: probes, the errd process watcher, the long-running checker tasks that report
//! their changes to the module, and the restart bookkeeping (`maxloop`).

pub mod errd;
pub mod probes;
pub mod restart_budget;
pub mod runner;

#[cfg(test)]
mod tests;
