use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn minimal_module_gets_every_default() {
    assert_eq!(
        parse("<safe><service mode=\"mirror\"/></safe>").unwrap(),
        defaults()
    );
}

const FULL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE safe>
<safe>
  <macro name="VIP" value="10.0.0.100"/>
  <macro name="APP" value="/srv/app"/>
  <service mode="mirror" id="2" failover="off" defaultprim="node2" splitbrain_winner="node1" maxloop="5"
           loop_interval="12" boot="auto">
    <heart pulse="100ms" timeout="1s">
      <heartbeat name="backup"/>
      <heartbeat name="default" ident="flow"/>
    </heart>
    <vip>
      <interface_list>
        <interface check="off" arpreroute="on" name="eth0">
          <real_interface>
            <virtual_addr addr="%VIP%" where="one_side_alias"/>
          </real_interface>
        </interface>
        <interface arpreroute="off">
          <virtual_addr addr="fd00::100"/>
        </interface>
      </interface_list>
    </vip>
    <errd polltimer="5">
      <proc name="nginx" atleast="2" atmax="8" action="stopstart" class="both"/>
      <proc name="/usr/bin/worker --x"/>
    </errd>
    <check>
      <tcp ident="web" when="both" action="restart">
        <to addr="%VIP%" port="80" interval="5" timeout="2s"/>
      </tcp>
      <ping ident="gw" action="stop"><to addr="10.0.0.254"/></ping>
      <custom ident="probe" exec="probe.sh" arg="-q  --db %APP%/db" when="prim" action="stopstart"/>
      <custom ident="abs" exec="/usr/local/bin/check"/>
      <splitbrain ident="witness" exec="ping" arg="10.0.0.254 10.0.0.253"/>
    </check>
    <rfs async="none" nbrei="3" ruzone_blocksize="1048576" reiallowedbw="100"
         mountover="off" acl="off" syncat="">
      <replicated dir="%APP%/data/" mode="read_only"/>
      <replicated dir="/srv/app/logs"/>
    </rfs>
    <user nicestoptimeout="1m" forcestoptimeout="30" logging="userlog"/>
  </service>
</safe>
"#;

#[test]
fn full_example() {
    let expected = Module {
        id: 2,
        failover: false,
        defaultprim: DefaultPrim::Node("node2".into()),
        splitbrain_winner: SplitBrainWinner::Node("node1".into()),
        maxloop: 5,
        loop_interval: Duration::from_secs(12 * 3600),
        heart: Heart {
            pulse: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            heartbeats: vec![
                HeartbeatNet {
                    lan: "backup".into(),
                    ident: None,
                },
                HeartbeatNet {
                    lan: "default".into(),
                    ident: Some("flow".into()),
                },
            ],
        },
        vips: vec![
            Vip {
                addr: ip("10.0.0.100"),
                interface: Some("eth0".into()),
                arpreroute: true,
                check: false,
            },
            Vip {
                addr: ip("fd00::100"),
                interface: None,
                arpreroute: false,
                check: true,
            },
        ],
        errd: Errd {
            polltimer: Duration::from_secs(5),
            procs: vec![
                ProcCheck {
                    name: "nginx".into(),
                    atleast: 2,
                    atmax: Some(8),
                    action: CheckAction::Stopstart,
                    class: CheckClass::Both,
                },
                ProcCheck {
                    name: "/usr/bin/worker --x".into(),
                    atleast: 1,
                    atmax: None,
                    action: CheckAction::Restart,
                    class: CheckClass::Prim,
                },
            ],
        },
        checks: vec![
            Check {
                ident: "web".into(),
                kind: CheckKind::Tcp {
                    addr: ip("10.0.0.100"),
                    port: 80,
                },
                when: CheckClass::Both,
                action: CheckAction::Restart,
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
            },
            Check {
                ident: "gw".into(),
                kind: CheckKind::Ping {
                    addr: ip("10.0.0.254"),
                },
                when: CheckClass::Prim,
                action: CheckAction::Stop,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            },
            Check {
                ident: "probe".into(),
                kind: CheckKind::Custom {
                    exec: PathBuf::from("/etc/hakit/modules/web/bin/probe.sh"),
                    args: vec!["-q".into(), "--db".into(), "/srv/app/db".into()],
                },
                when: CheckClass::Prim,
                action: CheckAction::Stopstart,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            },
            Check {
                ident: "abs".into(),
                kind: CheckKind::Custom {
                    exec: PathBuf::from("/usr/local/bin/check"),
                    args: Vec::new(),
                },
                when: CheckClass::Prim,
                action: CheckAction::Wait,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            },
        ],
        splitbrain: Some(SplitBrain {
            ident: "witness".into(),
            witnesses: vec![ip("10.0.0.254"), ip("10.0.0.253")],
        }),
        rfs: Some(Rfs {
            ack: AckLevel::None,
            sendtimeout: None,
            nbrei: 3,
            ruzone_blocksize: 1 << 20,
            reiallowedbw: Some(100 * 1024),
            replicated: vec![
                Replicated {
                    dir: PathBuf::from("/srv/app/data"),
                    read_only_on_second: true,
                },
                Replicated {
                    dir: PathBuf::from("/srv/app/logs"),
                    read_only_on_second: false,
                },
            ],
        }),
        user: User {
            nicestoptimeout: Duration::from_secs(60),
            forcestoptimeout: Duration::from_secs(30),
        },
        ..defaults()
    };
    assert_eq!(parse(FULL).unwrap(), expected);
}

#[test]
fn sub_element_defaults() {
    let m = parse(&service(
        r#"<heart/>
<vip><interface_list><interface><real_interface><virtual_addr addr="10.0.0.100"/></real_interface></interface></interface_list></vip>
<errd><proc name="app"/></errd>
<check><tcp ident="t"><to addr="10.0.0.1" port="80"/></tcp><custom ident="c" exec="c.sh"/></check>
<rfs><replicated dir="/data"/></rfs>
<user/>"#,
    ))
    .unwrap();
    assert_eq!(m.heart, defaults().heart);
    assert_eq!(
        m.vips,
        [Vip {
            addr: ip("10.0.0.100"),
            interface: None,
            arpreroute: true,
            check: true,
        }]
    );
    assert_eq!(
        m.errd.procs,
        [ProcCheck {
            name: "app".into(),
            atleast: 1,
            atmax: None,
            action: CheckAction::Restart,
            class: CheckClass::Prim,
        }]
    );
    assert_eq!(m.errd.polltimer, Duration::from_secs(10));
    for check in &m.checks {
        assert_eq!(check.when, CheckClass::Prim);
        assert_eq!(check.action, CheckAction::Wait);
        assert_eq!(check.interval, Duration::from_secs(10));
        assert_eq!(check.timeout, Duration::from_secs(5));
    }
    assert_eq!(
        m.checks[1].kind,
        CheckKind::Custom {
            exec: PathBuf::from("/etc/hakit/modules/web/bin/c.sh"),
            args: Vec::new(),
        }
    );
    assert_eq!(
        m.rfs,
        Some(Rfs {
            ack: AckLevel::Second,
            sendtimeout: None,
            nbrei: 6,
            ruzone_blocksize: 8 << 20,
            reiallowedbw: None,
            replicated: vec![Replicated {
                dir: PathBuf::from("/data"),
                read_only_on_second: false,
            }],
        })
    );
    assert_eq!(m.user, defaults().user);
}

#[test]
fn bare_numbers_keep_historical_units() {
    let m = parse(
        "<safe><service mode=\"mirror\" loop_interval=\"2\">\
         <heart pulse=\"500\" timeout=\"5000\"/><errd polltimer=\"3\"/>\
         <check><ping ident=\"p\"><to addr=\"10.0.0.1\" interval=\"7\" timeout=\"4\"/></ping></check>\
         <user nicestoptimeout=\"20\" forcestoptimeout=\"40\"/></service></safe>",
    )
    .unwrap();
    assert_eq!(m.loop_interval, Duration::from_secs(2 * 3600));
    assert_eq!(m.heart.pulse, Duration::from_millis(500));
    assert_eq!(m.heart.timeout, Duration::from_secs(5));
    assert_eq!(m.errd.polltimer, Duration::from_secs(3));
    assert_eq!(m.checks[0].interval, Duration::from_secs(7));
    assert_eq!(m.checks[0].timeout, Duration::from_secs(4));
    assert_eq!(m.user.nicestoptimeout, Duration::from_secs(20));
    assert_eq!(m.user.forcestoptimeout, Duration::from_secs(40));
}

#[test]
fn defaultprim_values() {
    let prim = |v: &str| {
        parse(&format!(
            "<safe><service mode=\"mirror\" defaultprim=\"{v}\"/></safe>"
        ))
    };
    assert_eq!(prim("alone").unwrap().defaultprim, DefaultPrim::Alone);
    assert_eq!(prim("lastprim").unwrap().defaultprim, DefaultPrim::LastPrim);
    assert_eq!(
        prim("node1").unwrap().defaultprim,
        DefaultPrim::Node("node1".into())
    );
    assert_eq!(
        prim("node3").unwrap_err(),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:30: service: attribute \
         defaultprim=\"node3\": node3 is not a node of cluster.xml (use alone, lastprim or one \
         of: node1, node2)"
    );
}

#[test]
fn splitbrain_winner_values() {
    let winner = |v: &str| {
        parse(&format!(
            "<safe><service mode=\"mirror\" splitbrain_winner=\"{v}\"/></safe>"
        ))
    };
    assert_eq!(
        winner("longest").unwrap().splitbrain_winner,
        SplitBrainWinner::Longest
    );
    assert_eq!(
        winner("node2").unwrap().splitbrain_winner,
        SplitBrainWinner::Node("node2".into())
    );
    assert_eq!(
        winner("most").unwrap_err(),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:30: service: attribute \
         splitbrain_winner=\"most\": most is not a node of cluster.xml (use longest or one of: \
         node1, node2)"
    );
}

#[test]
fn time_with_unknown_unit() {
    assert_eq!(
        err(&service("  <heart pulse=\"700\" timeout=\"3x\"/>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:22: heart: attribute timeout=\"3x\": \
         unknown time unit \"x\" (use d, h, m, s, ms or us, e.g. \"30s\")"
    );
}

#[test]
fn heart_timeout_must_cover_two_pulses() {
    assert_eq!(
        err(&service("<heart pulse=\"1s\" timeout=\"1500ms\"/>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:19: heart: timeout 1.5s is less than \
         twice the pulse 1s: one lost heartbeat would declare the peer dead (raise timeout or \
         lower pulse)"
    );
    assert!(parse(&service("<heart pulse=\"1s\" timeout=\"2s\"/>")).is_ok());
    assert!(
        err(&service("<heart pulse=\"0\"/>"))
            .contains("attribute pulse=\"0\": must be greater than zero")
    );
}

#[test]
fn heartbeat_on_unknown_lan() {
    assert_eq!(
        err(&service("<heart>\n  <heartbeat name=\"lan9\"/>\n</heart>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:14: heartbeat: attribute name=\"lan9\": \
         no lan lan9 in cluster.xml (use one of: default, backup)"
    );
}

#[test]
fn heartbeat_duplicates() {
    assert_eq!(
        err(&service(
            "<heart><heartbeat name=\"default\"/><heartbeat name=\"default\"/></heart>"
        )),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:46: heartbeat: attribute \
         name=\"default\": this lan already has a heartbeat; keep one"
    );
    assert_eq!(
        err(&service(
            "<heart><heartbeat name=\"default\" ident=\"flow\"/><heartbeat name=\"backup\" ident=\"flow\"/></heart>"
        )),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:73: heartbeat: a second ident=\"flow\": \
         only one network carries replication"
    );
}

#[test]
fn mode_must_be_mirror_or_farm() {
    assert_eq!(
        err("<safe><service mode=\"light\"/></safe>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:16: service: attribute mode=\"light\": \
         expected mirror or farm"
    );
    assert_eq!(
        err("<safe><service/></safe>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:7: service: attribute mode is missing \
         (add mode=\"mirror\")"
    );
}

#[test]
fn mirror_needs_two_nodes() {
    let three = parse_cluster(
        r#"<cluster><lans><lan name="default"><node name="a" addr="10.0.0.1"/><node name="b" addr="10.0.0.2"/><node name="c" addr="10.0.0.3"/></lan></lans></cluster>"#,
        Path::new("/etc/hakit/cluster.xml"),
    )
    .unwrap();
    let e = parse_module(
        "<safe>\n <service mode=\"mirror\"/></safe>",
        Path::new(FILE),
        "web",
        &Roots::default(),
        &three,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/hakit/modules/web/conf/userconfig.xml:2:11: service: attribute mode=\"mirror\": \
         a mirror module needs exactly 2 nodes in cluster.xml, which lists 3 (a, b, c)"
    );
}

#[test]
fn service_attributes() {
    let svc = |attrs: &str| parse(&format!("<safe><service mode=\"mirror\" {attrs}/></safe>"));
    for boot in ["ignore", "on", "off", "auto"] {
        assert_eq!(svc(&format!("boot=\"{boot}\"")).unwrap(), defaults());
    }
    assert!(
        svc("boot=\"yes\"")
            .unwrap_err()
            .ends_with("service: attribute boot=\"yes\": expected ignore, on, off or auto")
    );
    assert_eq!(svc("id=\"14984\"").unwrap().id, 14984);
    for id in ["0", "14985", "70000", "x"] {
        assert!(
            svc(&format!("id=\"{id}\""))
                .unwrap_err()
                .ends_with(&format!(
                    "service: attribute id=\"{id}\": expected a whole number from 1 to 14984 (it \
                 selects the module's ports)"
                )),
            "{id}"
        );
    }
    assert!(
        svc("failover=\"no\"")
            .unwrap_err()
            .ends_with("expected on or off")
    );
    assert_eq!(svc("maxloop=\"0\"").unwrap().maxloop, 0);
    assert_eq!(
        svc("loop_interval=\"30m\"").unwrap().loop_interval,
        Duration::from_secs(1800)
    );
}

#[test]
fn unknown_element() {
    assert_eq!(
        err(&service("  <notify/>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:3: service: unknown element <notify> \
         (allowed: heart, farm, vip, errd, check, rfs, user, failover)"
    );
    assert_eq!(
        err("<safe>\n<module/></safe>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:2:1: safe: unknown element <module> \
         (allowed: macro, service)"
    );
    assert_eq!(
        err(&service("<check><intf ident=\"i\"/></check>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:8: check: unknown element <intf> \
         (allowed: tcp, ping, custom, splitbrain)"
    );
    assert_eq!(
        err(&service(
            "<rfs><replicated dir=\"/d\"><notreplicated path=\"x\"/></replicated></rfs>"
        )),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:27: replicated: unknown element \
         <notreplicated> (<replicated> takes no child elements)"
    );
}

#[test]
fn unknown_attribute() {
    assert_eq!(
        err(&service("  <heart pulse=\"700\" beat=\"1\"/>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:22: heart: unknown attribute \"beat\" \
         (allowed: pulse, timeout)"
    );
    assert_eq!(
        err("<safe><service mode=\"mirror\" color=\"red\"/></safe>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:30: service: unknown attribute \"color\" \
         (allowed: mode, id, failover, defaultprim, splitbrain_winner, maxloop, loop_interval, \
         boot)"
    );
}

#[test]
fn failover_rules_are_not_supported() {
    assert_eq!(
        err(&service(
            "<failover><![CDATA[ x: if (a) then stop(); ]]></failover>"
        )),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:11: unexpected text: hakit configuration \
         files hold only elements and attributes (remove it, or make it a <!-- comment -->)"
    );
    assert_eq!(
        err(&service("<failover/>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:1: service: <failover> rules are not \
         supported by this build yet (remove <failover>; the built-in decisions apply)"
    );
}

#[test]
fn bad_xml() {
    assert_eq!(
        err("<safe>\n<service mode=\"mirror\">\n<heart>\n</service>\n</safe>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:1: malformed XML: ill-formed document: \
         expected `</heart>`, but `</service>` was found"
    );
    assert!(
        err("<safe").starts_with("/etc/hakit/modules/web/conf/userconfig.xml:1:1: malformed XML")
    );
}

#[test]
fn document_structure() {
    assert_eq!(
        err("<service mode=\"mirror\"/>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:1: the root element is <service>; \
         userconfig.xml holds <safe><service ...>...</service></safe>"
    );
    assert_eq!(
        err("<safe/>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:1:1: safe: <service> is missing (add \
         <service mode=\"mirror\">...</service>)"
    );
    assert_eq!(
        err("<safe><service mode=\"mirror\"/>\n<service mode=\"mirror\"/></safe>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:2:1: safe: a second <service> (the first \
         is at 1:7); merge them into one"
    );
    assert!(err(&service("<heart/><heart/>")).contains("service: a second <heart>"));
}

#[test]
fn macros_are_substituted() {
    let m = parse(
        "<safe><macro name=\"LAN\" value=\"backup\"/><service mode=\"mirror\">\
         <heart><heartbeat name=\"%LAN%\"/></heart></service></safe>",
    )
    .unwrap();
    assert_eq!(m.heart.heartbeats[0].lan, "backup");
    assert_eq!(
        err(&service("<heart>\n<heartbeat name=\"%LAN%\"/></heart>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:12: heartbeat: attribute name=\"%LAN%\": \
         macro %LAN% is not defined (define it under <safe> with <macro name=\"LAN\" \
         value=\"...\"/>)"
    );
}

#[test]
fn vip_placeholder() {
    let text = service(
        "<vip><interface_list><interface check=\"on\" arpreroute=\"on\"><real_interface>\n    \
         <virtual_addr addr=\"VIRTUAL_TO_BE_DEFINED\" where=\"one_side_alias\"/>\n\
         </real_interface></interface></interface_list></vip>",
    );
    assert_eq!(
        err(&text),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:19: virtual_addr: attribute \
         addr=\"VIRTUAL_TO_BE_DEFINED\": replace VIRTUAL_TO_BE_DEFINED with the module's virtual \
         IP address (e.g. addr=\"10.0.0.100\")"
    );
}

#[test]
fn vip_without_address() {
    let no_addr =
        "<vip>\n<interface_list><interface><real_interface/></interface></interface_list></vip>";
    for text in ["<vip/>", no_addr] {
        let e = err(&service(text));
        assert!(
            e.starts_with(
                "/etc/hakit/modules/web/conf/userconfig.xml:3:1: vip: no <virtual_addr> (add \
                 <interface_list><interface><real_interface><virtual_addr addr=\"10.0.0.100\" \
                 where=\"one_side_alias\"/>..., or remove <vip>"
            ),
            "{e}"
        );
    }
}

#[test]
fn vip_errors() {
    let vip = |inner: &str| {
        err(&service(&format!(
            "<vip><interface_list><interface>{inner}</interface></interface_list></vip>"
        )))
    };
    assert_eq!(
        vip("<virtual_addr addr=\"10.0.0.9\" where=\"alias\"/>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:63: virtual_addr: attribute \
         where=\"alias\": expected one_side_alias for a mirror module"
    );
    assert!(vip("<virtual_addr addr=\"vip.example.com\"/>").contains("not an IP address"));
    assert!(vip("<virtual_addr/>").contains("virtual_addr: attribute addr is missing"));
    assert!(
        vip("<virtual_addr addr=\"10.0.0.9\"/><virtual_addr addr=\"10.0.0.9\"/>")
            .contains("this virtual address is given twice")
    );
    assert!(
        vip("<real_interface><vmac/></real_interface>")
            .contains("real_interface: unknown element <vmac> (allowed: virtual_addr)")
    );
    assert!(
        err(&service(
            "<vip><interface_list><interface check=\"maybe\"/></interface_list></vip>"
        ))
        .contains("interface: attribute check=\"maybe\": expected on or off")
    );
}

#[test]
fn errd_procs() {
    let procs = |p: &str| parse(&service(&format!("<errd>{p}</errd>"))).map(|m| m.errd.procs);
    let p = procs("<proc name=\"a\" atmax=\"-1\"/><proc name=\"b\" atleast=\"0\" atmax=\"0\" action=\"stop\"/>")
        .unwrap();
    assert_eq!(p[0].atmax, None);
    assert_eq!(
        (p[1].atleast, p[1].atmax, p[1].action),
        (0, Some(0), CheckAction::Stop)
    );
    assert_eq!(
        procs("<proc name=\"a\" atleast=\"2\" atmax=\"1\"/>").unwrap_err(),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:34: proc: atmax is below atleast (2): no \
         process count can satisfy both"
    );
    assert!(
        procs("<proc name=\"a\" action=\"wait\"/>")
            .unwrap_err()
            .ends_with("proc: attribute action=\"wait\": expected restart, stopstart or stop")
    );
    assert!(
        procs("<proc name=\"a\" class=\"second\"/>")
            .unwrap_err()
            .ends_with("proc: attribute class=\"second\": expected prim or both")
    );
    assert!(
        procs("<proc name=\"a\" atmax=\"-2\"/>")
            .unwrap_err()
            .ends_with("expected a whole number (or -1 for no upper bound)")
    );
    assert!(
        procs("<proc/>")
            .unwrap_err()
            .contains("proc: attribute name is missing")
    );
}

#[test]
fn check_errors() {
    let check = |c: &str| err(&service(&format!("<check>\n{c}\n</check>")));
    assert_eq!(
        check(
            "<ping ident=\"a\"><to addr=\"10.0.0.1\"/></ping>\n<tcp ident=\"a\"><to addr=\"10.0.0.1\" port=\"1\"/></tcp>"
        ),
        "/etc/hakit/modules/web/conf/userconfig.xml:5:6: tcp: attribute ident=\"a\": ident \
         already used at 4:7; give each checker its own ident"
    );
    assert_eq!(
        check("<tcp ident=\"t\"/>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:1: tcp: <to> is missing (add <to \
         addr=\"10.0.0.1\" port=\"80\"/>)"
    );
    assert!(
        check("<ping ident=\"p\"><to addr=\"10.0.0.1\" port=\"80\"/></ping>")
            .contains("to: unknown attribute \"port\" (allowed: addr, interval, timeout)")
    );
    assert!(
        check("<tcp ident=\"t\"><to addr=\"10.0.0.1\" port=\"0\"/></tcp>")
            .contains("to: attribute port=\"0\": must be at least 1")
    );
    assert!(
        check("<tcp ident=\"t\"><to addr=\"10.0.0.1\"/></tcp>")
            .contains("to: attribute port is missing (add port=\"80\")")
    );
    assert!(
        check("<ping ident=\"p\" when=\"second\"><to addr=\"10.0.0.1\"/></ping>")
            .contains("ping: attribute when=\"second\": expected prim or both")
    );
    assert!(
        check("<ping ident=\"p\" action=\"reboot\"><to addr=\"10.0.0.1\"/></ping>")
            .contains("expected wait, restart, stopstart or stop")
    );
    assert!(check("<custom exec=\"x\"/>").contains("custom: attribute ident is missing"));
    assert!(check("<custom ident=\"c\"/>").contains("custom: attribute exec is missing"));
    assert!(
        check("<custom ident=\"c\" exec=\"c\" interval=\"1\"/>").contains(
            "custom: unknown attribute \"interval\" (allowed: ident, when, action, exec, arg)"
        )
    );
}

#[test]
fn splitbrain() {
    let sb = |c: &str| parse(&service(&format!("<check>\n{c}\n</check>")));
    assert_eq!(
        sb("<splitbrain ident=\"s\" arg=\" 10.0.0.254\"/>")
            .unwrap()
            .splitbrain,
        Some(SplitBrain {
            ident: "s".into(),
            witnesses: vec![ip("10.0.0.254")],
        })
    );
    assert_eq!(
        sb("<splitbrain ident=\"s\" exec=\"ping\" arg=\"10.0.0.254\"/>\n<splitbrain ident=\"t\" arg=\"10.0.0.253\"/>")
            .unwrap_err(),
        "/etc/hakit/modules/web/conf/userconfig.xml:5:1: check: a second <splitbrain>: one list \
         of witnesses is enough (put every witness in its arg)"
    );
    assert_eq!(
        sb("<splitbrain ident=\"s\" exec=\"arping\" arg=\"10.0.0.254\"/>").unwrap_err(),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:23: splitbrain: attribute \
         exec=\"arping\": expected ping (witnesses are pinged)"
    );
    assert_eq!(
        sb("<splitbrain ident=\"s\" arg=\"10.0.0.254 gateway\"/>").unwrap_err(),
        "/etc/hakit/modules/web/conf/userconfig.xml:4:23: splitbrain: attribute \
         arg=\"10.0.0.254 gateway\": witness gateway: not an IP address (write it as digits, \
         e.g. 10.0.0.1 or fd00::1; host names are not resolved)"
    );
    assert!(
        sb("<splitbrain ident=\"s\" arg=\"\"/>")
            .unwrap_err()
            .ends_with("list at least one witness address, separated by spaces")
    );
    assert!(
        sb("<splitbrain ident=\"s\" arg=\"10.0.0.1 10.0.0.1\"/>")
            .unwrap_err()
            .ends_with("witness 10.0.0.1 is listed twice")
    );
    assert!(
        sb("<splitbrain ident=\"s\" arg=\"10.0.0.1\" when=\"both\"/>")
            .unwrap_err()
            .contains("splitbrain: unknown attribute \"when\" (allowed: ident, exec, arg)")
    );
}

#[test]
fn rfs_values() {
    let rfs = |r: &str| parse(&service(r)).map(|m| m.rfs);
    let r = rfs("<rfs reiallowedbw=\"0\" mountover=\"on\" acl=\"on\" syncat=\"daily 1:00\"><replicated dir=\"/d\"/></rfs>")
        .unwrap()
        .unwrap();
    assert_eq!(r.reiallowedbw, None);
    assert!(
        rfs("<rfs async=\"first\"><replicated dir=\"/d\"/></rfs>")
            .unwrap_err()
            .ends_with("rfs: attribute async=\"first\": expected second or none")
    );
    assert!(
        rfs("<rfs nbrei=\"0\"><replicated dir=\"/d\"/></rfs>")
            .unwrap_err()
            .ends_with("rfs: attribute nbrei=\"0\": must be at least 1")
    );
    assert!(
        rfs("<rfs mountover=\"auto\"><replicated dir=\"/d\"/></rfs>")
            .unwrap_err()
            .ends_with("expected on or off")
    );
    assert!(
        rfs("<rfs reiallowedbw=\"18446744073709551615\"><replicated dir=\"/d\"/></rfs>")
            .unwrap_err()
            .ends_with("number too large")
    );
    let timeout = |v: &str| {
        rfs(&format!(
            "<rfs sendtimeout=\"{v}\"><replicated dir=\"/d\"/></rfs>"
        ))
        .map(|r| r.and_then(|r| r.sendtimeout))
    };
    assert_eq!(timeout("2"), Ok(Some(std::time::Duration::from_secs(2))));
    assert_eq!(
        timeout("500ms"),
        Ok(Some(std::time::Duration::from_millis(500)))
    );
    assert!(timeout("0").unwrap_err().contains("sendtimeout"));
    assert!(
        rfs("<rfs sndtimeout=\"1\"><replicated dir=\"/d\"/></rfs>")
            .unwrap_err()
            .contains("rfs: unknown attribute \"sndtimeout\"")
    );
    assert!(
        rfs("<rfs><replicated dir=\"/d\" mode=\"rw\"/></rfs>")
            .unwrap_err()
            .ends_with("replicated: attribute mode=\"rw\": expected read_only (or leave mode out)")
    );
}

#[test]
fn replicated_dirs() {
    let dirs = |d: &str| {
        err(&service(&format!(
            "<rfs>\n<replicated dir=\"/srv/a\"/>\n{d}\n</rfs>"
        )))
    };
    assert_eq!(
        dirs("<replicated dir=\"/srv/a/\"/>"),
        "/etc/hakit/modules/web/conf/userconfig.xml:5:13: replicated: attribute \
         dir=\"/srv/a/\": the same as /srv/a (at 4:13): replicated dirs must be distinct and \
         not inside one another"
    );
    assert!(dirs("<replicated dir=\"/srv/a/b\"/>").contains("nested with /srv/a (at 4:13)"));
    assert!(dirs("<replicated dir=\"/srv\"/>").contains("nested with /srv/a (at 4:13)"));
    assert!(
        parse(&service(
            "<rfs><replicated dir=\"/srv/a\"/><replicated dir=\"/srv/ab\"/></rfs>"
        ))
        .is_ok()
    );
    assert!(dirs("<replicated dir=\"data\"/>").ends_with(
        "replicated: attribute dir=\"data\": must be an absolute path (starting with /)"
    ));
    assert!(
        dirs("<replicated dir=\"/x/../srv/a\"/>")
            .ends_with("must not contain .. (write the real path)")
    );
    assert!(
        dirs("<replicated dir=\"/\"/>")
            .ends_with("cannot replicate / (name the application's folders)")
    );
    assert_eq!(
        err(&service("<rfs async=\"second\"/>")),
        "/etc/hakit/modules/web/conf/userconfig.xml:3:1: rfs: no <replicated dir=\"...\"/> (add \
         one per folder to replicate, or remove <rfs>)"
    );
}

#[test]
fn user_values() {
    assert!(parse(&service("<user logging=\"userlog\"/>")).is_ok());
    assert!(err(&service("<user logging=\"syslog\"/>")).ends_with(
        "user: attribute logging=\"syslog\": expected userlog (scripts' output always goes to \
         the application log)"
    ));
    assert!(err(&service("<user nicestoptimeout=\"soon\"/>")).ends_with(
        "user: attribute nicestoptimeout=\"soon\": not a time (write a whole number with an \
         optional unit, e.g. \"30s\")"
    ));
    assert_eq!(
        parse(&service("<user nicestoptimeout=\"0\"/>"))
            .unwrap()
            .user
            .nicestoptimeout,
        Duration::ZERO
    );
}

/// Damaged files (cut anywhere, or missing any one character) give an error, never a panic.
#[test]
fn damaged_files_never_panic() {
    let cluster = cluster();
    let roots = Roots::default();
    let try_parse = |text: &str| {
        let _ = parse_module(text, Path::new(FILE), "web", &roots, &cluster);
    };
    for (i, c) in FULL.char_indices() {
        try_parse(&FULL[..i]);
        try_parse(&format!("{}{}", &FULL[..i], &FULL[i + c.len_utf8()..]));
    }
}
