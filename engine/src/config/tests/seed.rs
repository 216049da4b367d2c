//! The example `userconfig.xml` files of the model product's public pages, verbatim
//! (`testdata/`), typographic quotes and lost lines included: real users paste them.

use super::*;

const LINUX: &str = include_str!("../testdata/seed-linux-userconfig.xml");
const CLOUD: &str = include_str!("../testdata/seed-cloud-userconfig.xml");

fn straighten(text: &str) -> String {
    text.replace('\u{201D}', "\"")
}

#[test]
fn linux_seed_typographic_quote() {
    assert_eq!(
        err(LINUX),
        "/etc/hakit/modules/web/conf/userconfig.xml:6:26: typographic quote \u{201D} (U+201D) in \
         markup: replace it with a straight quote (\")"
    );
}

#[test]
fn cloud_seed_typographic_quote() {
    assert_eq!(
        err(CLOUD),
        "/etc/hakit/modules/web/conf/userconfig.xml:7:17: typographic quote \u{201D} (U+201D) in \
         markup: replace it with a straight quote (\")"
    );
}

/// The page lost the closing tags (and the ends of some comments): the first element left
/// open is named.
#[test]
fn linux_seed_with_straight_quotes_is_still_incomplete() {
    assert_eq!(
        err(&straighten(LINUX)),
        "/etc/hakit/modules/web/conf/userconfig.xml:18:7: <rfs> is never closed (add </rfs> or \
         write <rfs .../>)"
    );
}

#[test]
fn cloud_seed_with_straight_quotes_parses() {
    let m = parse(&straighten(CLOUD)).unwrap();
    let expected = Module {
        heart: Heart {
            heartbeats: vec![HeartbeatNet {
                lan: "default".into(),
                ident: Some("flow".into()),
            }],
            ..defaults().heart
        },
        errd: Errd {
            polltimer: Duration::from_secs(10),
            procs: vec![ProcCheck {
                name: "PROCESS_NAME".into(),
                atleast: 1,
                atmax: None,
                action: CheckAction::Restart,
                class: CheckClass::Prim,
            }],
        },
        rfs: Some(Rfs {
            ack: AckLevel::Second,
            sendtimeout: None,
            nbrei: 3,
            ruzone_blocksize: 8 << 20,
            reiallowedbw: None,
            replicated: vec![
                Replicated {
                    dir: PathBuf::from("/test1replicated"),
                    read_only_on_second: true,
                },
                Replicated {
                    dir: PathBuf::from("/test2replicated"),
                    read_only_on_second: true,
                },
            ],
        }),
        ..defaults()
    };
    assert_eq!(m, expected);
}
