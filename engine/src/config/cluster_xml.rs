//! `cluster.xml`: the nodes and their address on each network.
//!
//! ```xml
//! <cluster><lans>
//!   <lan name="default"><node name="node1" addr="10.0.0.1"/><node name="node2" addr="10.0.0.2"/></lan>
//! </lans></cluster>
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::error::ConfigError;
use super::fields::{Doc, ip, name};
use super::model::{Cluster, ClusterNode, Lan};
use super::xml::{Element, Pos};

/// Validates the root element of `cluster.xml`.
pub(super) fn cluster(root: &Element, doc: &Doc) -> Result<Cluster, ConfigError> {
    if root.name != "cluster" {
        return Err(doc.error(
            root.pos,
            format!(
                "the root element is <{}>; cluster.xml holds <cluster><lans>...</lans></cluster>",
                root.name
            ),
        ));
    }
    doc.expect(root, &[], &["lans"])?;
    let lans_el = doc.at_most_one(root, "lans")?.ok_or_else(|| {
        doc.error(
            root.pos,
            "cluster: <lans> is missing (add <lans><lan name=\"default\"><node name=\"node1\" \
             addr=\"10.0.0.1\"/>...</lan></lans>)",
        )
    })?;
    doc.expect(lans_el, &[], &["lan"])?;
    let mut lans: Vec<(Lan, Pos)> = Vec::new();
    // Every address of the cluster, with where it was given, to report duplicates.
    let mut addrs: Vec<(IpAddr, Pos)> = Vec::new();
    for lan_el in lans_el.children_named("lan") {
        let lan = lan(lan_el, doc, &mut addrs)?;
        if let Some((_, first)) = lans.iter().find(|(l, _)| l.name == lan.name) {
            let attr = doc.required(lan_el, "name", "default")?;
            return Err(doc.attr_error(
                lan_el,
                attr,
                format!(
                    "a lan with this name is already defined at {}:{}; give each lan its own name",
                    first.line, first.column
                ),
            ));
        }
        lans.push((lan, lan_el.pos));
    }
    if lans.is_empty() {
        return Err(doc.error(
            lans_el.pos,
            "lans: no <lan> (add <lan name=\"default\"> with one <node name addr/> per node)",
        ));
    }
    check_same_nodes(&lans, doc)?;
    Ok(Cluster {
        lans: lans.into_iter().map(|(lan, _)| lan).collect(),
    })
}

fn lan(el: &Element, doc: &Doc, addrs: &mut Vec<(IpAddr, Pos)>) -> Result<Lan, ConfigError> {
    doc.expect(el, &["name"], &["node"])?;
    let lan_name = doc.req(el, "name", "default", name)?;
    let mut nodes: Vec<ClusterNode> = Vec::new();
    for node_el in el.children_named("node") {
        // `laddr` is the node's own address when `addr` is a NAT address others reach it by.
        // hakit does not do NAT traversal yet (it binds to `addr`), so it is checked and
        // accepted, for the model product's files to load, but not used.
        doc.expect(node_el, &["name", "addr", "laddr"], &[])?;
        let node_name = doc.req(node_el, "name", "node1", name)?;
        let addr_attr = doc.required(node_el, "addr", "10.0.0.1")?;
        let addr = doc.value(node_el, addr_attr, ip)?;
        doc.opt(node_el, "laddr", addr, ip)?;
        if nodes.iter().any(|n| n.name == node_name) {
            let attr = doc.required(node_el, "name", "node1")?;
            return Err(doc.attr_error(
                node_el,
                attr,
                format!("node {node_name} is listed twice in lan {lan_name}; keep one"),
            ));
        }
        if let Some((_, first)) = addrs.iter().find(|(a, _)| *a == addr) {
            return Err(doc.attr_error(
                node_el,
                addr_attr,
                format!(
                    "this address is already given at {}:{}; every node needs its own address \
                     on each lan",
                    first.line, first.column
                ),
            ));
        }
        addrs.push((addr, addr_attr.pos));
        nodes.push(ClusterNode {
            name: node_name,
            addr,
        });
    }
    if nodes.is_empty() {
        return Err(doc.error(
            el.pos,
            format!("lan {lan_name}: no <node> (add <node name=\"node1\" addr=\"10.0.0.1\"/>)"),
        ));
    }
    Ok(Lan {
        name: lan_name,
        nodes,
    })
}

/// Every lan must list the same nodes: a node is one machine, reachable on every network.
fn check_same_nodes(lans: &[(Lan, Pos)], doc: &Doc) -> Result<(), ConfigError> {
    let names =
        |lan: &Lan| -> BTreeSet<String> { lan.nodes.iter().map(|n| n.name.clone()).collect() };
    let Some((first, _)) = lans.first() else {
        return Ok(());
    };
    let expected = names(first);
    for (lan, pos) in lans.iter().skip(1) {
        let got = names(lan);
        if got != expected {
            let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
            return Err(doc.error(
                *pos,
                format!(
                    "lan {} lists nodes {} but lan {} lists {}: every lan must list the same \
                     nodes",
                    lan.name,
                    list(&got),
                    first.name,
                    list(&expected)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::xml::parse;
    use std::path::Path;

    fn load(text: &str) -> Result<Cluster, String> {
        let doc = Doc {
            file: Path::new("/etc/hakit/cluster.xml"),
        };
        let root = parse(text, doc.file).map_err(|e| e.to_string())?;
        cluster(&root, &doc).map_err(|e| e.to_string())
    }

    fn err(text: &str) -> String {
        match load(text) {
            Ok(c) => panic!("parsed: {c:?}"),
            Err(e) => e,
        }
    }

    const TWO_LANS: &str = r#"<!DOCTYPE cluster>
<cluster>
  <lans>
    <lan name="default">
      <node name="node1" addr="10.0.0.1"/>
      <node name="node2" addr="10.0.0.2" laddr="192.168.0.2"/>
    </lan>
    <lan name="backup">
      <node name="node2" addr="fd00::2"/>
      <node name="node1" addr="fd00::1"/>
    </lan>
  </lans>
</cluster>
"#;

    fn node(name: &str, addr: &str) -> ClusterNode {
        ClusterNode {
            name: name.into(),
            addr: addr.parse().unwrap(),
        }
    }

    #[test]
    fn parses_lans_and_nodes() {
        let c = load(TWO_LANS).unwrap();
        assert_eq!(
            c,
            Cluster {
                lans: vec![
                    Lan {
                        name: "default".into(),
                        nodes: vec![node("node1", "10.0.0.1"), node("node2", "10.0.0.2")],
                    },
                    Lan {
                        name: "backup".into(),
                        nodes: vec![node("node2", "fd00::2"), node("node1", "fd00::1")],
                    },
                ]
            }
        );
        assert_eq!(c.node_names(), ["node1", "node2"]);
        assert_eq!(c.addr("backup", "node1"), Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn addr_must_be_an_ip() {
        assert_eq!(
            err(
                "<cluster><lans><lan name=\"l\">\n<node name=\"n1\" addr=\"host1\"/></lan></lans></cluster>"
            ),
            "/etc/hakit/cluster.xml:2:17: node: attribute addr=\"host1\": not an IP address \
             (write it as digits, e.g. 10.0.0.1 or fd00::1; host names are not resolved)"
        );
        let bad_laddr = "<cluster><lans><lan name=\"l\"><node name=\"n1\" addr=\"10.0.0.1\" laddr=\"x\"/></lan></lans></cluster>";
        assert!(err(bad_laddr).contains("node: attribute laddr=\"x\": not an IP address"));
    }

    #[test]
    fn missing_parts() {
        assert_eq!(
            err("<nodes/>"),
            "/etc/hakit/cluster.xml:1:1: the root element is <nodes>; cluster.xml holds \
             <cluster><lans>...</lans></cluster>"
        );
        assert!(
            err("<cluster/>").starts_with("/etc/hakit/cluster.xml:1:1: cluster: <lans> is missing")
        );
        assert!(
            err("<cluster><lans/></cluster>")
                .starts_with("/etc/hakit/cluster.xml:1:10: lans: no <lan>")
        );
        assert_eq!(
            err("<cluster><lans><lan name=\"l\"/></lans></cluster>"),
            "/etc/hakit/cluster.xml:1:16: lan l: no <node> (add <node name=\"node1\" addr=\"10.0.0.1\"/>)"
        );
        assert_eq!(
            err("<cluster><lans><lan><node name=\"a\" addr=\"10.0.0.1\"/></lan></lans></cluster>"),
            "/etc/hakit/cluster.xml:1:16: lan: attribute name is missing (add name=\"default\")"
        );
    }

    #[test]
    fn unknown_element_and_attribute() {
        assert_eq!(
            err("<cluster>\n<lans>\n<lan name=\"l\">\n<host name=\"a\"/></lan></lans></cluster>"),
            "/etc/hakit/cluster.xml:4:1: lan: unknown element <host> (allowed: node)"
        );
        assert_eq!(
            err(
                "<cluster><lans><lan name=\"l\"><node name=\"a\" addr=\"10.0.0.1\" port=\"1\"/></lan></lans></cluster>"
            ),
            "/etc/hakit/cluster.xml:1:61: node: unknown attribute \"port\" (allowed: name, addr, laddr)"
        );
    }

    #[test]
    fn duplicate_lan_names() {
        let text = "<cluster><lans>\n<lan name=\"l\"><node name=\"a\" addr=\"10.0.0.1\"/></lan>\n<lan name=\"l\"><node name=\"a\" addr=\"10.0.1.1\"/></lan></lans></cluster>";
        assert_eq!(
            err(text),
            "/etc/hakit/cluster.xml:3:6: lan: attribute name=\"l\": a lan with this name is \
             already defined at 2:1; give each lan its own name"
        );
    }

    #[test]
    fn duplicate_node_names() {
        let text = "<cluster><lans><lan name=\"l\">\n<node name=\"a\" addr=\"10.0.0.1\"/>\n<node name=\"a\" addr=\"10.0.0.2\"/></lan></lans></cluster>";
        assert_eq!(
            err(text),
            "/etc/hakit/cluster.xml:3:7: node: attribute name=\"a\": node a is listed twice in \
             lan l; keep one"
        );
    }

    #[test]
    fn duplicate_addresses() {
        let text = "<cluster><lans><lan name=\"l\">\n<node name=\"a\" addr=\"10.0.0.1\"/>\n<node name=\"b\" addr=\"10.0.0.1\"/></lan></lans></cluster>";
        assert_eq!(
            err(text),
            "/etc/hakit/cluster.xml:3:16: node: attribute addr=\"10.0.0.1\": this address is \
             already given at 2:16; every node needs its own address on each lan"
        );
    }

    #[test]
    fn lans_must_list_the_same_nodes() {
        let text = "<cluster><lans>\n<lan name=\"l\"><node name=\"a\" addr=\"10.0.0.1\"/><node name=\"b\" addr=\"10.0.0.2\"/></lan>\n<lan name=\"m\"><node name=\"a\" addr=\"10.0.1.1\"/><node name=\"c\" addr=\"10.0.1.3\"/></lan></lans></cluster>";
        assert_eq!(
            err(text),
            "/etc/hakit/cluster.xml:3:1: lan m lists nodes a, c but lan l lists a, b: every lan \
             must list the same nodes"
        );
    }
}
