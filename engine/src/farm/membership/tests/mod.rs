//! Tests of the farm membership machine: hand-fed inputs (`machine.rs`), scripted scenarios
//! in a simulated network (`scenarios.rs`) and randomized schedules (`random.rs`).

mod machine;
mod random;
mod scenarios;
mod sim;
