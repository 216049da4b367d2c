//! `cargo xtask bench resync --mib N`: resynchronisation of a data set of N MiB in a few
//! thousand files (default 1 GiB), real daemons in the lab, release build, one invocation:
//!
//! 1. **plain copy**: `tar` of node1's folder piped through one TCP connection over the same
//!    link into a scratch folder of node2, then `sync`: the baseline;
//! 2. **full resync**: node2 joins with an empty folder (`hakit second`);
//! 3. **incremental return**: node2's daemon stops, node1 (ALONE) changes ~10 MiB across ~50
//!    files (in place, appends, truncates, renames, deletes, new files), node2 returns;
//! 4. **ex-primary return**: node1's daemon is SIGKILLed, node2 takes over and makes the
//!    same kind of changes, node1 returns as SECOND (it may hold writes it never had
//!    acknowledged: its own change journal, fetched beside the stream, names them).
//!
//! For each copy: its duration (from the daemon's report, and from the command to both nodes
//! in sync), the bytes the sender put on its cable (the kernel's interface counters), and
//! `hakit rfsverify` afterwards. Ratios are against the plain copy of the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{Host, MirrorConfig, State};

const DATA: &str = "/srv/app/data";
const PLAIN: &str = "/srv/app/plain";
const TOOLS: &str = "/var/lib/hakit";
/// The port of the plain copy, on node2.
const PLAIN_PORT: &str = "5301";

#[derive(clap::Args)]
pub struct ResyncArgs {
    /// Size of the data set, MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
}

/// Writes the data set: half in 8 large files, half in 2000 small ones; prints the bytes.
const MAKE_DATA: &str = r#"
import os, sys
root, mib = sys.argv[1], int(sys.argv[2])
half = mib * (1 << 20) // 2
total = 0
os.makedirs(os.path.join(root, "big"), exist_ok=True)
for i in range(8):
    with open(os.path.join(root, "big", "b%d" % i), "wb") as f:
        left = half // 8
        while left:
            n = min(left, 1 << 22)
            f.write(os.urandom(n))
            left -= n
            total += n
for d in range(20):
    os.makedirs(os.path.join(root, "small", "d%d" % d), exist_ok=True)
    for i in range(100):
        n = half // 2000
        with open(os.path.join(root, "small", "d%d" % d, "f%d" % i), "wb") as f:
            f.write(os.urandom(n))
        total += n
print(total)
"#;

/// ~10 MiB of changes across ~50 files, each run (`seed` 1, 2, ...) on other small files;
/// prints the data bytes written.
const CHANGE: &str = r#"
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
written = 0
def write_at(path, offset, n):
    global written
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, os.urandom(n), offset)
    os.close(fd)
    written += n
big = lambda i: os.path.join(root, "big", "b%d" % i)
base = 5 * (seed - 1)
small = lambda d, i: os.path.join(root, "small", "d%d" % (base + d), "f%d" % i)
for i in range(4):                        # in place, inside large files
    size = os.path.getsize(big(i))
    write_at(big(i), rng.randrange(0, size - (512 << 10)), 512 << 10)
for i in range(4, 6):                     # appends to large files
    write_at(big(i), os.path.getsize(big(i)), 1 << 20)
for i in range(6, 8):                     # large files shortened
    os.truncate(big(i), os.path.getsize(big(i)) - (1 << 20))
for i in range(10):                       # small files rewritten in place
    write_at(small(0, i), 0, min(64 << 10, os.path.getsize(small(0, i))))
for i in range(10):                       # small files appended to
    write_at(small(1, i), os.path.getsize(small(1, i)), 128 << 10)
for i in range(5):                        # truncated, renamed, deleted
    os.truncate(small(2, i), 100)
    os.rename(small(3, i), small(3, i) + ".renamed")
    os.unlink(small(4, i))
new = os.path.join(root, "new%d" % seed)
os.makedirs(new, exist_ok=True)
for i in range(10):                       # new files
    with open(os.path.join(new, "n%d" % i), "wb") as f:
        f.write(os.urandom(400 << 10))
    written += 400 << 10
print(written)
"#;

/// Accepts one connection and copies it to stdout.
const RECEIVE: &str = concat!(
    accept_py!(),
    r#"
out = sys.stdout.buffer
buf = bytearray(1 << 20)
while True:
    n = conn.recv_into(buf)
    if n == 0:
        break
    out.write(memoryview(buf)[:n])
out.flush()
"#
);

/// Copies stdin to one connection (retrying while the receiver starts).
const SEND: &str = concat!(
    connect_py!(),
    r#"
src = sys.stdin.buffer
while True:
    chunk = src.read(1 << 20)
    if not chunk:
        break
    sock.sendall(chunk)
sock.close()
"#
);

/// One copy's figures.
struct Copy {
    what: &'static str,
    /// Data bytes that had to travel (the data set, or what the changes wrote).
    payload: u64,
    /// Bytes the sender put on its cable.
    on_cable: u64,
    /// From the command to the copy in place (both nodes in sync for hakit).
    wall: Duration,
    /// The copy alone, as the daemon reports it (none for the plain copy).
    reported: Option<Duration>,
    verified: String,
}

pub fn run(bin: &std::path::Path, args: &ResyncArgs) -> Result<()> {
    if args.mib < 16 {
        bail!("--mib must be at least 16");
    }
    let config = MirrorConfig {
        rfs_dirs: vec![DATA.to_string()],
        ..MirrorConfig::default()
    };
    let mut pair = MirrorPair::with_bin("benchresync", config, bin)?;
    let mut copies = Vec::new();
    let result = pair.scenario(|p| {
        for host in [p.nodes[0].host(), p.nodes[1].host()] {
            for (name, script) in [("make-data.py", MAKE_DATA), ("change.py", CHANGE)] {
                host.write_file(format!("{TOOLS}/{name}"), script, 0o644)?;
            }
            host.write_file(format!("{TOOLS}/receive.py"), RECEIVE, 0o644)?;
            host.write_file(format!("{TOOLS}/send.py"), SEND, 0o644)?;
        }
        let total: u64 = python(
            p.nodes[0].host(),
            "make-data.py",
            &[DATA, &args.mib.to_string()],
        )?;
        println!("data set: {total} bytes in 2008 files on node1");
        copies.push(plain_copy(p, total)?);
        copies.push(full_resync(p, total)?);
        copies.push(incremental_return(p)?);
        copies.push(ex_primary_return(p)?);
        Ok(())
    });
    result?;
    print_table(&copies);
    Ok(())
}

fn python(host: &Host, script: &str, args: &[&str]) -> Result<u64> {
    let path = format!("{TOOLS}/{script}");
    let mut argv = vec!["python3", path.as_str()];
    argv.extend_from_slice(args);
    let out = host.run_ok(argv)?;
    out.trim()
        .parse()
        .with_context(|| format!("{script} printed {out:?}"))
}

fn sh(host: &Host, script: &str) -> Result<String> {
    host.run_ok(["sh", "-c", script])
}

/// `tar | one TCP stream | tar -x` from node1's folder into node2's scratch folder, synced.
fn plain_copy(p: &MirrorPair, total: u64) -> Result<Copy> {
    let (node1, node2) = (p.nodes[0].host(), p.nodes[1].host());
    let before = p.tx_bytes(0)?;
    let started = Instant::now();
    let mut receiver = node2.spawn(
        [
            "sh",
            "-c",
            &format!(
                "mkdir -p {PLAIN} && python3 {TOOLS}/receive.py {PLAIN_PORT} | tar -x -C {PLAIN} \
                 && sync -f {PLAIN}"
            ),
        ],
        "plain-receiver.log",
    )?;
    sh(
        node1,
        &format!(
            "tar -C {DATA} -cf - . | python3 {TOOLS}/send.py {} {PLAIN_PORT}",
            node2.ip()
        ),
    )?;
    let status = receiver.wait()?;
    let wall = started.elapsed();
    if !status.success() {
        bail!("the plain copy's receiver failed ({status})");
    }
    let on_cable = p.tx_bytes(0)? - before;
    let same = sh(
        node2,
        &format!("du -sb --apparent-size {PLAIN}/big {PLAIN}/small | cut -f1"),
    )?;
    sh(node2, &format!("rm -rf {PLAIN}"))?;
    Ok(Copy {
        what: "plain copy (tar over one TCP stream, then sync)",
        payload: total,
        on_cable,
        wall,
        reported: None,
        verified: format!("{} bytes received", sum_lines(&same)?),
    })
}

fn sum_lines(text: &str) -> Result<u64> {
    text.lines()
        .map(|l| l.trim().parse::<u64>().map_err(|e| anyhow!("{l:?}: {e}")))
        .sum()
}

/// node1 `prim`, node2 `second` with an empty folder.
fn full_resync(p: &mut MirrorPair, total: u64) -> Result<Copy> {
    p.hakit(0, "prim")?;
    p.wait_ready(0, State::Alone)?;
    let before = p.tx_bytes(0)?;
    let started = Instant::now();
    p.hakit(1, "second")?;
    p.wait_in_sync(0)?;
    finish(p, 0, "full resync (empty SECOND)", total, before, started)
}

/// node2 stops, node1 changes files alone, node2 returns.
fn incremental_return(p: &mut MirrorPair) -> Result<Copy> {
    p.nodes[1].stop_daemon()?;
    p.wait_ready(0, State::Alone)?;
    let written = python(p.nodes[0].host(), "change.py", &[DATA, "1"])?;
    let before = p.tx_bytes(0)?;
    let started = Instant::now();
    p.nodes[1].start_daemon()?;
    p.wait_in_sync(0)?;
    finish(
        p,
        0,
        "returning SECOND (change journal)",
        written,
        before,
        started,
    )
}

/// node1 dies, node2 serves and changes files, node1 returns as SECOND.
fn ex_primary_return(p: &mut MirrorPair) -> Result<Copy> {
    p.nodes[0].kill_daemon()?;
    p.wait_ready(1, State::Alone)?;
    let written = python(p.nodes[1].host(), "change.py", &[DATA, "2"])?;
    let before = p.tx_bytes(1)?;
    let started = Instant::now();
    p.nodes[0].start_daemon()?;
    p.wait_in_sync(1)?;
    finish(
        p,
        1,
        "returning ex-primary (its own journal too)",
        written,
        before,
        started,
    )
}

/// The figures of a copy from node `from`, once both nodes are in sync.
fn finish(
    p: &MirrorPair,
    from: usize,
    what: &'static str,
    payload: u64,
    before: u64,
    started: Instant,
) -> Result<Copy> {
    let wall = started.elapsed();
    let on_cable = p.tx_bytes(from)? - before;
    let peer = p.nodes[1 - from].name().to_string();
    let log = p.module_log(from)?;
    let report = log
        .lines()
        .rfind(|l| l.contains(&format!("replication to {peer} is up")))
        .ok_or_else(|| anyhow!("no copy report in the log:\n{log}"))?;
    println!("{what}: {report}");
    let verify = p.nodes[from].hakit_output(&["rfsverify", "-m", p.module()])?;
    let verified = match verify.status.code() {
        Some(0) => "rfsverify: identical".to_string(),
        other => format!(
            "rfsverify exit {other:?}: {}",
            String::from_utf8_lossy(&verify.stdout)
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    Ok(Copy {
        what,
        payload,
        on_cable,
        wall,
        reported: copy_ms(report).map(Duration::from_millis),
        verified,
    })
}

/// "... data bytes in 1234 ms while ..." of a copy report.
fn copy_ms(report: &str) -> Option<u64> {
    report
        .split(" data bytes in ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

fn print_table(copies: &[Copy]) {
    let Some(plain) = copies.first() else {
        return;
    };
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let rate = |c: &Copy| mib(c.payload) / c.wall.as_secs_f64();
    println!();
    println!(
        "| copy | data to move | on the sender's cable | cable / data | command to in sync | \
         copy alone (report) | MiB/s of data (command to in sync) | vs plain copy | check |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for c in copies {
        let reported = c
            .reported
            .map_or("-".to_string(), |d| format!("{} ms", d.as_millis()));
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.2}× | {} ms | {reported} | {:.0} | {:.2}× | {} |",
            c.what,
            mib(c.payload),
            mib(c.on_cable),
            c.on_cable as f64 / c.payload.max(1) as f64,
            c.wall.as_millis(),
            rate(c),
            rate(c) / rate(plain),
            c.verified
        );
    }
    if let [_, full, incremental, ..] = copies {
        let share = |part: Option<Duration>, whole: Option<Duration>| match (part, whole) {
            (Some(p), Some(w)) => format!("{:.1} %", 100.0 * p.as_secs_f64() / w.as_secs_f64()),
            _ => "-".to_string(),
        };
        println!(
            "\nincremental return: the copy took {} of the full copy's time (command to in \
             sync: {}) for {:.1} % of its data",
            share(incremental.reported, full.reported),
            share(Some(incremental.wall), Some(full.wall)),
            100.0 * incremental.payload as f64 / full.payload.max(1) as f64
        );
    }
}
