//! `<rfs async sendtimeout nbrei ruzone_blocksize reiallowedbw>` with `<replicated dir mode/>`
//! children.

use std::path::{Component, Path, PathBuf};

use crate::config::duration::TimeUnit;
use crate::config::error::ConfigError;
use crate::config::fields::{Doc, expected, nonzero_time, on_off, positive, whole};
use crate::config::model::{AckLevel, Replicated, Rfs};
use crate::config::xml::{Element, Pos};

const DEFAULT_NBREI: u32 = 6;
const DEFAULT_RUZONE_BLOCKSIZE: u64 = 8 << 20;

pub(super) fn parse(el: &Element, doc: &Doc) -> Result<Rfs, ConfigError> {
    // Accepted for the model product's files to load, not used yet: `mountover` (hakit always
    // mounts in place), `acl` (permissions are replicated; ACLs are not yet), `syncat`
    // (scheduled synchronisation is not implemented).
    doc.expect(
        el,
        &[
            "async",
            "sendtimeout",
            "nbrei",
            "ruzone_blocksize",
            "reiallowedbw",
            "mountover",
            "acl",
            "syncat",
        ],
        &["replicated"],
    )?;
    doc.opt(el, "mountover", false, on_off)?;
    doc.opt(el, "acl", false, on_off)?;
    let ack = doc.opt(el, "async", AckLevel::Second, |s| match s {
        "second" => Ok(AckLevel::Second),
        "none" => Ok(AckLevel::None),
        _ => Err(expected(&["second", "none"])),
    })?;
    // Bare numbers are seconds.
    let sendtimeout = doc.opt(el, "sendtimeout", None, |s| {
        nonzero_time(TimeUnit::Seconds)(s).map(Some)
    })?;
    let nbrei = doc.opt(el, "nbrei", DEFAULT_NBREI, positive)?;
    let ruzone_blocksize = doc.opt(el, "ruzone_blocksize", DEFAULT_RUZONE_BLOCKSIZE, positive)?;
    let reiallowedbw = doc.opt(el, "reiallowedbw", None, bandwidth)?;
    let mut replicated: Vec<(Replicated, Pos)> = Vec::new();
    for r in el.children_named("replicated") {
        doc.expect(r, &["dir", "mode"], &[])?;
        let dir_attr = doc.required(r, "dir", "/var/lib/app")?;
        let dir = doc.value(r, dir_attr, replicated_dir)?;
        if let Some((other, pos)) = replicated
            .iter()
            .find(|(o, _)| o.dir.starts_with(&dir) || dir.starts_with(&o.dir))
        {
            let relation = if other.dir == dir {
                "the same as"
            } else {
                "nested with"
            };
            return Err(doc.attr_error(
                r,
                dir_attr,
                format!(
                    "{relation} {} (at {}:{}): replicated dirs must be distinct and not inside \
                     one another",
                    other.dir.display(),
                    pos.line,
                    pos.column
                ),
            ));
        }
        let read_only_on_second = doc.opt(r, "mode", false, |s| match s {
            "read_only" => Ok(true),
            _ => Err(format!("{} (or leave mode out)", expected(&["read_only"]))),
        })?;
        replicated.push((
            Replicated {
                dir,
                read_only_on_second,
            },
            dir_attr.pos,
        ));
    }
    if replicated.is_empty() {
        return Err(doc.error(
            el.pos,
            "rfs: no <replicated dir=\"...\"/> (add one per folder to replicate, or remove <rfs>)",
        ));
    }
    Ok(Rfs {
        ack,
        sendtimeout,
        nbrei,
        ruzone_blocksize,
        reiallowedbw,
        replicated: replicated.into_iter().map(|(r, _)| r).collect(),
    })
}

/// `reiallowedbw`: reintegration bandwidth cap in KiB/s, the model product's unit; 0 means
/// no cap.
fn bandwidth(s: &str) -> Result<Option<u64>, String> {
    match whole::<u64>(s)? {
        0 => Ok(None),
        kib => kib
            .checked_mul(1024)
            .map(Some)
            .ok_or_else(|| "number too large".to_string()),
    }
}

/// An absolute directory, normalised (no trailing `/`); `..` and `/` itself are refused since
/// they make the nesting check and the mount meaningless.
fn replicated_dir(s: &str) -> Result<PathBuf, String> {
    let path = Path::new(s);
    if !path.is_absolute() {
        return Err("must be an absolute path (starting with /)".into());
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("must not contain .. (write the real path)".into());
    }
    let dir: PathBuf = path.components().collect();
    if dir.parent().is_none() {
        return Err("cannot replicate / (name the application's folders)".into());
    }
    Ok(dir)
}
