//! From a module's validated configuration to what its state machine needs.

use super::fsm::{CheckerSpec, MachineConfig};
use crate::config::Module;
use std::time::Duration;

/// How long a split-brain witness probe may take: a quarter of the heartbeat timeout,
/// within [200 ms, 2 s]. A takeover waits this long on top of the timeout (see the FSM).
pub fn witness_timeout(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// The ident under which the errd watcher reports process `name`.
pub fn errd_ident(name: &str) -> String {
    format!("errd:{name}")
}

pub fn machine_config(module: &Module, me: &str, peer: &str) -> MachineConfig {
    let mut checkers: Vec<CheckerSpec> = module
        .errd
        .procs
        .iter()
        .map(|p| CheckerSpec {
            ident: errd_ident(&p.name),
            class: p.class,
            action: p.action,
        })
        .collect();
    checkers.extend(module.checks.iter().map(|c| CheckerSpec {
        ident: c.ident.clone(),
        class: c.when,
        action: c.action,
    }));
    MachineConfig {
        me: me.to_string(),
        peer: peer.to_string(),
        networks: module
            .heart
            .heartbeats
            .iter()
            .map(|h| h.lan.clone())
            .collect(),
        pulse: module.heart.pulse,
        timeout: module.heart.timeout,
        failover: module.failover,
        defaultprim: module.defaultprim.clone(),
        splitbrain_winner: module.splitbrain_winner.clone(),
        maxloop: module.maxloop,
        loop_interval: module.loop_interval,
        witness_timeout: module
            .splitbrain
            .as_ref()
            .map(|_| witness_timeout(module.heart.timeout)),
        checkers,
        has_data: module.rfs.is_some(),
    }
}
