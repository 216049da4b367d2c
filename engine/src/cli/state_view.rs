//! How `hakit state` shows a module.

use hakit::daemon::board::ModuleView;
use hakit::daemon::data::bytes_of;
use hakit::mirror::plan::DataMode;
use std::fmt::Write;

pub fn one_line(view: &ModuleView) -> String {
    let s = &view.status;
    format!(
        "{} on {}: {} ({})",
        view.module, s.node, view.role, s.readiness
    )
}

/// "demo on node1: PRIM (Ready); peer node2: SECOND (Ready)"
pub fn with_peer(view: &ModuleView) -> String {
    let p = &view.status.peer;
    let peer = match (p.up, p.role, p.readiness) {
        (true, Some(role), Some(r)) => format!("{role} ({r})"),
        _ => "not heard".to_string(),
    };
    format!("{}; peer {}: {peer}", one_line(view), p.node)
}

pub fn verbose(view: &ModuleView) -> String {
    let s = &view.status;
    let mut out = String::new();
    let _ = writeln!(out, "module {} on node {}", view.module, s.node);
    let _ = writeln!(out, "  state         {} ({})", s.role, s.readiness);
    let _ = writeln!(out, "  reason        {}", s.reason);
    if let Some(step) = &s.running_step {
        let _ = writeln!(out, "  running       {step}");
    }
    let _ = writeln!(
        out,
        "  data          generation {}, last in sync with {} at {}, {}, last role {:?}",
        s.data.generation,
        s.peer.node,
        s.data.synced,
        if s.data.consistent {
            "complete copy"
        } else {
            "INCOMPLETE copy"
        },
        s.data.last_role
    );
    let _ = writeln!(
        out,
        "  failover      {}",
        if s.failover { "on" } else { "off" }
    );
    let peer = match (s.peer.up, s.peer.role, s.peer.readiness) {
        (true, Some(role), Some(r)) => format!("{} ({r})", role),
        _ => "not heard".to_string(),
    };
    let _ = writeln!(out, "  peer          {} {peer}", s.peer.node);
    if let Some(copy) = &s.peer.copy {
        let eta = copy
            .eta_seconds
            .map_or(String::new(), |s| format!(", ETA {s} s"));
        let _ = writeln!(
            out,
            "  resync        receiving {}'s copy: {}{eta}",
            s.peer.node,
            bytes_of(copy.bytes, copy.bytes_total)
        );
    }
    for (lan, ms) in &s.peer.heard_ms_ago {
        let heard = ms.map_or("never heard".to_string(), |ms| {
            format!("last heard {ms} ms ago")
        });
        let _ = writeln!(out, "  heartbeat     {lan}: {heard}");
    }
    let _ = writeln!(
        out,
        "  rejected      {} heartbeat(s) failed authentication or replay checks",
        view.rejected_heartbeats
    );
    let _ = writeln!(out, "  restarts      {}", s.restarts_in_interval);
    for (ident, detail) in &s.failing_checkers {
        let _ = writeln!(out, "  FAILING       {ident}: {detail}");
    }
    replication(&mut out, view);
    out
}

fn replication(out: &mut String, view: &ModuleView) {
    let Some(data) = &view.data else {
        let _ = writeln!(out, "  replication   none (no <rfs> in this module)");
        return;
    };
    let s = &view.status;
    let dirs: Vec<String> = data.dirs.iter().map(|d| d.display().to_string()).collect();
    let mode = match data.mode {
        DataMode::Off => "unmounted",
        DataMode::Serve => "mounted read-write",
        DataMode::Receive => "mounted read-only, receiving",
    };
    let _ = writeln!(out, "  replicated    {} ({mode})", dirs.join(", "));
    let level = match data.ack_level.as_str() {
        "none" => "async=\"none\": a write returns once applied on the peer",
        _ => "async=\"second\": a write returns once in the peer's memory",
    };
    let _ = writeln!(out, "  ack level     {level}; fsync always durable on both");
    match (s.replicating_to, &data.link) {
        (Some(_), Some(link)) => {
            let state = match (&link.broken, s.replication_up, &data.copy) {
                (Some(why), _, _) => format!("BROKEN: {why}"),
                (None, true, _) => "up".to_string(),
                (None, false, Some(copy)) => {
                    format!("copying ({}: {})", copy.phase, copy.summary())
                }
                (None, false, None) => "copying".to_string(),
            };
            let us = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} µs"));
            let _ = writeln!(
                out,
                "  stream        {state}; {} operations, {} bytes sent, {} in flight, ack \
                 latency p50 {} p99 {}",
                link.ops_sent,
                link.bytes_sent,
                link.in_flight,
                us(link.ack_p50_us),
                us(link.ack_p99_us)
            );
        }
        (Some(_), None) => {
            let _ = writeln!(out, "  stream        connecting to {}", s.peer.node);
        }
        (None, _) => {
            let _ = writeln!(out, "  stream        none");
        }
    }
}
