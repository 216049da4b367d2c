//! A module's `userconfig.xml`: `<safe>`, its `<macro>`s and its one `<service>`.

mod check;
mod errd;
mod farm;
mod heart;
mod rfs;
mod vip;

use std::time::Duration;

use super::duration::TimeUnit;
use super::error::ConfigError;
use super::fields::{Doc, expected, nonzero_time, on_off, pos_of, positive, time, whole};
use super::macros::{self, MACRO};
use super::model::{Cluster, DefaultPrim, Mode, Module, ModulePaths, SplitBrainWinner, User};
use super::xml::{Element, Pos};

const DEFAULT_MAXLOOP: u32 = 3;
const DEFAULT_LOOP_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest id whose ports stay below 65536: replication uses TCP 5600+4(id-1) .. +3.
const MAX_ID: u16 = 14_984;

/// A validated module and where its id was set, to report ids used twice across modules.
pub(super) struct Parsed {
    pub module: Module,
    /// The `id` attribute, or `<service>` when the default id is used.
    pub id_pos: Pos,
}

/// Validates the root element of module `name`'s `userconfig.xml` (macros are expanded in
/// place first).
pub(super) fn module(
    mut root: Element,
    doc: &Doc,
    name: &str,
    paths: ModulePaths,
    cluster: &Cluster,
) -> Result<Parsed, ConfigError> {
    if root.name != "safe" {
        return Err(doc.error(
            root.pos,
            format!(
                "the root element is <{}>; userconfig.xml holds <safe><service ...>...</service></safe>",
                root.name
            ),
        ));
    }
    doc.expect(&root, &[], &[MACRO, "service"])?;
    macros::expand(&mut root, doc)?;
    let service = doc.at_most_one(&root, "service")?.ok_or_else(|| {
        doc.error(
            root.pos,
            "safe: <service> is missing (add <service mode=\"mirror\">...</service>)",
        )
    })?;
    service_el(service, doc, name, paths, cluster)
}

fn service_el(
    el: &Element,
    doc: &Doc,
    module_name: &str,
    paths: ModulePaths,
    cluster: &Cluster,
) -> Result<Parsed, ConfigError> {
    doc.expect(
        el,
        &[
            "mode",
            "id",
            "failover",
            "defaultprim",
            "splitbrain_winner",
            "maxloop",
            "loop_interval",
            "boot",
        ],
        &[
            "heart", "farm", "vip", "errd", "check", "rfs", "user", "failover",
        ],
    )?;
    let mode_attr = doc.required(el, "mode", "mirror")?;
    let mode = doc.value(el, mode_attr, parse_mode)?;
    let nodes = cluster.node_names();
    let (fits, needs) = match mode {
        Mode::Mirror => (nodes.len() == 2, "a mirror module needs exactly 2"),
        Mode::Farm => (nodes.len() >= 2, "a farm module needs at least 2"),
    };
    if !fits {
        return Err(doc.attr_error(
            el,
            mode_attr,
            format!(
                "{needs} nodes in cluster.xml, which lists {} ({})",
                nodes.len(),
                nodes.join(", ")
            ),
        ));
    }
    if mode == Mode::Farm {
        farm_only(el, doc)?;
    } else if let Some(f) = el.children_named("farm").next() {
        return Err(doc.error(
            f.pos,
            "service: <farm> is for farm modules (use <heart> for a mirror module's heartbeat, \
             or set mode=\"farm\")",
        ));
    }
    // Accepted for the model product's files to load; boot start is set with `hakit boot`.
    doc.opt(el, "boot", (), |s| match s {
        "ignore" | "on" | "off" | "auto" => Ok(()),
        _ => Err(expected(&["ignore", "on", "off", "auto"])),
    })?;
    if let Some(f) = el.children_named("failover").next() {
        return Err(doc.error(
            f.pos,
            "service: <failover> rules are not supported by this build yet (remove <failover>; \
             the built-in decisions apply)",
        ));
    }
    let checks = match doc.at_most_one(el, "check")? {
        Some(c) => check::parse(c, doc, &paths.bin_dir)?,
        None => check::Checks {
            checks: Vec::new(),
            splitbrain: None,
        },
    };
    let module = Module {
        name: module_name.to_string(),
        id: doc.opt(el, "id", 1, module_id)?,
        mode,
        failover: doc.opt(el, "failover", true, on_off)?,
        defaultprim: doc.opt(el, "defaultprim", DefaultPrim::Alone, |s| {
            defaultprim(s, &nodes)
        })?,
        splitbrain_winner: doc.opt(el, "splitbrain_winner", SplitBrainWinner::Longest, |s| {
            splitbrain_winner(s, &nodes)
        })?,
        maxloop: doc.opt(el, "maxloop", DEFAULT_MAXLOOP, whole)?,
        // Bare numbers are hours, as in the model product.
        loop_interval: doc.opt(
            el,
            "loop_interval",
            DEFAULT_LOOP_INTERVAL,
            nonzero_time(TimeUnit::Hours),
        )?,
        heart: match doc.at_most_one(el, "heart")? {
            Some(h) => heart::parse(h, doc, cluster)?,
            None => heart::default(cluster),
        },
        // No `<vip>` is fine: cloud modules are reached through a load balancer that polls
        // the health URL. A farm's `<vip>` is read into `farm`.
        vips: match doc.at_most_one(el, "vip")? {
            Some(v) if mode == Mode::Mirror => vip::parse(v, doc)?,
            _ => Vec::new(),
        },
        errd: match doc.at_most_one(el, "errd")? {
            Some(e) => errd::parse(e, doc)?,
            None => errd::default(),
        },
        checks: checks.checks,
        splitbrain: checks.splitbrain,
        rfs: doc
            .at_most_one(el, "rfs")?
            .map(|r| rfs::parse(r, doc))
            .transpose()?,
        farm: match mode {
            Mode::Farm => Some(farm::parse(el, doc, cluster)?),
            Mode::Mirror => None,
        },
        user: match doc.at_most_one(el, "user")? {
            Some(u) => user(u, doc)?,
            None => User {
                nicestoptimeout: DEFAULT_STOP_TIMEOUT,
                forcestoptimeout: DEFAULT_STOP_TIMEOUT,
            },
        },
        paths,
    };
    Ok(Parsed {
        module,
        id_pos: pos_of(el, "id"),
    })
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "mirror" => Ok(Mode::Mirror),
        "farm" => Ok(Mode::Farm),
        _ => Err(expected(&["mirror", "farm"])),
    }
}

/// Rejects what only a mirror module has: a farm has no primary, no `<heart>` (its heartbeat
/// is `<farm>`) and replicates nothing.
fn farm_only(el: &Element, doc: &Doc) -> Result<(), ConfigError> {
    for attr in ["defaultprim", "splitbrain_winner"] {
        if let Some(a) = el.attr(attr) {
            return Err(doc.attr_error(
                el,
                a,
                format!("a farm module has no primary (remove {attr})"),
            ));
        }
    }
    for (child, instead) in [
        (
            "heart",
            "use <farm pulse mlost_count slost_count><lan name/></farm>",
        ),
        (
            "rfs",
            "a farm module replicates nothing; use a mirror module",
        ),
    ] {
        if let Some(c) = el.children_named(child).next() {
            return Err(doc.error(
                c.pos,
                format!("service: <{child}> is for mirror modules ({instead})"),
            ));
        }
    }
    Ok(())
}

fn module_id(s: &str) -> Result<u16, String> {
    match positive::<u16>(s) {
        Ok(id) if id <= MAX_ID => Ok(id),
        _ => Err(format!(
            "expected a whole number from 1 to {MAX_ID} (it selects the module's ports)"
        )),
    }
}

fn defaultprim(s: &str, nodes: &[&str]) -> Result<DefaultPrim, String> {
    match s {
        "alone" => Ok(DefaultPrim::Alone),
        "lastprim" => Ok(DefaultPrim::LastPrim),
        node if nodes.contains(&node) => Ok(DefaultPrim::Node(node.to_string())),
        node => Err(format!(
            "{node} is not a node of cluster.xml (use alone, lastprim or one of: {})",
            nodes.join(", ")
        )),
    }
}

fn splitbrain_winner(s: &str, nodes: &[&str]) -> Result<SplitBrainWinner, String> {
    match s {
        "longest" => Ok(SplitBrainWinner::Longest),
        node if nodes.contains(&node) => Ok(SplitBrainWinner::Node(node.to_string())),
        node => Err(format!(
            "{node} is not a node of cluster.xml (use longest or one of: {})",
            nodes.join(", ")
        )),
    }
}

fn user(el: &Element, doc: &Doc) -> Result<User, ConfigError> {
    doc.expect(el, &["nicestoptimeout", "forcestoptimeout", "logging"], &[])?;
    // `logging="userlog"` (scripts' output goes to the application log) is what hakit
    // always does; it is accepted because the model product's templates carry it.
    doc.opt(el, "logging", (), |s| match s {
        "userlog" => Ok(()),
        _ => Err(format!(
            "{} (scripts' output always goes to the application log)",
            expected(&["userlog"])
        )),
    })?;
    // Bare numbers are seconds, as in the model product.
    let stop_timeout = |attr| doc.opt(el, attr, DEFAULT_STOP_TIMEOUT, time(TimeUnit::Seconds));
    Ok(User {
        nicestoptimeout: stop_timeout("nicestoptimeout")?,
        forcestoptimeout: stop_timeout("forcestoptimeout")?,
    })
}
