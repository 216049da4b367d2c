//! A simulated host: a network namespace and, for nodes, a private mount namespace, both held
//! open by a "holder" process (`sleep infinity`) that commands enter with `nsenter`.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec::{self, COMMAND_TIMEOUT, describe};
use crate::network::Network;

/// The folders a node has to itself, bind-mounted from its own temporary folder.
pub(crate) const PRIVATE_DIRS: [&str; 4] =
    ["/etc/hakit", "/var/lib/hakit", "/var/log/hakit", "/srv/app"];
/// Subfolder of a host's temporary folder receiving the output of spawned processes.
const OUTPUT_DIR: &str = "out";

/// A host of a [`crate::Lab`]. Cheap to clone; valid until the lab is dropped.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    netns: String,
    /// The networks it is cabled to and its address on each, the lab's default network first.
    links: Mutex<Vec<(Network, Ipv4Addr)>>,
    root: PathBuf,
    private_fs: bool,
    holder_pid: u32,
    holder: Mutex<Option<Child>>,
}

/// What [`Host::start`] needs; the lab has already created the network namespace and cabled it
/// to `network` (the lab's default) with address `ip`.
pub(crate) struct HostSpec {
    pub name: String,
    pub network: Network,
    pub ip: Ipv4Addr,
    pub netns: String,
    pub root: PathBuf,
    pub private_fs: bool,
}

impl Host {
    /// Creates the host's folders and starts its holder process.
    pub(crate) fn start(spec: HostSpec) -> Result<Host> {
        let mut dirs = vec![spec.root.join(OUTPUT_DIR)];
        if spec.private_fs {
            dirs.extend(PRIVATE_DIRS.iter().map(|d| spec.root.join(&d[1..])));
        }
        for dir in &dirs {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let (holder, holder_pid) = start_holder(&spec)?;
        Ok(Host {
            inner: Arc::new(Inner {
                name: spec.name,
                netns: spec.netns,
                links: Mutex::new(vec![(spec.network, spec.ip)]),
                root: spec.root,
                private_fs: spec.private_fs,
                holder_pid,
                holder: Mutex::new(Some(holder)),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address of `eth0` (a /24 of the lab's default network).
    pub fn ip(&self) -> Ipv4Addr {
        self.links()[0].1
    }

    /// The address of the host on `network`; an error if it is not cabled to it.
    pub fn ip_on(&self, network: &Network) -> Result<Ipv4Addr> {
        self.links()
            .iter()
            .find(|(n, _)| n.is(network))
            .map(|(_, ip)| *ip)
            .with_context(|| format!("host {} is not on {}", self.name(), network.describe()))
    }

    /// Cables the host to `network` (see [`crate::Lab::add_network`]) with address `ip`, on the
    /// interface [`Network::interface`].
    pub fn attach(&self, network: &Network, ip: &str) -> Result<()> {
        let ip = network.claim(self.name(), ip)?;
        network.cable(self.name(), self.netns(), ip)?;
        self.lock_links().push((network.clone(), ip));
        Ok(())
    }

    /// The networks the host is cabled to and its address on each, the lab's default first.
    pub(crate) fn links(&self) -> Vec<(Network, Ipv4Addr)> {
        self.lock_links().clone()
    }

    /// The network namespace (`ip netns exec <netns> ...` reaches the host's network).
    pub fn netns(&self) -> &str {
        &self.inner.netns
    }

    /// The holder process: `nsenter -t <pid> -n -m` enters the host (network and files).
    pub fn pid(&self) -> u32 {
        self.inner.holder_pid
    }

    /// The host's temporary folder, as the harness sees it.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The real path, as the harness sees it, behind `path` as the host sees it. Only paths
    /// under the host's private folders (`/etc/hakit`, `/var/lib/hakit`, `/var/log/hakit`,
    /// `/srv/app`) have one; clients have none.
    pub fn path(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        let host = self.name();
        if !self.inner.private_fs {
            bail!("{host} has no private folders (it is a client): no real path for {path:?}");
        }
        let plain = path.is_absolute()
            && path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !plain || !PRIVATE_DIRS.iter().any(|d| path.starts_with(d)) {
            bail!(
                "{path:?} is not a plain path under the private folders of {host} ({})",
                PRIVATE_DIRS.join(", ")
            );
        }
        Ok(self.inner.root.join(path.strip_prefix("/")?))
    }

    /// Where [`Host::spawn`] writes the output of a process given log name `name`.
    pub fn output_file(&self, name: &str) -> Result<PathBuf> {
        let plain = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if !plain {
            bail!("bad output file name {name:?}: use a plain file name");
        }
        Ok(self.inner.root.join(OUTPUT_DIR).join(name))
    }

    /// Runs a command inside the host and returns its output, whatever its exit status. Killed
    /// after 60 s (a hang guard).
    pub fn run<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, what) = self.command(args)?;
        exec::output(&mut cmd, &what, COMMAND_TIMEOUT)
    }

    /// Runs a command inside the host and returns its stdout; a non-zero exit is an error that
    /// names the host, the command and its stderr.
    pub fn run_ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, what) = self.command(args)?;
        let out = exec::checked(&mut cmd, &what, COMMAND_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a long-running command inside the host (e.g. the daemon), its stdout and stderr
    /// appended to [`Host::output_file`]`(log_file)`. The child is the command itself
    /// (`nsenter` execs it), so its pid can be signalled; the lab kills it when dropped.
    pub fn spawn<I, S>(&self, args: I, log_file: &str) -> Result<Child>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log_path = self.output_file(log_file)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let (mut cmd, what) = self.command(args)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start `{what}`"))
    }

    /// Sends `signal` to a process started by [`Host::spawn`]; after SIGKILL, also reaps it.
    pub fn kill(&self, child: &mut Child, signal: Signal) -> Result<()> {
        let host = self.name();
        if let Some(status) = child.try_wait()? {
            bail!(
                "cannot send {signal} to process {} on {host}: it already exited ({status})",
                child.id()
            );
        }
        let pid = Pid::from_raw(i32::try_from(child.id())?);
        kill(pid, signal)
            .with_context(|| format!("sending {signal} to process {pid} on {host}"))?;
        if signal == Signal::SIGKILL {
            child
                .wait()
                .with_context(|| format!("reaping process {pid} on {host}"))?;
        }
        Ok(())
    }

    /// SIGKILLs every process in the host's network namespace but its holder, one right
    /// after the other (the software side of a power cut: the daemon, its guardian and the
    /// application all die before any of them can react). How many were killed.
    pub fn kill_everything(&self) -> Result<usize> {
        let out = exec::root("ip", &["netns", "pids", self.netns()])?;
        let pids = String::from_utf8_lossy(&out.stdout);
        let pids: Vec<i32> = pids
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("pids of {}: {pids:?}", self.name()))?;
        let mut killed = 0;
        for pid in pids.into_iter().filter(|&p| p != self.pid() as i32) {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) => killed += 1,
                Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e).with_context(|| format!("SIGKILL to {pid}")),
            }
        }
        Ok(killed)
    }

    /// Cuts the host's cable to the lab's default network: its bridge port goes down (`eth0`
    /// loses carrier, keeps addresses).
    pub fn link_down(&self) -> Result<()> {
        self.links()[0].0.set_port(self.name(), false)
    }

    /// Restores the cable cut by [`Host::link_down`].
    pub fn link_up(&self) -> Result<()> {
        self.links()[0].0.set_port(self.name(), true)
    }

    /// [`Host::link_down`] on `network`: only that network's cable is cut.
    pub fn link_down_on(&self, network: &Network) -> Result<()> {
        self.ip_on(network)?;
        network.set_port(self.name(), false)
    }

    /// Restores the cable cut by [`Host::link_down_on`].
    pub fn link_up_on(&self, network: &Network) -> Result<()> {
        self.ip_on(network)?;
        network.set_port(self.name(), true)
    }

    /// One ping (1 s timeout) from the host: whether `addr` answered.
    pub fn ping(&self, addr: impl Into<IpAddr>) -> Result<bool> {
        let addr = addr.into().to_string();
        let out = self.run(["ping", "-n", "-q", "-c", "1", "-W", "1", &addr])?;
        Ok(out.status.success())
    }

    /// Writes a file of the host (see [`Host::path`]), creating its folders, with mode `mode`.
    pub fn write_file(
        &self,
        path: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<()> {
        let real = self.path(&path)?;
        let context = || {
            format!(
                "writing {:?} on {} ({})",
                path.as_ref(),
                self.name(),
                real.display()
            )
        };
        if let Some(dir) = real.parent() {
            fs::create_dir_all(dir).with_context(context)?;
        }
        fs::write(&real, contents).with_context(context)?;
        fs::set_permissions(&real, fs::Permissions::from_mode(mode)).with_context(context)
    }

    /// Reads a file of the host (see [`Host::path`]).
    pub fn read_file(&self, path: impl AsRef<Path>) -> Result<String> {
        let real = self.path(&path)?;
        fs::read_to_string(&real).with_context(|| {
            format!(
                "reading {:?} on {} ({})",
                path.as_ref(),
                self.name(),
                real.display()
            )
        })
    }

    /// Kills and reaps the holder process (the lab's teardown).
    pub(crate) fn stop_holder(&self) {
        let mut holder = self.inner.holder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = holder.take() {
            // An error means it is already dead; wait() reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn lock_links(&self) -> MutexGuard<'_, Vec<(Network, Ipv4Addr)>> {
        self.inner.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `nsenter` into the holder's namespaces, then `args`; and `args` as text for messages.
    fn command<I, S>(&self, args: I) -> Result<(Command, String)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args = args.into_iter();
        let Some(program) = args.next() else {
            bail!("no command given to run on {}", self.name());
        };
        let mut inner = Command::new(program);
        inner.args(args);
        let what = format!("{} (on {})", describe(&inner), self.name());
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.inner.holder_pid.to_string())
            .args(["-n", "-m", "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir("/");
        Ok((cmd, what))
    }
}

/// Starts `ip netns exec <ns> [unshare --mount --propagation private] sh -c '<bind mounts>;
/// echo ready $$; exec sleep infinity'` and waits for its "ready" line.
fn start_holder(spec: &HostSpec) -> Result<(Child, u32)> {
    let mut script = String::from("set -e\n");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &spec.netns]);
    if spec.private_fs {
        cmd.args(["unshare", "--mount", "--propagation", "private"]);
        for dir in PRIVATE_DIRS {
            let source = spec.root.join(&dir[1..]);
            script.push_str(&format!("mount --bind {} {dir}\n", sh_quote(&source)));
        }
    }
    script.push_str("echo ready $$\nexec sleep infinity\n");
    cmd.args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let host = &spec.name;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start the holder process of {host}"))?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    let pid = line
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok());
    match pid {
        Some(pid) => Ok((child, pid)),
        None => {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "the holder process of {host} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
    }
}

fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}
