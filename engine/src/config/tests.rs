//! Tests of `userconfig.xml` validation and of loading from disk, through the public API.

mod farm;
mod load;
mod seed;
mod userconfig;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const FILE: &str = "/etc/hakit/modules/web/conf/userconfig.xml";

/// Two nodes on two lans.
fn cluster() -> Cluster {
    parse_cluster(
        r#"<cluster><lans>
             <lan name="default"><node name="node1" addr="10.0.0.1"/><node name="node2" addr="10.0.0.2"/></lan>
             <lan name="backup"><node name="node1" addr="10.1.0.1"/><node name="node2" addr="10.1.0.2"/></lan>
           </lans></cluster>"#,
        Path::new("/etc/hakit/cluster.xml"),
    )
    .unwrap()
}

fn parse(text: &str) -> Result<Module, String> {
    parse_module(text, Path::new(FILE), "web", &Roots::default(), &cluster())
        .map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(m) => panic!("parsed: {m:?}"),
        Err(e) => e,
    }
}

/// A module whose `<service mode="mirror">` holds `inner`, which starts on line 3.
fn service(inner: &str) -> String {
    format!("<safe>\n<service mode=\"mirror\">\n{inner}\n</service>\n</safe>\n")
}

/// The module `<safe><service mode="mirror"/></safe>` parses to.
fn defaults() -> Module {
    Module {
        name: "web".into(),
        id: 1,
        mode: Mode::Mirror,
        failover: true,
        defaultprim: DefaultPrim::Alone,
        splitbrain_winner: SplitBrainWinner::Longest,
        maxloop: 3,
        loop_interval: Duration::from_secs(24 * 3600),
        heart: Heart {
            pulse: Duration::from_millis(700),
            timeout: Duration::from_secs(30),
            heartbeats: vec![
                HeartbeatNet {
                    lan: "default".into(),
                    ident: None,
                },
                HeartbeatNet {
                    lan: "backup".into(),
                    ident: None,
                },
            ],
        },
        vips: Vec::new(),
        errd: Errd {
            polltimer: Duration::from_secs(10),
            procs: Vec::new(),
        },
        checks: Vec::new(),
        splitbrain: None,
        rfs: None,
        farm: None,
        user: User {
            nicestoptimeout: Duration::from_secs(300),
            forcestoptimeout: Duration::from_secs(300),
        },
        paths: ModulePaths {
            module_dir: PathBuf::from("/etc/hakit/modules/web"),
            bin_dir: PathBuf::from("/etc/hakit/modules/web/bin"),
            state_dir: PathBuf::from("/var/lib/hakit/web"),
            log_dir: PathBuf::from("/var/log/hakit/web"),
        },
    }
}
