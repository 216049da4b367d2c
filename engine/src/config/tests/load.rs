use std::fs;

use super::*;

const CLUSTER: &str = r#"<cluster><lans><lan name="default">
  <node name="node1" addr="10.0.0.1"/><node name="node2" addr="10.0.0.2"/>
</lan></lans></cluster>"#;

/// Roots under a temporary directory, with `cluster.xml` written.
fn setup() -> (tempfile::TempDir, Roots) {
    let tmp = tempfile::tempdir().unwrap();
    let roots = Roots {
        conf: tmp.path().join("conf"),
        state: tmp.path().join("state"),
        log: tmp.path().join("log"),
    };
    fs::create_dir_all(&roots.conf).unwrap();
    fs::write(roots.cluster_file(), CLUSTER).unwrap();
    (tmp, roots)
}

fn add_module(roots: &Roots, name: &str, text: &str) {
    let file = userconfig_file(roots, name);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(file, text).unwrap();
}

fn module_with_id(id: u16) -> String {
    format!("<safe>\n<service mode=\"mirror\" id=\"{id}\"/>\n</safe>")
}

#[test]
fn loads_everything_sorted() {
    let (_tmp, roots) = setup();
    add_module(&roots, "web", &module_with_id(2));
    add_module(&roots, "db", &module_with_id(1));
    fs::create_dir_all(roots.modules_dir().join("not-a-module/bin")).unwrap();
    let config = load_all(&roots).unwrap();
    assert_eq!(config.cluster, load_cluster(&roots).unwrap());
    let names: Vec<&str> = config.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(
        config.modules[1].paths,
        ModulePaths {
            module_dir: roots.conf.join("modules/web"),
            bin_dir: roots.conf.join("modules/web/bin"),
            state_dir: roots.state.join("web"),
            log_dir: roots.log.join("web"),
        }
    );
    assert_eq!(module_paths(&roots, "web"), config.modules[1].paths);
    assert_eq!(
        load_module(&roots, "web", &config.cluster).unwrap(),
        config.modules[1]
    );
}

#[test]
fn no_modules_folder_means_no_module() {
    let (_tmp, roots) = setup();
    assert_eq!(module_names(&roots).unwrap(), Vec::<String>::new());
    assert_eq!(load_all(&roots).unwrap().modules, []);
}

#[test]
fn invalid_module_names() {
    let (_tmp, roots) = setup();
    add_module(&roots, "my app", &module_with_id(1));
    let e = module_names(&roots).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: invalid module name \"my app\": use 1 to 32 letters, digits, _ or - (rename the \
             module's folder)",
            roots.modules_dir().join("my app").display()
        )
    );
    let long = "a".repeat(33);
    let e = parse_module("<safe/>", Path::new(FILE), &long, &roots, &cluster()).unwrap_err();
    assert!(e.to_string().contains("invalid module name"), "{e}");
}

#[test]
fn every_module_error_is_returned() {
    let (_tmp, roots) = setup();
    add_module(&roots, "a", "<safe>\n<service mode=\"light\"/></safe>");
    add_module(
        &roots,
        "b",
        "<safe>\n<service mode=\"mirror\" id=\"0\"/></safe>",
    );
    add_module(&roots, "c", &module_with_id(1));
    let errors: Vec<String> = load_all(&roots)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(&format!(
        "{}:2:10: ",
        userconfig_file(&roots, "a").display()
    )));
    assert!(errors[1].starts_with(&format!(
        "{}:2:24: ",
        userconfig_file(&roots, "b").display()
    )));
}

#[test]
fn module_ids_must_be_unique() {
    let (_tmp, roots) = setup();
    add_module(&roots, "a", &module_with_id(3));
    add_module(&roots, "b", &module_with_id(3));
    add_module(&roots, "c", "<safe>\n<service mode=\"mirror\"/></safe>");
    add_module(&roots, "d", "<safe>\n<service mode=\"mirror\"/></safe>");
    let errors: Vec<String> = load_all(&roots)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            format!(
                "{}:2:24: service: id 3 is already used by module a; give each module its own \
                 <service id=\"N\"> (it selects the module's ports)",
                userconfig_file(&roots, "b").display()
            ),
            format!(
                "{}:2:1: service: id 1 is already used by module c; give each module its own \
                 <service id=\"N\"> (it selects the module's ports)",
                userconfig_file(&roots, "d").display()
            ),
        ]
    );
}

#[test]
fn missing_files_name_their_path() {
    let (_tmp, roots) = setup();
    fs::remove_file(roots.cluster_file()).unwrap();
    let e = load_cluster(&roots).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read: ",
            roots.cluster_file().display()
        )),
        "{e}"
    );
    let errors = load_all(&roots).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = load_module(&roots, "nope", &cluster()).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read: ",
            userconfig_file(&roots, "nope").display()
        )),
        "{e}"
    );
}

#[test]
fn cluster_errors_stop_loading() {
    let (_tmp, roots) = setup();
    fs::write(roots.cluster_file(), "<cluster><lans/></cluster>").unwrap();
    add_module(&roots, "bad name!", &module_with_id(1));
    let errors = load_all(&roots).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
}
