//! `<check>`: `<tcp>`, `<ping>` and `<custom>` checkers and the optional `<splitbrain>`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::errd::class;
use crate::config::duration::TimeUnit;
use crate::config::error::ConfigError;
use crate::config::fields::{Doc, expected, ip, name, nonzero_time, positive};
use crate::config::model::{Check, CheckAction, CheckClass, CheckKind, SplitBrain};
use crate::config::xml::{Element, Pos};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attributes every checker takes.
const COMMON: [&str; 3] = ["ident", "when", "action"];

pub(super) struct Checks {
    pub checks: Vec<Check>,
    pub splitbrain: Option<SplitBrain>,
}

/// Parses `<check>`; relative `exec` paths of custom checkers are taken in `bin_dir`.
pub(super) fn parse(el: &Element, doc: &Doc, bin_dir: &Path) -> Result<Checks, ConfigError> {
    doc.expect(el, &[], &["tcp", "ping", "custom", "splitbrain"])?;
    let mut idents: Vec<(String, Pos)> = Vec::new();
    let mut checks = Vec::new();
    let mut splitbrain: Option<SplitBrain> = None;
    for child in &el.children {
        let ident_attr = doc.required(child, "ident", child.name.as_str())?;
        let ident = doc.value(child, ident_attr, name)?;
        if let Some((_, first)) = idents.iter().find(|(i, _)| *i == ident) {
            return Err(doc.attr_error(
                child,
                ident_attr,
                format!(
                    "ident already used at {}:{}; give each checker its own ident",
                    first.line, first.column
                ),
            ));
        }
        idents.push((ident.clone(), ident_attr.pos));
        match child.name.as_str() {
            "splitbrain" => {
                if splitbrain.is_some() {
                    return Err(doc.error(
                        child.pos,
                        "check: a second <splitbrain>: one list of witnesses is enough \
                         (put every witness in its arg)",
                    ));
                }
                splitbrain = Some(split_brain(child, doc, ident)?);
            }
            _ => checks.push(check(child, doc, ident, bin_dir)?),
        }
    }
    Ok(Checks { checks, splitbrain })
}

fn check(el: &Element, doc: &Doc, ident: String, bin_dir: &Path) -> Result<Check, ConfigError> {
    let mut interval = DEFAULT_INTERVAL;
    let mut timeout = DEFAULT_TIMEOUT;
    let kind = match el.name.as_str() {
        "custom" => {
            doc.expect(el, &[&COMMON[..], &["exec", "arg"]].concat(), &[])?;
            let exec = doc.req(el, "exec", "checker.sh", name)?;
            // `Path::join` keeps an absolute `exec` as it is.
            let exec = bin_dir.join(exec);
            let args = el
                .attr("arg")
                .map(|a| a.value.split_whitespace().map(String::from).collect())
                .unwrap_or_default();
            CheckKind::Custom { exec, args }
        }
        kind => {
            let tcp = kind == "tcp";
            doc.expect(el, &COMMON, &["to"])?;
            let to = doc.at_most_one(el, "to")?.ok_or_else(|| {
                let example = if tcp { " port=\"80\"" } else { "" };
                doc.error(
                    el.pos,
                    format!("{kind}: <to> is missing (add <to addr=\"10.0.0.1\"{example}/>)"),
                )
            })?;
            let port_attrs: &[&str] = if tcp { &["port"] } else { &[] };
            doc.expect(
                to,
                &[&["addr", "interval", "timeout"], port_attrs].concat(),
                &[],
            )?;
            let addr: IpAddr = doc.req(to, "addr", "10.0.0.1", ip)?;
            interval = doc.opt(to, "interval", interval, nonzero_time(TimeUnit::Seconds))?;
            timeout = doc.opt(to, "timeout", timeout, nonzero_time(TimeUnit::Seconds))?;
            if tcp {
                let port = doc.req(to, "port", "80", positive)?;
                CheckKind::Tcp { addr, port }
            } else {
                CheckKind::Ping { addr }
            }
        }
    };
    Ok(Check {
        ident,
        kind,
        when: doc.opt(el, "when", CheckClass::Prim, class)?,
        action: doc.opt(el, "action", CheckAction::Wait, action)?,
        interval,
        timeout,
    })
}

fn action(s: &str) -> Result<CheckAction, String> {
    match s {
        "restart" => Ok(CheckAction::Restart),
        "stopstart" => Ok(CheckAction::Stopstart),
        "stop" => Ok(CheckAction::Stop),
        "wait" => Ok(CheckAction::Wait),
        _ => Err(expected(&["wait", "restart", "stopstart", "stop"])),
    }
}

fn split_brain(el: &Element, doc: &Doc, ident: String) -> Result<SplitBrain, ConfigError> {
    doc.expect(el, &["ident", "exec", "arg"], &[])?;
    doc.opt(el, "exec", (), |s| match s {
        "ping" => Ok(()),
        _ => Err(format!("{} (witnesses are pinged)", expected(&["ping"]))),
    })?;
    let witnesses = doc.req(el, "arg", "10.0.0.254", witnesses)?;
    Ok(SplitBrain { ident, witnesses })
}

fn witnesses(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out: Vec<IpAddr> = Vec::new();
    for w in s.split_whitespace() {
        let addr = ip(w).map_err(|e| format!("witness {w}: {e}"))?;
        if out.contains(&addr) {
            return Err(format!("witness {w} is listed twice"));
        }
        out.push(addr);
    }
    if out.is_empty() {
        return Err("list at least one witness address, separated by spaces".into());
    }
    Ok(out)
}
