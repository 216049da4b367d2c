//! The configuration shown in the README must stay valid.

use hakit::config::{Roots, load_all};
use std::fs;

#[test]
fn the_readme_configuration_example_is_valid() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```xml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(
        blocks.len(),
        3,
        "the README shows cluster.xml, a mirror userconfig.xml, then a farm one"
    );
    let dir = tempfile::tempdir().unwrap();
    let roots = Roots {
        conf: dir.path().join("etc"),
        state: dir.path().join("state"),
        log: dir.path().join("log"),
    };
    fs::create_dir_all(roots.conf.join("modules/web/conf")).unwrap();
    fs::create_dir_all(roots.conf.join("modules/pool/conf")).unwrap();
    fs::write(
        roots.conf.join("modules/pool/conf/userconfig.xml"),
        blocks[2],
    )
    .unwrap();
    fs::write(roots.cluster_file(), blocks[0]).unwrap();
    fs::write(
        roots.conf.join("modules/web/conf/userconfig.xml"),
        blocks[1],
    )
    .unwrap();
    let config = load_all(&roots).unwrap_or_else(|e| panic!("README example rejected: {e:?}"));
    let pool = config.modules.iter().find(|m| m.name == "pool").unwrap();
    let farm = pool.farm.as_ref().unwrap();
    assert_eq!(
        (farm.vips.len(), farm.groups.len(), pool.checks.len()),
        (1, 1, 1)
    );
    let web = config.modules.iter().find(|m| m.name == "web").unwrap();
    assert_eq!(web.name, "web");
    assert_eq!(web.vips.len(), 1);
    assert!(web.splitbrain.is_some());
    assert_eq!(web.checks.len(), 1);
    assert_eq!(web.errd.procs.len(), 1);
    let rfs = web.rfs.as_ref().unwrap();
    assert_eq!(rfs.replicated.len(), 2);
    assert_eq!(rfs.sendtimeout, Some(std::time::Duration::from_secs(30)));
}
