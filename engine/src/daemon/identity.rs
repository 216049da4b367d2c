//! Which cluster node this machine is: named explicitly, or found by matching the local
//! addresses against cluster.xml.

use crate::config::Cluster;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("node {0:?} given with --node / HAKIT_NODE is not in cluster.xml (nodes: {1})")]
    UnknownNode(String, String),
    #[error(
        "none of this machine's addresses ({0}) is a node address in cluster.xml ({1}); \
         fix cluster.xml or name the node with --node"
    )]
    NoMatch(String, String),
    #[error("this machine holds the addresses of several nodes ({0}); name the node with --node")]
    Ambiguous(String),
}

/// The node named `forced`, or the only node owning one of `local` addresses.
pub fn find_me(
    cluster: &Cluster,
    forced: Option<&str>,
    local: &[IpAddr],
) -> Result<String, IdentityError> {
    let names = cluster.node_names();
    if let Some(name) = forced {
        return if names.contains(&name) {
            Ok(name.to_string())
        } else {
            Err(IdentityError::UnknownNode(
                name.to_string(),
                names.join(", "),
            ))
        };
    }
    let mut mine: Vec<&str> = cluster
        .lans
        .iter()
        .flat_map(|lan| lan.nodes.iter())
        .filter(|n| local.contains(&n.addr))
        .map(|n| n.name.as_str())
        .collect();
    mine.sort_unstable();
    mine.dedup();
    match mine.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(IdentityError::NoMatch(
            join(local.iter()),
            join(
                cluster
                    .lans
                    .iter()
                    .flat_map(|l| l.nodes.iter())
                    .map(|n| format!("{} {}", n.name, n.addr)),
            ),
        )),
        many => Err(IdentityError::Ambiguous(many.join(", "))),
    }
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClusterNode, Lan};

    fn cluster() -> Cluster {
        let node = |name: &str, addr: &str| ClusterNode {
            name: name.into(),
            addr: addr.parse().unwrap(),
        };
        Cluster {
            lans: vec![Lan {
                name: "default".into(),
                nodes: vec![node("node1", "10.0.0.1"), node("node2", "10.0.0.2")],
            }],
        }
    }

    #[test]
    fn found_by_address_or_by_name() {
        let local: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(find_me(&cluster(), None, &local), Ok("node2".into()));
        assert_eq!(
            find_me(&cluster(), Some("node1"), &local),
            Ok("node1".into())
        );
        assert!(matches!(
            find_me(&cluster(), Some("node9"), &local),
            Err(IdentityError::UnknownNode(..))
        ));
    }

    #[test]
    fn no_or_several_matches_are_explained() {
        let none: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let e = find_me(&cluster(), None, &none).unwrap_err().to_string();
        assert!(
            e.contains("127.0.0.1") && e.contains("node1 10.0.0.1") && e.contains("--node"),
            "{e}"
        );
        let both: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert!(matches!(
            find_me(&cluster(), None, &both),
            Err(IdentityError::Ambiguous(_))
        ));
    }
}
