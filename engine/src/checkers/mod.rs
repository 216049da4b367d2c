//! Checkers: probes, the errd process watcher and the long-running checker tasks that
//! report their changes to the module.

pub mod errd;
pub mod probes;
pub mod runner;

#[cfg(test)]
mod tests;
