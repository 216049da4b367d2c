//! hakit engine: configuration, the pure decision cores (mirror module FSM, heartbeat
//! liveness, checker bookkeeping) and the thin drivers that feed them (UDP heartbeats,
//! scripts, VIP, checkers, control socket, HTTP).

pub mod checkers;
pub mod config;
pub mod control;
pub mod daemon;
pub mod farm;
pub mod heartbeat;
pub mod http;
pub mod key;
pub mod mirror;
pub mod modlog;
pub mod net;
pub mod scripts;
