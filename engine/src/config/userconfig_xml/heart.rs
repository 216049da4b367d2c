//! `<heart pulse timeout>` with `<heartbeat name="<lan>" ident="flow"/>` children.

use std::time::Duration;

use crate::config::duration::TimeUnit;
use crate::config::error::ConfigError;
use crate::config::fields::{Doc, name, nonzero_time, pos_of};
use crate::config::model::{Cluster, Heart, HeartbeatNet};
use crate::config::xml::Element;

const DEFAULT_PULSE: Duration = Duration::from_millis(700);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The heart of a module without `<heart>`: default timings on every lan.
pub(super) fn default(cluster: &Cluster) -> Heart {
    Heart {
        pulse: DEFAULT_PULSE,
        timeout: DEFAULT_TIMEOUT,
        heartbeats: every_lan(cluster),
    }
}

fn every_lan(cluster: &Cluster) -> Vec<HeartbeatNet> {
    cluster
        .lans
        .iter()
        .map(|lan| HeartbeatNet {
            lan: lan.name.clone(),
            ident: None,
        })
        .collect()
}

pub(super) fn parse(el: &Element, doc: &Doc, cluster: &Cluster) -> Result<Heart, ConfigError> {
    doc.expect(el, &["pulse", "timeout"], &["heartbeat"])?;
    // Bare numbers are milliseconds, as in the model product.
    let pulse = doc.opt(el, "pulse", DEFAULT_PULSE, nonzero_time(TimeUnit::Millis))?;
    let timeout = doc.opt(
        el,
        "timeout",
        DEFAULT_TIMEOUT,
        nonzero_time(TimeUnit::Millis),
    )?;
    if pulse.checked_mul(2).is_none_or(|twice| timeout < twice) {
        return Err(doc.error(
            pos_of(el, "timeout"),
            format!(
                "heart: timeout {timeout:?} is less than twice the pulse {pulse:?}: one lost \
                 heartbeat would declare the peer dead (raise timeout or lower pulse)"
            ),
        ));
    }
    let mut heartbeats: Vec<HeartbeatNet> = Vec::new();
    for hb in el.children_named("heartbeat") {
        doc.expect(hb, &["name", "ident"], &[])?;
        let name_attr = doc.required(hb, "name", "default")?;
        let lan = doc.value(hb, name_attr, |s| lan_name(s, cluster))?;
        if heartbeats.iter().any(|h| h.lan == lan) {
            return Err(doc.attr_error(
                hb,
                name_attr,
                "this lan already has a heartbeat; keep one",
            ));
        }
        let ident = hb
            .attr("ident")
            .map(|a| doc.value(hb, a, name))
            .transpose()?;
        if ident.as_deref() == Some(FLOW)
            && heartbeats.iter().any(|h| h.ident.as_deref() == Some(FLOW))
        {
            return Err(doc.error(
                pos_of(hb, "ident"),
                "heartbeat: a second ident=\"flow\": only one network carries replication",
            ));
        }
        heartbeats.push(HeartbeatNet { lan, ident });
    }
    if heartbeats.is_empty() {
        heartbeats = every_lan(cluster);
    }
    Ok(Heart {
        pulse,
        timeout,
        heartbeats,
    })
}

/// The `ident` of the heartbeat network that also carries replication.
const FLOW: &str = "flow";

fn lan_name(s: &str, cluster: &Cluster) -> Result<String, String> {
    let s = name(s)?;
    if cluster.lan(&s).is_some() {
        return Ok(s);
    }
    let lans: Vec<&str> = cluster.lans.iter().map(|l| l.name.as_str()).collect();
    Err(format!(
        "no lan {s} in cluster.xml (use one of: {})",
        lans.join(", ")
    ))
}
