//! What each verb does.

use super::args::{Cli, ClusterVerb, ConfigVerb, OnOff, Verb};
use super::{EXIT_ERROR, EXIT_REFUSED};
use super::{farm_view, state_view};
use anyhow::{Context, Result, bail};
use hakit::config::{Roots, is_valid_module_name, load_all, module_names, module_paths};
use hakit::control::client::call;
use hakit::control::protocol::{Request, Response};
use hakit::daemon::{DaemonOptions, guardian};
use hakit::key::ClusterKey;
use hakit::mirror::fsm::Command;
use hakit::modlog::{Source, append_line};

pub fn run(cli: Cli) -> Result<i32> {
    let roots = cli.roots.roots();
    let module_command = |module: &str, command: Command| send_command(&roots, module, command);
    match cli.command {
        Verb::Daemon { node, http } => daemon(DaemonOptions {
            roots: roots.clone(),
            node,
            http,
        }),
        Verb::Guardian { node } => Ok(guardian::run(&roots, &node)),
        Verb::Start(m) => module_command(&m.module, Command::Start),
        Verb::Stop(m) => module_command(&m.module, Command::Stop),
        Verb::Restart(m) => module_command(&m.module, Command::Restart),
        Verb::Stopstart(m) => module_command(&m.module, Command::Stopstart),
        Verb::Swap(m) => module_command(&m.module, Command::Swap),
        Verb::Prim(m) => module_command(&m.module, Command::Prim),
        Verb::Second(m) => module_command(&m.module, Command::Second),
        Verb::Primforce(m) => module_command(&m.module, Command::Primforce),
        Verb::Failover { state, module } => {
            module_command(&module, Command::Failover(matches!(state, OnOff::On)))
        }
        Verb::State {
            module,
            verbose,
            line,
            quiet,
        } => state(&roots, module, verbose, line, quiet),
        Verb::Log { module, lines } => log(&roots, &module, lines),
        Verb::Printi(p) => print(&roots, &p.module, Source::ScriptInfo, &p.message),
        Verb::Printe(p) => print(&roots, &p.module, Source::ScriptError, &p.message),
        Verb::Rfsdiff(m) => super::rfsdiff::rfsdiff(&roots, &m.module),
        Verb::Rfsverify(m) => super::rfsverify::rfsverify(&roots, &m.module),
        Verb::Config(ConfigVerb::Check) => config_check(&roots),
        Verb::Cluster(ClusterVerb::Genkey { force }) => genkey(&roots, force),
    }
}

fn daemon(opts: DaemonOptions) -> Result<i32> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(hakit::daemon::run(opts))?;
    Ok(0)
}

fn send_command(roots: &Roots, module: &str, command: Command) -> Result<i32> {
    let request = Request::Command {
        module: module.to_string(),
        command,
    };
    match call(&roots.control_socket(), &request)? {
        Response::Done { message } => {
            println!("{module}: {message}");
            Ok(0)
        }
        Response::Refused { message } => {
            eprintln!("{module}: refused: {message}");
            Ok(EXIT_REFUSED)
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon to a command: {other:?}"),
    }
}

fn state(
    roots: &Roots,
    module: Option<String>,
    verbose: bool,
    line: bool,
    quiet: bool,
) -> Result<i32> {
    let (views, farms) = match call(
        &roots.control_socket(),
        &Request::State {
            module: module.clone(),
        },
    ) {
        Ok(Response::State { modules, farms }) => (modules, farms),
        Ok(Response::Error { message }) => {
            eprintln!("hakit: {message}");
            return Ok(EXIT_ERROR);
        }
        Ok(other) => bail!("unexpected answer from the daemon: {other:?}"),
        Err(e) => {
            eprintln!("hakit: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    if quiet {
        let code = views
            .first()
            .map(|v| v.role.exit_code())
            .or_else(|| farms.first().map(|f| f.state.exit_code()));
        return Ok(code.unwrap_or(EXIT_ERROR));
    }
    for view in &views {
        if verbose {
            print!("{}", state_view::verbose(view));
        } else if line {
            println!("{}", state_view::one_line(view));
        } else {
            println!("{}", state_view::with_peer(view));
        }
    }
    for farm in &farms {
        if verbose {
            print!("{}", farm_view::verbose(farm));
        } else {
            println!("{}", farm_view::one_line(farm));
        }
    }
    Ok(0)
}

/// The log folder of a configured module: a typo (or `-m ../x`) must not read or create
/// files elsewhere.
fn module_log_dir(roots: &Roots, module: &str) -> Result<std::path::PathBuf> {
    let known = module_names(roots).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !is_valid_module_name(module) || !known.iter().any(|m| m == module) {
        bail!(
            "no module named {module:?} in {} (modules: {})",
            roots.modules_dir().display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(module_paths(roots, module).log_dir)
}

fn log(roots: &Roots, module: &str, lines: usize) -> Result<i32> {
    let path = module_log_dir(roots, module)?.join("module.log");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        println!("{l}");
    }
    Ok(0)
}

fn print(roots: &Roots, module: &str, source: Source, message: &[String]) -> Result<i32> {
    let dir = module_log_dir(roots, module)?;
    append_line(&dir, source, &message.join(" "))
        .with_context(|| format!("cannot write the module log in {}", dir.display()))?;
    Ok(0)
}

fn config_check(roots: &Roots) -> Result<i32> {
    match load_all(roots) {
        Ok(config) => {
            println!(
                "{}: {} node(s) on {} lan(s)",
                roots.cluster_file().display(),
                config.cluster.node_names().len(),
                config.cluster.lans.len()
            );
            let mut code = 0;
            for m in &config.modules {
                let checkers =
                    m.errd.procs.len() + m.checks.len() + usize::from(m.splitbrain.is_some());
                let Some(farm) = &m.farm else {
                    println!(
                        "module {}: mirror, id {}, pulse {:?}, timeout {:?}, {} virtual IP(s), {checkers} checker(s): OK",
                        m.name,
                        m.id,
                        m.heart.pulse,
                        m.heart.timeout,
                        m.vips.len(),
                    );
                    continue;
                };
                let hosts: usize = farm.groups.iter().map(|g| g.hosts.len()).sum();
                let rules: usize = farm.groups.iter().map(|g| g.rules.len()).sum();
                println!(
                    "module {}: farm, id {}, pulse {:?}, {hosts} host(s), {} virtual IP(s), {rules} rule(s), {checkers} checker(s): OK",
                    m.name,
                    m.id,
                    farm.pulse,
                    farm.vips.len(),
                );
                if !farm.vips.is_empty()
                    && let Err(why) = hakit::daemon::farm_plane::available()
                {
                    eprintln!("module {}: cannot run on this node: {why}", m.name);
                    code = EXIT_ERROR;
                }
            }
            Ok(code)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s); nothing was changed", errors.len());
            Ok(EXIT_ERROR)
        }
    }
}

fn genkey(roots: &Roots, force: bool) -> Result<i32> {
    let path = roots.key_file();
    ClusterKey::generate().save(&path, force)?;
    println!(
        "{}: new cluster key; copy this file to every node (mode 0600)",
        path.display()
    );
    Ok(0)
}
