//! Farm modules: `<farm>`, the farm `<vip>` and its load-balancing groups.

use std::net::IpAddr;

use super::*;

/// Three nodes on two lans.
fn three() -> Cluster {
    parse_cluster(
        r#"<cluster><lans>
             <lan name="default"><node name="node1" addr="10.0.0.1"/><node name="node2" addr="10.0.0.2"/><node name="node3" addr="10.0.0.3"/></lan>
             <lan name="backup"><node name="node1" addr="10.1.0.1"/><node name="node2" addr="10.1.0.2"/><node name="node3" addr="10.1.0.3"/></lan>
           </lans></cluster>"#,
        Path::new("/etc/hakit/cluster.xml"),
    )
    .unwrap()
}

fn parse3(text: &str) -> Result<Module, String> {
    parse_module(text, Path::new(FILE), "web", &Roots::default(), &three())
        .map_err(|e| e.to_string())
}

fn err3(text: &str) -> String {
    match parse3(text) {
        Ok(m) => panic!("parsed: {m:?}"),
        Err(e) => e.strip_prefix(FILE).unwrap().to_string(),
    }
}

/// A farm module whose `<service mode="farm">` holds `inner`, which starts on line 3.
fn farm_service(inner: &str) -> String {
    format!("<safe>\n<service mode=\"farm\">\n{inner}\n</service>\n</safe>\n")
}

/// A farm `<vip>` with one address whose `<loadbalancing_list>` holds `groups` (on line 4
/// of the `<vip>`, i.e. line 6 of the file when given to `farm_service`).
fn vip_with(groups: &str) -> String {
    format!(
        "<vip><interface_list><interface><virtual_interface type=\"vmac_invisible\">\n\
         <virtual_addr addr=\"10.0.0.100\" where=\"alias\"/>\n\
         </virtual_interface></interface></interface_list>\n\
         <loadbalancing_list>{groups}</loadbalancing_list></vip>"
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn default_farm(lans: &[&str]) -> Farm {
    Farm {
        pulse: Duration::from_millis(100),
        mlost_count: 20,
        slost_count: 10,
        lans: lans.iter().map(|l| l.to_string()).collect(),
        vips: Vec::new(),
        groups: Vec::new(),
    }
}

#[test]
fn minimal_farm_gets_every_default() {
    // Two nodes are enough for a farm, as for a mirror.
    let m = parse("<safe><service mode=\"farm\"/></safe>").unwrap();
    assert_eq!(
        m,
        Module {
            mode: Mode::Farm,
            farm: Some(default_farm(&["default", "backup"])),
            ..defaults()
        }
    );
}

#[test]
fn full_farm_on_three_nodes() {
    let text = r#"<safe>
  <macro name="VIP" value="10.0.0.100"/>
  <service mode="farm" id="3" boot="on" maxloop="4">
    <farm pulse="200" mlost_count="30" slost_count="5">
      <lan name="backup"/>
    </farm>
    <vip>
      <interface_list>
        <interface check="on" arpreroute="on" name="eth0">
          <virtual_interface type="vmac_invisible">
            <virtual_addr addr="%VIP%" where="alias"/>
          </virtual_interface>
          <virtual_interface type="vmac_invisible" virtual_mac="5a-fe-00-00-00-01">
            <virtual_addr addr="fd00::1:2:3" where="alias"/>
          </virtual_interface>
        </interface>
      </interface_list>
      <loadbalancing_list>
        <group name="web">
          <cluster>
            <host name="node3" power="2"/>
            <host name="node1" power="0"/>
            <host name="node2"/>
          </cluster>
          <rule port="80" proto="tcp" filter="on_addr"/>
          <rule port="*" proto="udp" filter="on_port"/>
        </group>
        <group name="dns">
          <rule port="53" proto="tcp" filter="on_port"/>
        </group>
      </loadbalancing_list>
    </vip>
    <errd><proc name="nginx" class="both"/></errd>
  </service>
</safe>"#;
    let m = parse3(text).unwrap();
    let every = |h: &[(&str, u32)]| -> Vec<(String, u32)> {
        h.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    };
    let farm = Farm {
        pulse: Duration::from_millis(200),
        mlost_count: 30,
        slost_count: 5,
        lans: vec!["backup".into()],
        vips: vec![
            FarmVip {
                addr: ip("10.0.0.100"),
                virtual_mac: [0x5a, 0xfe, 10, 0, 0, 100],
                interface: Some("eth0".into()),
            },
            FarmVip {
                addr: ip("fd00::1:2:3"),
                virtual_mac: [0x5a, 0xfe, 0, 0, 0, 1],
                interface: Some("eth0".into()),
            },
        ],
        groups: vec![
            LbGroup {
                name: "web".into(),
                hosts: every(&[("node3", 2), ("node1", 0), ("node2", 1)]),
                rules: vec![
                    LbRule {
                        port: Some(80),
                        proto: LbProto::Tcp,
                        filter: LbFilter::OnAddr,
                    },
                    LbRule {
                        port: None,
                        proto: LbProto::Udp,
                        filter: LbFilter::OnPort,
                    },
                ],
            },
            LbGroup {
                name: "dns".into(),
                // No <cluster>: every node, power 1.
                hosts: every(&[("node1", 1), ("node2", 1), ("node3", 1)]),
                rules: vec![LbRule {
                    port: Some(53),
                    proto: LbProto::Tcp,
                    filter: LbFilter::OnPort,
                }],
            },
        ],
    };
    assert_eq!(m.mode, Mode::Farm);
    assert_eq!(m.id, 3);
    assert_eq!(m.maxloop, 4);
    assert_eq!(m.farm, Some(farm));
    // The mirror parts stay at their defaults.
    assert!(m.vips.is_empty());
    assert!(m.rfs.is_none());
    assert_eq!(m.defaultprim, DefaultPrim::Alone);
    assert_eq!(m.errd.procs.len(), 1);
}

#[test]
fn default_virtual_mac_matches_the_data_plane() {
    let m = parse3(&farm_service(&vip_with(
        "<group name=\"g\"><rule port=\"80\" proto=\"tcp\" filter=\"on_addr\"/></group>",
    )))
    .unwrap();
    let vip = &m.farm.unwrap().vips[0];
    assert_eq!(vip.virtual_mac, crate::farm::xdp::virtual_mac(vip.addr));
    assert_eq!(vip.interface, None);
}

#[test]
fn farm_element_only_in_farm_modules() {
    assert_eq!(
        err(&service("<farm/>")),
        format!(
            "{FILE}:3:1: service: <farm> is for farm modules (use <heart> for a mirror module's \
             heartbeat, or set mode=\"farm\")"
        )
    );
}

#[test]
fn farm_needs_two_nodes() {
    let one = parse_cluster(
        r#"<cluster><lans><lan name="default"><node name="a" addr="10.0.0.1"/></lan></lans></cluster>"#,
        Path::new("/etc/hakit/cluster.xml"),
    )
    .unwrap();
    let e = parse_module(
        "<safe>\n <service mode=\"farm\"/></safe>",
        Path::new(FILE),
        "web",
        &Roots::default(),
        &one,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:2:11: service: attribute mode=\"farm\": a farm module needs at least 2 nodes \
             in cluster.xml, which lists 1 (a)"
        )
    );
}

/// Each error, with the place it is reported at.
#[test]
fn farm_errors_name_their_place() {
    let rule = "<rule port=\"80\" proto=\"tcp\" filter=\"on_addr\"/>";
    let cases: Vec<(String, &str)> = vec![
        // <farm>
        (
            farm_service("<farm pulse=\"0\"/>"),
            ":3:7: farm: attribute pulse=\"0\": must be greater than zero",
        ),
        (
            farm_service("<farm mlost_count=\"0\"/>"),
            ":3:7: farm: attribute mlost_count=\"0\": must be at least 1",
        ),
        (
            farm_service("<farm>\n  <lan name=\"wan\"/></farm>"),
            ":4:8: lan: attribute name=\"wan\": no lan wan in cluster.xml (use one of: default, \
             backup)",
        ),
        (
            farm_service("<farm><lan name=\"default\"/>\n<lan name=\"default\"/></farm>"),
            ":4:6: lan: attribute name=\"default\": this lan is listed twice; keep one",
        ),
        (
            farm_service("<farm timeout=\"1\"/>"),
            ":3:7: farm: unknown attribute \"timeout\" (allowed: pulse, mlost_count, slost_count)",
        ),
        (
            farm_service("<farm><heartbeat/></farm>"),
            ":3:7: farm: unknown element <heartbeat> (allowed: lan)",
        ),
        (
            farm_service("<farm/><farm/>"),
            ":3:8: service: a second <farm> (the first is at 3:1); merge them into one",
        ),
        // Mirror-only parts in a farm, farm parts in a mirror.
        (
            farm_service("<heart/>"),
            ":3:1: service: <heart> is for mirror modules (use <farm pulse mlost_count \
             slost_count><lan name/></farm>)",
        ),
        (
            farm_service("<rfs/>"),
            ":3:1: service: <rfs> is for mirror modules (a farm module replicates nothing; use \
             a mirror module)",
        ),
        (
            "<safe><service mode=\"farm\" defaultprim=\"node1\"/></safe>".into(),
            ":1:28: service: attribute defaultprim=\"node1\": a farm module has no primary \
             (remove defaultprim)",
        ),
        (
            "<safe><service mode=\"farm\" splitbrain_winner=\"node1\"/></safe>".into(),
            ":1:28: service: attribute splitbrain_winner=\"node1\": a farm module has no \
             primary (remove splitbrain_winner)",
        ),
        // <vip> addresses
        (
            farm_service(
                "<vip><interface_list><interface><virtual_interface type=\"vmac_invisible\">\n<virtual_addr addr=\"10.0.0.100\" where=\"one_side_alias\"/></virtual_interface></interface></interface_list></vip>",
            ),
            ":4:33: virtual_addr: attribute where=\"one_side_alias\": expected alias for a farm \
             module",
        ),
        (
            farm_service(
                "<vip><interface_list><interface><virtual_interface type=\"vmac_invisible\">\n<virtual_addr addr=\"10.0.0.100\"/></virtual_interface></interface></interface_list></vip>",
            ),
            ":4:1: virtual_addr: attribute where is missing (add where=\"alias\")",
        ),
        (
            farm_service(
                "<vip><interface_list><interface><virtual_interface type=\"vmac\">\n</virtual_interface></interface></interface_list></vip>",
            ),
            ":3:52: virtual_interface: attribute type=\"vmac\": expected vmac_invisible for a \
             farm module",
        ),
        (
            farm_service(
                "<vip><interface_list><interface><virtual_interface type=\"vmac_invisible\" virtual_mac=\"5B:00:00:00:00:01\">\n</virtual_interface></interface></interface_list></vip>",
            ),
            ":3:74: virtual_interface: attribute virtual_mac=\"5B:00:00:00:00:01\": a multicast \
             MAC address cannot be a virtual MAC (the first byte must be even)",
        ),
        (
            farm_service(
                "<vip><interface_list><interface><real_interface/></interface></interface_list></vip>",
            ),
            ":3:33: interface: unknown element <real_interface> (allowed: virtual_interface)",
        ),
        (
            farm_service(
                "<vip><interface_list><interface><virtual_interface type=\"vmac_invisible\">\n<virtual_addr addr=\"10.0.0.100\" where=\"alias\"/>\n<virtual_addr addr=\"10.0.0.100\" where=\"alias\"/></virtual_interface></interface></interface_list></vip>",
            ),
            ":5:15: virtual_addr: attribute addr=\"10.0.0.100\": this virtual address is given \
             twice; keep one",
        ),
        (
            farm_service("<vip/>"),
            ":3:1: vip: no <virtual_addr> (add <interface_list><interface><virtual_interface \
             type=\"vmac_invisible\"><virtual_addr addr=\"10.0.0.100\" where=\"alias\"/>..., or \
             remove <vip> if clients reach the farm through a load balancer's health check)",
        ),
        // Load balancing
        (
            farm_service(&vip_with("")),
            ":3:1: vip: no load-balancing <group> (add <loadbalancing_list><group name=\"web\">\
             <rule port=\"80\" proto=\"tcp\" filter=\"on_addr\"/></group></loadbalancing_list>)",
        ),
        (
            farm_service(&vip_with("<group name=\"web\"/>")),
            ":6:21: group: no <rule> (add <rule port=\"80\" proto=\"tcp\" filter=\"on_addr\"/>)",
        ),
        (
            farm_service(&vip_with(&format!(
                "<group name=\"web\">{rule}</group><group name=\"web\">{rule}</group>"
            ))),
            ":6:100: group: attribute name=\"web\": another group has this name; rename one",
        ),
        (
            farm_service(&vip_with(&format!(
                "<group name=\"web\"><cluster><host name=\"node4\"/></cluster>{rule}</group>"
            ))),
            ":6:54: host: attribute name=\"node4\": node4 is not a node of cluster.xml (use one \
             of: node1, node2, node3)",
        ),
        (
            farm_service(&vip_with(&format!(
                "<group name=\"web\"><cluster><host name=\"node1\"/><host name=\"node1\"/></cluster>{rule}</group>"
            ))),
            ":6:74: host: attribute name=\"node1\": this host is listed twice; keep one",
        ),
        (
            farm_service(&vip_with(&format!(
                "<group name=\"web\"><cluster><host name=\"node1\" power=\"-1\"/></cluster>{rule}</group>"
            ))),
            ":6:67: host: attribute power=\"-1\": expected a whole number",
        ),
        (
            farm_service(&vip_with(&format!(
                "<group name=\"web\"><cluster/>{rule}</group>"
            ))),
            ":6:39: cluster: no <host> (add <host name=\"node1\" power=\"1\"/> per node, or \
             remove <cluster> to balance over every node)",
        ),
        (
            farm_service(&vip_with(
                "<group name=\"web\"><rule port=\"0\" proto=\"tcp\" filter=\"on_addr\"/></group>",
            )),
            ":6:45: rule: attribute port=\"0\": expected a port from 1 to 65535, or * for every \
             port",
        ),
        (
            farm_service(&vip_with(
                "<group name=\"web\"><rule port=\"80\" proto=\"sctp\" filter=\"on_addr\"/></group>",
            )),
            ":6:55: rule: attribute proto=\"sctp\": expected tcp or udp",
        ),
        (
            farm_service(&vip_with(
                "<group name=\"web\"><rule port=\"80\" proto=\"tcp\" filter=\"on_ip\"/></group>",
            )),
            ":6:67: rule: attribute filter=\"on_ip\": expected on_addr or on_port",
        ),
        (
            farm_service(&vip_with(
                "<group name=\"web\"><rule port=\"80\" proto=\"tcp\"/></group>",
            )),
            ":6:39: rule: attribute filter is missing (add filter=\"on_addr\")",
        ),
        (
            farm_service(&vip_with(
                "<group name=\"web\"><rule port=\"80\" proto=\"tcp\" filter=\"on_addr\" weight=\"1\"/></group>",
            )),
            ":6:84: rule: unknown attribute \"weight\" (allowed: port, proto, filter)",
        ),
        (
            farm_service(&vip_with(&format!(
                "<group name=\"a\">{rule}</group><group name=\"b\">{rule}</group>"
            ))),
            ":6:107: rule: tcp port 80 already has a rule in this module; keep one",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, want)| err3(text) != *want)
        .map(|(text, want)| format!("in:\n{text}\nwant: {want}\ngot:  {}", err3(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
