//! `<errd polltimer><proc name atleast atmax action class/></errd>`: processes to watch.

use std::time::Duration;

use crate::config::duration::TimeUnit;
use crate::config::error::ConfigError;
use crate::config::fields::{Doc, expected, name, nonzero_time, pos_of, whole};
use crate::config::model::{CheckAction, CheckClass, Errd, ProcCheck};
use crate::config::xml::Element;

const DEFAULT_POLLTIMER: Duration = Duration::from_secs(10);

/// The errd of a module without `<errd>`: nothing to watch.
pub(super) fn default() -> Errd {
    Errd {
        polltimer: DEFAULT_POLLTIMER,
        procs: Vec::new(),
    }
}

pub(super) fn parse(el: &Element, doc: &Doc) -> Result<Errd, ConfigError> {
    doc.expect(el, &["polltimer"], &["proc"])?;
    let polltimer = doc.opt(
        el,
        "polltimer",
        DEFAULT_POLLTIMER,
        nonzero_time(TimeUnit::Seconds),
    )?;
    let procs = el
        .children_named("proc")
        .map(|p| proc_check(p, doc))
        .collect::<Result<_, _>>()?;
    Ok(Errd { polltimer, procs })
}

fn proc_check(el: &Element, doc: &Doc) -> Result<ProcCheck, ConfigError> {
    doc.expect(el, &["name", "atleast", "atmax", "action", "class"], &[])?;
    let proc_name = doc.req(el, "name", "httpd", name)?;
    let atleast = doc.opt(el, "atleast", 1, whole)?;
    let atmax = doc.opt(el, "atmax", None, atmax)?;
    if atmax.is_some_and(|max| max < atleast) {
        return Err(doc.error(
            pos_of(el, "atmax"),
            format!("proc: atmax is below atleast ({atleast}): no process count can satisfy both"),
        ));
    }
    Ok(ProcCheck {
        name: proc_name,
        atleast,
        atmax,
        action: doc.opt(el, "action", CheckAction::Restart, proc_action)?,
        class: doc.opt(el, "class", CheckClass::Prim, class)?,
    })
}

/// `-1` (the model product's "no upper bound") or a count.
fn atmax(s: &str) -> Result<Option<u32>, String> {
    match s.trim() {
        "-1" => Ok(None),
        s => whole(s)
            .map(Some)
            .map_err(|e| format!("{e} (or -1 for no upper bound)")),
    }
}

fn proc_action(s: &str) -> Result<CheckAction, String> {
    match s {
        "restart" => Ok(CheckAction::Restart),
        "stopstart" => Ok(CheckAction::Stopstart),
        "stop" => Ok(CheckAction::Stop),
        _ => Err(expected(&["restart", "stopstart", "stop"])),
    }
}

/// `when`/`class` of a checker.
pub(super) fn class(s: &str) -> Result<CheckClass, String> {
    match s {
        "prim" => Ok(CheckClass::Prim),
        "both" => Ok(CheckClass::Both),
        _ => Err(expected(&["prim", "both"])),
    }
}
