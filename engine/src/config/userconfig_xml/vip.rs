//! `<vip><interface_list><interface check arpreroute name><real_interface>
//! <virtual_addr addr where/></real_interface></interface></interface_list></vip>`;
//! `<virtual_addr>` may also sit directly in `<interface>`.

use std::net::IpAddr;

use crate::config::error::ConfigError;
use crate::config::fields::{Doc, expected, ip, name, on_off};
use crate::config::model::Vip;
use crate::config::xml::Element;

/// The placeholder the model product's templates ship in `addr`.
const PLACEHOLDER: &str = "VIRTUAL_TO_BE_DEFINED";
const VIRTUAL_ADDR: &str = "virtual_addr";

pub(super) fn parse(el: &Element, doc: &Doc) -> Result<Vec<Vip>, ConfigError> {
    doc.expect(el, &[], &["interface_list"])?;
    let mut vips: Vec<Vip> = Vec::new();
    if let Some(list) = doc.at_most_one(el, "interface_list")? {
        doc.expect(list, &[], &["interface"])?;
        for intf in list.children_named("interface") {
            interface(intf, doc, &mut vips)?;
        }
    }
    if vips.is_empty() {
        return Err(doc.error(
            el.pos,
            "vip: no <virtual_addr> (add <interface_list><interface><real_interface>\
             <virtual_addr addr=\"10.0.0.100\" where=\"one_side_alias\"/>..., or remove <vip> \
             if clients reach the module through a load balancer's health check)",
        ));
    }
    Ok(vips)
}

fn interface(el: &Element, doc: &Doc, vips: &mut Vec<Vip>) -> Result<(), ConfigError> {
    doc.expect(
        el,
        &["check", "arpreroute", "name"],
        &["real_interface", VIRTUAL_ADDR],
    )?;
    let interface = el
        .attr("name")
        .map(|a| doc.value(el, a, name))
        .transpose()?;
    let arpreroute = doc.opt(el, "arpreroute", true, on_off)?;
    let check = doc.opt(el, "check", true, on_off)?;
    for child in &el.children {
        let addrs: Vec<&Element> = if child.name == VIRTUAL_ADDR {
            vec![child]
        } else {
            doc.expect(child, &[], &[VIRTUAL_ADDR])?;
            child.children.iter().collect()
        };
        for va in addrs {
            let addr = virtual_addr(va, doc)?;
            if vips.iter().any(|v| v.addr == addr) {
                let attr = doc.required(va, "addr", "")?;
                return Err(doc.attr_error(
                    va,
                    attr,
                    "this virtual address is given twice; keep one",
                ));
            }
            vips.push(Vip {
                addr,
                interface: interface.clone(),
                arpreroute,
                check,
            });
        }
    }
    Ok(())
}

fn virtual_addr(el: &Element, doc: &Doc) -> Result<IpAddr, ConfigError> {
    doc.expect(el, &["addr", "where"], &[])?;
    // A mirror module's VIP lives on one node at a time, as an alias of a real interface.
    doc.opt(el, "where", (), |s| match s {
        "one_side_alias" => Ok(()),
        _ => Err(format!(
            "{} for a mirror module",
            expected(&["one_side_alias"])
        )),
    })?;
    doc.req(el, "addr", "10.0.0.100", |s| {
        if s.trim() == PLACEHOLDER {
            Err(format!(
                "replace {PLACEHOLDER} with the module's virtual IP address (e.g. addr=\"10.0.0.100\")"
            ))
        } else {
            ip(s)
        }
    })
}
