//! A farm module's `<farm pulse mlost_count slost_count><lan name/></farm>` and its `<vip>`:
//! `<interface_list><interface name><virtual_interface type="vmac_invisible" virtual_mac>
//! <virtual_addr addr where="alias"/></virtual_interface></interface></interface_list>
//! <loadbalancing_list><group name><cluster><host name power/></cluster>
//! <rule port proto filter/></group></loadbalancing_list>`.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::duration::TimeUnit;
use crate::config::error::ConfigError;
use crate::config::fields::{Doc, expected, ip, name, nonzero_time, on_off, positive, whole};
use crate::config::model::{Cluster, Farm, FarmVip, LbFilter, LbGroup, LbProto, LbRule};
use crate::config::xml::Element;
use crate::farm::table::MAX_POWERED_HOSTS;

const DEFAULT_PULSE: Duration = Duration::from_millis(100);
const DEFAULT_MLOST_COUNT: u32 = 20;
const DEFAULT_SLOST_COUNT: u32 = 10;
const DEFAULT_POWER: u32 = 1;
const VMAC_INVISIBLE: &str = "vmac_invisible";

/// The farm of a module whose `<service>` is `service` (`mode="farm"`).
pub(super) fn parse(service: &Element, doc: &Doc, cluster: &Cluster) -> Result<Farm, ConfigError> {
    let mut farm = match doc.at_most_one(service, "farm")? {
        Some(f) => farm_el(f, doc, cluster)?,
        None => Farm {
            pulse: DEFAULT_PULSE,
            mlost_count: DEFAULT_MLOST_COUNT,
            slost_count: DEFAULT_SLOST_COUNT,
            lans: every_lan(cluster),
            vips: Vec::new(),
            groups: Vec::new(),
        },
    };
    // No `<vip>` is fine: a cloud load balancer in front of the farm polls the health URL.
    if let Some(v) = doc.at_most_one(service, "vip")? {
        vip(v, doc, cluster, &mut farm)?;
    }
    Ok(farm)
}

fn every_lan(cluster: &Cluster) -> Vec<String> {
    cluster.lans.iter().map(|l| l.name.clone()).collect()
}

fn farm_el(el: &Element, doc: &Doc, cluster: &Cluster) -> Result<Farm, ConfigError> {
    doc.expect(el, &["pulse", "mlost_count", "slost_count"], &["lan"])?;
    // Bare numbers are milliseconds, as in the model product.
    let pulse = doc.opt(el, "pulse", DEFAULT_PULSE, nonzero_time(TimeUnit::Millis))?;
    let mlost_count = doc.opt(el, "mlost_count", DEFAULT_MLOST_COUNT, positive)?;
    let slost_count = doc.opt(el, "slost_count", DEFAULT_SLOST_COUNT, positive)?;
    let mut lans: Vec<String> = Vec::new();
    for lan in el.children_named("lan") {
        doc.expect(lan, &["name"], &[])?;
        let attr = doc.required(lan, "name", "default")?;
        let lan_name = doc.value(lan, attr, |s| lan_name(s, cluster))?;
        if lans.contains(&lan_name) {
            return Err(doc.attr_error(lan, attr, "this lan is listed twice; keep one"));
        }
        lans.push(lan_name);
    }
    if lans.is_empty() {
        lans = every_lan(cluster);
    }
    Ok(Farm {
        pulse,
        mlost_count,
        slost_count,
        lans,
        vips: Vec::new(),
        groups: Vec::new(),
    })
}

fn lan_name(s: &str, cluster: &Cluster) -> Result<String, String> {
    let s = name(s)?;
    if cluster.lan(&s).is_some() {
        return Ok(s);
    }
    Err(format!(
        "no lan {s} in cluster.xml (use one of: {})",
        every_lan(cluster).join(", ")
    ))
}

fn vip(el: &Element, doc: &Doc, cluster: &Cluster, farm: &mut Farm) -> Result<(), ConfigError> {
    doc.expect(el, &[], &["interface_list", "loadbalancing_list"])?;
    if let Some(list) = doc.at_most_one(el, "interface_list")? {
        doc.expect(list, &[], &["interface"])?;
        for intf in list.children_named("interface") {
            interface(intf, doc, &mut farm.vips)?;
        }
    }
    if farm.vips.is_empty() {
        return Err(doc.error(
            el.pos,
            "vip: no <virtual_addr> (add <interface_list><interface><virtual_interface \
             type=\"vmac_invisible\"><virtual_addr addr=\"10.0.0.100\" where=\"alias\"/>..., or \
             remove <vip> if clients reach the farm through a load balancer's health check)",
        ));
    }
    if let Some(list) = doc.at_most_one(el, "loadbalancing_list")? {
        doc.expect(list, &[], &["group"])?;
        for g in list.children_named("group") {
            let group = group(g, doc, cluster, &farm.groups)?;
            farm.groups.push(group);
        }
    }
    if farm.groups.is_empty() {
        return Err(doc.error(
            el.pos,
            "vip: no load-balancing <group> (add <loadbalancing_list><group name=\"web\">\
             <rule port=\"80\" proto=\"tcp\" filter=\"on_addr\"/></group></loadbalancing_list>)",
        ));
    }
    Ok(())
}

fn interface(el: &Element, doc: &Doc, vips: &mut Vec<FarmVip>) -> Result<(), ConfigError> {
    // `check` and `arpreroute` are accepted (and checked) for the model product's templates
    // to load; the farm driver always watches the interface and announces the virtual MAC.
    doc.expect(el, &["check", "arpreroute", "name"], &["virtual_interface"])?;
    doc.opt(el, "check", true, on_off)?;
    doc.opt(el, "arpreroute", true, on_off)?;
    let interface = el
        .attr("name")
        .map(|a| doc.value(el, a, name))
        .transpose()?;
    for vi in el.children_named("virtual_interface") {
        doc.expect(vi, &["type", "virtual_mac"], &["virtual_addr"])?;
        doc.req(vi, "type", VMAC_INVISIBLE, |s| match s {
            VMAC_INVISIBLE => Ok(()),
            _ => Err(format!("{} for a farm module", expected(&[VMAC_INVISIBLE]))),
        })?;
        let mac = vi
            .attr("virtual_mac")
            .map(|a| doc.value(vi, a, mac))
            .transpose()?;
        for va in vi.children_named("virtual_addr") {
            doc.expect(va, &["addr", "where"], &[])?;
            // A farm VIP is on every node at once, as an alias behind the virtual MAC.
            doc.req(va, "where", "alias", |s| match s {
                "alias" => Ok(()),
                _ => Err(format!("{} for a farm module", expected(&["alias"]))),
            })?;
            let attr = doc.required(va, "addr", "10.0.0.100")?;
            let addr: IpAddr = doc.value(va, attr, ip)?;
            if vips.iter().any(|v| v.addr == addr) {
                return Err(doc.attr_error(
                    va,
                    attr,
                    "this virtual address is given twice; keep one",
                ));
            }
            vips.push(FarmVip {
                addr,
                virtual_mac: mac.unwrap_or_else(|| crate::farm::xdp::virtual_mac(addr)),
                interface: interface.clone(),
            });
        }
    }
    Ok(())
}

/// `5A:FE:0A:00:00:64`: six hex bytes separated by `:` or `-`, unicast (the low bit of the
/// first byte clear).
fn mac(s: &str) -> Result<[u8; 6], String> {
    const HINT: &str = "expected a MAC address like 5A:FE:0A:00:00:64";
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(HINT.into());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(HINT.into());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| HINT.to_string())?;
    }
    if mac[0] & 1 != 0 {
        return Err(
            "a multicast MAC address cannot be a virtual MAC (the first byte must be even)".into(),
        );
    }
    Ok(mac)
}

fn group(
    el: &Element,
    doc: &Doc,
    cluster: &Cluster,
    earlier: &[LbGroup],
) -> Result<LbGroup, ConfigError> {
    doc.expect(el, &["name"], &["cluster", "rule"])?;
    let name_attr = doc.required(el, "name", "web")?;
    let group_name = doc.value(el, name_attr, name)?;
    if earlier.iter().any(|g| g.name == group_name) {
        return Err(doc.attr_error(el, name_attr, "another group has this name; rename one"));
    }
    let nodes = cluster.node_names();
    let hosts = match doc.at_most_one(el, "cluster")? {
        Some(c) => hosts(c, doc, &nodes)?,
        None => nodes
            .iter()
            .map(|n| (n.to_string(), DEFAULT_POWER))
            .collect(),
    };
    let mut rules: Vec<LbRule> = Vec::new();
    for r in el.children_named("rule") {
        let new = rule(r, doc)?;
        let clash = earlier
            .iter()
            .flat_map(|g| &g.rules)
            .chain(&rules)
            .any(|old| old.proto == new.proto && old.port == new.port);
        if clash {
            return Err(doc.error(
                r.pos,
                format!(
                    "rule: {} already has a rule in this module; keep one",
                    describe(&new)
                ),
            ));
        }
        rules.push(new);
    }
    if rules.is_empty() {
        return Err(doc.error(
            el.pos,
            "group: no <rule> (add <rule port=\"80\" proto=\"tcp\" filter=\"on_addr\"/>)",
        ));
    }
    Ok(LbGroup {
        name: group_name,
        hosts,
        rules,
    })
}

fn describe(rule: &LbRule) -> String {
    let proto = match rule.proto {
        LbProto::Tcp => "tcp",
        LbProto::Udp => "udp",
    };
    match rule.port {
        Some(p) => format!("{proto} port {p}"),
        None => format!("every {proto} port"),
    }
}

fn hosts(el: &Element, doc: &Doc, nodes: &[&str]) -> Result<Vec<(String, u32)>, ConfigError> {
    doc.expect(el, &[], &["host"])?;
    let mut hosts: Vec<(String, u32)> = Vec::new();
    for h in el.children_named("host") {
        doc.expect(h, &["name", "power"], &[])?;
        let attr = doc.required(h, "name", nodes.first().copied().unwrap_or("node1"))?;
        let host = doc.value(h, attr, |s| {
            let s = name(s)?;
            if nodes.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(format!(
                    "{s} is not a node of cluster.xml (use one of: {})",
                    nodes.join(", ")
                ))
            }
        })?;
        if hosts.iter().any(|(n, _)| *n == host) {
            return Err(doc.attr_error(h, attr, "this host is listed twice; keep one"));
        }
        let power = doc.opt(h, "power", DEFAULT_POWER, whole)?;
        hosts.push((host, power));
    }
    if hosts.is_empty() {
        return Err(doc.error(
            el.pos,
            "cluster: no <host> (add <host name=\"node1\" power=\"1\"/> per node, or remove \
             <cluster> to balance over every node)",
        ));
    }
    let powered = hosts.iter().filter(|(_, p)| *p > 0).count();
    if powered > MAX_POWERED_HOSTS {
        return Err(doc.error(
            el.pos,
            format!(
                "cluster: {powered} hosts have power > 0; a farm group may have at most \
                 {MAX_POWERED_HOSTS}"
            ),
        ));
    }
    Ok(hosts)
}

fn rule(el: &Element, doc: &Doc) -> Result<LbRule, ConfigError> {
    doc.expect(el, &["port", "proto", "filter"], &[])?;
    Ok(LbRule {
        port: doc.opt(el, "port", None, |s| match s.trim() {
            "*" => Ok(None),
            s => positive::<u16>(s)
                .map(Some)
                .map_err(|_| "expected a port from 1 to 65535, or * for every port".to_string()),
        })?,
        proto: doc.req(el, "proto", "tcp", |s| match s {
            "tcp" => Ok(LbProto::Tcp),
            "udp" => Ok(LbProto::Udp),
            _ => Err(expected(&["tcp", "udp"])),
        })?,
        filter: doc.req(el, "filter", "on_addr", |s| match s {
            "on_addr" => Ok(LbFilter::OnAddr),
            "on_port" => Ok(LbFilter::OnPort),
            _ => Err(expected(&["on_addr", "on_port"])),
        })?,
    })
}
