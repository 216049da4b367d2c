//! How `hakit state` shows a farm module.

use hakit::daemon::board::FarmView;
use std::fmt::Write;

/// "web on node1: UP (load 85/256; members node1,node2,node3)"
pub fn one_line(view: &FarmView) -> String {
    let s = &view.status;
    let mine = s
        .loads
        .iter()
        .find(|(n, _)| *n == s.node)
        .map(|(_, l)| format!("load {l}"));
    let members = s.installed.as_ref().map(|v| {
        let names: Vec<&str> = v.members.iter().map(String::as_str).collect();
        format!("members {}", names.join(","))
    });
    let details: Vec<String> = mine.into_iter().chain(members).collect();
    if details.is_empty() {
        format!("{} on {}: {}", view.module, s.node, view.state)
    } else {
        format!(
            "{} on {}: {} ({})",
            view.module,
            s.node,
            view.state,
            details.join("; ")
        )
    }
}

pub fn verbose(view: &FarmView) -> String {
    let s = &view.status;
    let mut out = String::new();
    let _ = writeln!(out, "farm module {} on node {}", view.module, s.node);
    let _ = writeln!(out, "  state         {}", view.state);
    let _ = writeln!(out, "  reason        {}", s.reason);
    if let Some(script) = &view.running_script {
        let _ = writeln!(out, "  running       {script}");
    }
    let view_text = s
        .installed
        .as_ref()
        .map_or("none".to_string(), |v| v.to_string());
    let _ = writeln!(out, "  view          {view_text}");
    if s.installed.as_ref() != Some(&s.proposal) {
        let _ = writeln!(out, "  proposing     {}", s.proposal);
    }
    for (node, load) in &s.loads {
        let _ = writeln!(out, "  member        {node}: load {load}");
    }
    for p in &s.peers {
        let state = match (p.alive, p.state) {
            (true, Some(state)) => format!(
                "{state}{}",
                if p.healthy == Some(false) {
                    " (not serving)"
                } else {
                    ""
                }
            ),
            _ => "not heard".to_string(),
        };
        let heard: Vec<String> = p
            .heard_ms_ago
            .iter()
            .map(|(lan, ms)| match ms {
                Some(ms) => format!("{lan} {ms} ms ago"),
                None => format!("{lan} never"),
            })
            .collect();
        let _ = writeln!(
            out,
            "  peer          {} {state}; heard: {}",
            p.node,
            heard.join(", ")
        );
    }
    let _ = writeln!(out, "  data plane    {}", view.data_plane);
    if let Some((accepted, dropped, passed)) = view.packets {
        let _ = writeln!(
            out,
            "  packets       {accepted} accepted, {dropped} left to other nodes, {passed} not farm traffic"
        );
    }
    let _ = writeln!(
        out,
        "  arp           {}",
        if view.arp_responder {
            "this node answers ARP for the VIP"
        } else {
            "another node answers ARP for the VIP"
        }
    );
    let _ = writeln!(
        out,
        "  rejected      {} heartbeat(s) failed authentication or replay checks",
        view.rejected_heartbeats
    );
    for (ident, detail) in &s.failing_checkers {
        let _ = writeln!(out, "  FAILING       {ident}: {detail}");
    }
    out
}
