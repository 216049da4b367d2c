//! From a farm module's validated configuration to what the membership and the data plane
//! need, and what this build cannot run yet (said in words, never silently ignored).

use super::membership::FarmConfig;
use super::table::{DEFAULT_BUCKETS, Member};
use super::xdp::{FilterMode, Proto, Rule};
use crate::config::{Cluster, Farm, FarmVip, LbFilter, LbProto};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{0} load-balancing groups: this build runs one farm group per module (split the \
         groups into modules)"
    )]
    Groups(usize),
    #[error("{0} farm virtual IPs: this build runs one per module (one module per VIP)")]
    Vips(usize),
    #[error("farm virtual IP {0}: IPv6 VIPs are not run by this build yet (no NDP answer)")]
    Ipv6Vip(std::net::IpAddr),
}

/// The VIP of a farm module as the data plane uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarmVipV4 {
    pub addr: Ipv4Addr,
    pub virtual_mac: [u8; 6],
    /// `None`: the interface whose subnet holds the VIP.
    pub interface: Option<String>,
}

/// What the farm of `module` runs with on node `me`.
#[derive(Debug, Clone)]
pub struct FarmSettings {
    pub membership: FarmConfig,
    /// `None` without `<vip>` (a cloud load balancer in front polls the health URL).
    pub vip: Option<FarmVipV4>,
    pub rules: Vec<Rule>,
}

impl FarmSettings {
    /// `farm`: the module's `<farm>` and farm `<vip>`.
    pub fn of(farm: &Farm, cluster: &Cluster, me: &str) -> Result<FarmSettings, SettingsError> {
        let hosts: Vec<Member> = match farm.groups.as_slice() {
            [] => cluster
                .node_names()
                .into_iter()
                .map(|n| Member::new(n, 1))
                .collect(),
            [group] => group
                .hosts
                .iter()
                .map(|(n, p)| Member::new(n.clone(), *p))
                .collect(),
            more => return Err(SettingsError::Groups(more.len())),
        };
        let vip = match farm.vips.as_slice() {
            [] => None,
            [one] => Some(v4(one)?),
            more => return Err(SettingsError::Vips(more.len())),
        };
        let rules = farm
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .map(|r| Rule {
                port: r.port.unwrap_or(0),
                proto: match r.proto {
                    LbProto::Tcp => Proto::Tcp,
                    LbProto::Udp => Proto::Udp,
                },
                filter: match r.filter {
                    LbFilter::OnAddr => FilterMode::OnAddr,
                    LbFilter::OnPort => FilterMode::OnPort,
                },
            })
            .collect();
        let membership = FarmConfig {
            me: me.to_string(),
            hosts,
            networks: farm.lans.clone(),
            pulse: farm.pulse,
            mlost_count: farm.mlost_count,
            slost_count: farm.slost_count,
            buckets: DEFAULT_BUCKETS,
        };
        Ok(FarmSettings {
            membership,
            vip,
            rules,
        })
    }

    /// How the hash of a connection to local port `port` is computed: the rule for that
    /// port, else the rule for every port (TCP only: what the drain counts).
    pub fn tcp_mode(&self, port: u16) -> Option<FilterMode> {
        let tcp = |r: &&Rule| r.proto == Proto::Tcp;
        let rules = || self.rules.iter().filter(tcp);
        rules()
            .find(|r| r.port == port)
            .or_else(|| rules().find(|r| r.port == 0))
            .map(|r| r.filter)
    }
}

fn v4(vip: &FarmVip) -> Result<FarmVipV4, SettingsError> {
    match vip.addr {
        std::net::IpAddr::V4(addr) => Ok(FarmVipV4 {
            addr,
            virtual_mac: vip.virtual_mac,
            interface: vip.interface.clone(),
        }),
        other => Err(SettingsError::Ipv6Vip(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LbGroup, LbRule};
    use std::time::Duration;

    fn farm(groups: Vec<LbGroup>, vips: Vec<FarmVip>) -> Farm {
        Farm {
            pulse: Duration::from_millis(100),
            mlost_count: 20,
            slost_count: 10,
            lans: vec!["default".into()],
            vips,
            groups,
        }
    }

    fn group(rules: Vec<LbRule>) -> LbGroup {
        LbGroup {
            name: "web".into(),
            hosts: vec![("node1".into(), 2), ("node2".into(), 0)],
            rules,
        }
    }

    fn rule(port: Option<u16>, filter: LbFilter) -> LbRule {
        LbRule {
            port,
            proto: LbProto::Tcp,
            filter,
        }
    }

    fn vip(addr: &str) -> FarmVip {
        FarmVip {
            addr: addr.parse().unwrap(),
            virtual_mac: [0x5a, 0xfe, 1, 2, 3, 4],
            interface: None,
        }
    }

    fn settings(f: Farm) -> Result<FarmSettings, SettingsError> {
        FarmSettings::of(&f, &Cluster { lans: vec![] }, "node1")
    }

    #[test]
    fn one_group_one_vip() {
        let s = settings(farm(
            vec![group(vec![
                rule(Some(80), LbFilter::OnPort),
                rule(None, LbFilter::OnAddr),
            ])],
            vec![vip("10.0.0.10")],
        ))
        .unwrap();
        assert_eq!(
            s.membership.hosts,
            [Member::new("node1", 2), Member::new("node2", 0)]
        );
        assert_eq!(s.vip.as_ref().unwrap().addr, Ipv4Addr::new(10, 0, 0, 10));
        assert_eq!(s.tcp_mode(80), Some(FilterMode::OnPort));
        assert_eq!(s.tcp_mode(81), Some(FilterMode::OnAddr));
        assert_eq!(s.rules[1].port, 0);
    }

    #[test]
    fn what_this_build_cannot_run_is_named() {
        let two = farm(vec![group(vec![]), group(vec![])], vec![]);
        assert_eq!(settings(two).unwrap_err(), SettingsError::Groups(2));
        let v6 = farm(vec![], vec![vip("fd00::10")]);
        assert!(matches!(
            settings(v6).unwrap_err(),
            SettingsError::Ipv6Vip(_)
        ));
        let vips = farm(vec![], vec![vip("10.0.0.10"), vip("10.0.0.11")]);
        assert_eq!(settings(vips).unwrap_err(), SettingsError::Vips(2));
    }
}
