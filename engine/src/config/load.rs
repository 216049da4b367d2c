//! Reading the configuration files under [`Roots`] and validating them into the model.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::cluster_xml;
use super::error::ConfigError;
use super::fields::Doc;
use super::model::{Cluster, Module, ModulePaths};
use super::roots::Roots;
use super::userconfig_xml::{self, Parsed};
use super::xml;

/// The whole configuration of a node: the cluster and every module.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub cluster: Cluster,
    /// Sorted by name.
    pub modules: Vec<Module>,
}

/// Parses the text of `cluster.xml`; `file` is only used in errors.
pub fn parse_cluster(text: &str, file: &Path) -> Result<Cluster, ConfigError> {
    let root = xml::parse(text, file)?;
    cluster_xml::cluster(&root, &Doc { file })
}

/// Reads and validates `<conf>/cluster.xml`.
pub fn load_cluster(roots: &Roots) -> Result<Cluster, ConfigError> {
    let file = roots.cluster_file();
    parse_cluster(&read(&file)?, &file)
}

/// Parses the text of module `name`'s `userconfig.xml`; `file` is only used in errors.
pub fn parse_module(
    text: &str,
    file: &Path,
    name: &str,
    roots: &Roots,
    cluster: &Cluster,
) -> Result<Module, ConfigError> {
    parse_module_at(text, file, name, roots, cluster).map(|p| p.module)
}

/// Reads and validates `<conf>/modules/<name>/conf/userconfig.xml`.
pub fn load_module(roots: &Roots, name: &str, cluster: &Cluster) -> Result<Module, ConfigError> {
    let file = userconfig_file(roots, name);
    parse_module(&read(&file)?, &file, name, roots, cluster)
}

/// `<conf>/modules/<name>/conf/userconfig.xml`.
pub fn userconfig_file(roots: &Roots, name: &str) -> PathBuf {
    roots
        .modules_dir()
        .join(name)
        .join("conf")
        .join("userconfig.xml")
}

/// Where module `name`'s files are under `roots`.
pub fn module_paths(roots: &Roots, name: &str) -> ModulePaths {
    let module_dir = roots.modules_dir().join(name);
    ModulePaths {
        bin_dir: module_dir.join("bin"),
        module_dir,
        state_dir: roots.state.join(name),
        log_dir: roots.log.join(name),
    }
}

/// The modules configured on this node: the folders under `<conf>/modules/` that hold a
/// `conf/userconfig.xml`, sorted. No `modules` folder means no module.
pub fn module_names(roots: &Roots) -> Result<Vec<String>, ConfigError> {
    let dir = roots.modules_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError::io(&dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ConfigError::io(&dir, e))?.path();
        if !path.join("conf").join("userconfig.xml").is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ConfigError::path(&path, bad_name_hint("(not UTF-8)")))?;
        check_module_name(name).map_err(|m| ConfigError::path(&path, m))?;
        names.push(name.to_string());
    }
    names.sort();
    Ok(names)
}

/// Loads `cluster.xml` and every module, returning every error found: each module is
/// validated even if another one fails.
pub fn load_all(roots: &Roots) -> Result<Config, Vec<ConfigError>> {
    let (cluster, names) = match (load_cluster(roots), module_names(roots)) {
        (Ok(cluster), Ok(names)) => (cluster, names),
        (cluster, names) => return Err(cluster.err().into_iter().chain(names.err()).collect()),
    };
    let mut errors = Vec::new();
    let mut modules: Vec<Module> = Vec::new();
    for name in names {
        let file = userconfig_file(roots, &name);
        let parsed =
            read(&file).and_then(|text| parse_module_at(&text, &file, &name, roots, &cluster));
        match parsed {
            Ok(Parsed { module, id_pos }) => {
                if let Some(other) = modules.iter().find(|m| m.id == module.id) {
                    errors.push(ConfigError::at(
                        &file,
                        id_pos,
                        format!(
                            "service: id {} is already used by module {}; give each module its \
                             own <service id=\"N\"> (it selects the module's ports)",
                            module.id, other.name
                        ),
                    ));
                }
                modules.push(module);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Config { cluster, modules })
    } else {
        Err(errors)
    }
}

fn parse_module_at(
    text: &str,
    file: &Path,
    name: &str,
    roots: &Roots,
    cluster: &Cluster,
) -> Result<Parsed, ConfigError> {
    check_module_name(name).map_err(|m| ConfigError::path(file, m))?;
    let root = xml::parse(text, file)?;
    userconfig_xml::module(
        root,
        &Doc { file },
        name,
        module_paths(roots, name),
        cluster,
    )
}

fn read(path: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))
}

/// Module names appear in paths, URLs and logs: 1 to 32 of `[A-Za-z0-9_-]`, which also rules
/// out `..`, `/` and anything else that could leave a root once joined to it.
pub fn is_valid_module_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_module_name(name: &str) -> Result<(), String> {
    if is_valid_module_name(name) {
        Ok(())
    } else {
        Err(bad_name_hint(&format!("\"{name}\"")))
    }
}

fn bad_name_hint(name: &str) -> String {
    format!(
        "invalid module name {name}: use 1 to 32 letters, digits, _ or - (rename the module's \
         folder)"
    )
}
