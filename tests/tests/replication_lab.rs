//! Replicated directories on real daemons in the lab: what the application writes through
//! the primary's mount is on the SECOND before the call returns, survives the primary's
//! death, and comes back to the old primary when it returns.

use anyhow::{Result, anyhow, ensure};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{DEADLINE, MirrorConfig, State, wait_until};

const DATA: &str = "/srv/app/data";

fn config() -> MirrorConfig {
    MirrorConfig {
        rfs_dirs: vec![DATA.to_string()],
        ..MirrorConfig::default()
    }
}

/// Runs a shell command inside node `i`'s namespaces (so through its mounts).
fn sh(pair: &MirrorPair, i: usize, script: &str) -> Result<String> {
    pair.nodes[i].host().run_ok(["sh", "-c", script])
}

/// Every entry's type, mode, owner, link count, size, content hash, symlink target, `user.`
/// xattrs, and explicitly set modification times to the second, as node `i` sees the
/// directory.
fn tree(pair: &MirrorPair, i: usize) -> Result<String> {
    const DIGEST: &str = r#"
import hashlib, os, stat, sys, time
root = sys.argv[1]

def show(path):
    st = os.lstat(path)
    line = [os.path.relpath(path, root), stat.filemode(st.st_mode), f"{st.st_uid}:{st.st_gid}",
            f"n{st.st_nlink}"]
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            line += [str(st.st_size), hashlib.sha256(f.read()).hexdigest()[:16]]
        line.append(f"allocated:{st.st_blocks > 0}")
    if stat.S_ISLNK(st.st_mode):
        line.append("-> " + os.readlink(path))
    else:
        for x in sorted(os.listxattr(path)):
            line.append(f"{x}={os.getxattr(path, x)!r}")
    # Times set explicitly (utimens, the copy) are replicated; those a write implies follow
    # each node's own clock, a moment apart: compared only when far from now.
    if not stat.S_ISDIR(st.st_mode) and abs(time.time() - st.st_mtime) > 86400:
        line.append(f"mtime {int(st.st_mtime)}")
    print(" ".join(line))

show(root)
for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        show(os.path.join(dirpath, name))
"#;
    sh(pair, i, &format!("python3 - {DATA} <<'EOF'\n{DIGEST}\nEOF"))
}

/// Runs `script` on the primary (node1), then waits until the SECOND shows the same tree.
fn case(pair: &MirrorPair, name: &str, script: &str) -> Result<String> {
    sh(pair, 0, &format!("set -e; cd {DATA}; {script}"))
        .map_err(|e| anyhow!("case {name}: {e:#}"))?;
    wait_same_tree(pair).map_err(|e| anyhow!("case {name}: {e:#}"))
}

/// Writes `script` into node1 (outside the replicated folder) and starts it with python3;
/// its output goes to the host's `<name>.log`.
fn run_script(
    pair: &MirrorPair,
    name: &str,
    script: &str,
    args: &[&str],
) -> Result<std::process::Child> {
    let host = pair.nodes[0].host();
    let path = format!("/var/lib/hakit/{name}.py");
    host.write_file(&path, script, 0o644)?;
    let mut command = vec!["python3", path.as_str()];
    command.extend_from_slice(args);
    host.spawn(command, &format!("{name}.log"))
}

/// `count` files `f1..` of `bytes` random bytes in `DATA/sub`, written on node1.
fn random_files(pair: &MirrorPair, sub: &str, count: u32, bytes: u32) -> Result<()> {
    sh(
        pair,
        0,
        &format!(
            "mkdir -p {DATA}/{sub} && for i in $(seq 1 {count}); do \
             head -c {bytes} /dev/urandom > {DATA}/{sub}/f$i; done"
        ),
    )
    .map(drop)
}

fn wait_same_tree(pair: &MirrorPair) -> Result<String> {
    pair.wait_same("both trees identical", tree)
}

#[test]
fn the_secondary_holds_every_write_and_takes_over_with_it() -> Result<()> {
    let mut pair = MirrorPair::new("rfs", config())?;
    pair.scenario(|p| {
        // Existing data in place on node1; stale data on node2 that the first copy replaces.
        sh(
            p,
            0,
            &format!(
                "mkdir -p {DATA}/sub && echo original > {DATA}/kept.txt && \
                 ln -s kept.txt {DATA}/link && truncate -s 3M {DATA}/sparse && \
                 echo deep > {DATA}/sub/deep && chmod 640 {DATA}/sub/deep"
            ),
        )?;
        sh(
            p,
            1,
            &format!("mkdir -p {DATA} && echo stale > {DATA}/stale.txt"),
        )?;
        // An application holding a file open for writing from before the SECOND joins: its
        // later writes through that descriptor must reach the SECOND too.
        p.hakit(0, "prim")?;
        p.wait_ready(0, State::Alone)?;
        let mut held = run_script(p, "held", HELD_OPEN, &[&format!("{DATA}/held.log")])?;
        wait_until("the held-open writer starts", DEADLINE, || {
            Ok(sh(p, 0, &format!("cat {DATA}/held.log"))?.contains("before"))
        })?;
        p.hakit(1, "second")?;
        p.wait_in_sync(0)?;
        p.nodes[0]
            .host()
            .write_file("/var/lib/hakit/go", "", 0o644)?;
        wait_until("the held-open writer finishes", DEADLINE, || {
            Ok(sh(p, 0, &format!("wc -l < {DATA}/held.log"))?.trim() == "21")
        })?;
        wait_same_tree(p)?;
        let log = p.module_log(0)?;
        ensure!(
            !log.contains("broke") && log.matches("replication to node2 is up").count() == 1,
            "the stream must carry the held-open file's writes without breaking:\n{log}"
        );
        p.nodes[0]
            .host()
            .kill(&mut held, nix::sys::signal::Signal::SIGKILL)?;
        ensure!(
            !tree(p, 1)?.contains("stale.txt"),
            "the copy replaces the SECOND's older content"
        );
        // Writes through the primary's mount are on the SECOND when they return.
        sh(
            p,
            0,
            &format!(
                "echo one > {DATA}/new.txt && mv {DATA}/new.txt {DATA}/renamed.txt && \
                 printf x | dd of={DATA}/sparse bs=1 seek=1048576 conv=notrunc 2>/dev/null && \
                 rm {DATA}/kept.txt && mkdir {DATA}/d2 && ln {DATA}/sub/deep {DATA}/d2/hard"
            ),
        )?;
        let expected = wait_same_tree(p)?;
        ensure!(expected.contains("\nrenamed.txt "), "{expected}");
        // The SECOND's mount is read-only for applications.
        let refused = p.nodes[1]
            .host()
            .run(["sh", "-c", &format!("echo x > {DATA}/nope")])?;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        ensure!(
            !refused.status.success() && stderr.contains("Read-only"),
            "writing on the SECOND must fail with EROFS: {stderr}"
        );
        // The primary dies: the SECOND takes over with every write.
        p.nodes[0].kill_daemon()?;
        p.wait_ready(1, State::Alone)?;
        ensure!(
            tree(p, 1)? == expected,
            "node2 serves the data node1 acknowledged"
        );
        sh(p, 1, &format!("echo after > {DATA}/after.txt"))?;
        // node1 returns as SECOND and gets what node2 wrote meanwhile.
        p.nodes[0].start_daemon()?;
        p.wait_in_sync(1)?;
        let now = wait_same_tree(p)?;
        ensure!(now.contains("\nafter.txt "), "{now}");
        let log = p.module_log(0)?;
        ensure!(log.contains("copied its data generation"), "{log}");
        Ok(())
    })
}

#[test]
fn posix_operations_on_the_primary_leave_an_identical_secondary() -> Result<()> {
    let mut pair = MirrorPair::new("posix", config())?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA}"))?;
        p.start_pair()?;
        let cases: [(&str, &str); 16] = [
            ("create and write", "echo hello > a; printf 'more' >> a"),
            ("rename", "echo b > b; mv b b2"),
            ("rename over an existing file", "echo c > c; mv c a"),
            ("rename a directory", "mkdir -p d1/d2; echo x > d1/d2/x; mv d1 d3"),
            ("hard link", "ln a hard; echo again >> hard"),
            ("symlink", "ln -s a sym; ln -s /etc/passwd abs-sym; ln -s nowhere dangling"),
            ("chmod", "chmod 600 a; chmod 2750 d3"),
            ("chown", "chown 1234:4321 a; chown -h 55:66 sym"),
            ("truncate", "truncate -s 100000 big; truncate -s 10 a; truncate -s 0 b2"),
            ("xattrs", "setfattr -n user.color -v blue a 2>/dev/null || python3 -c \
                \"import os; os.setxattr('a', 'user.color', b'blue'); os.setxattr('d3', 'user.k', b'v')\"; \
                python3 -c \"import os; os.setxattr('a', 'user.tmp', b'1'); os.removexattr('a', 'user.tmp')\""),
            ("sparse file", "truncate -s 64M sparse; printf end | dd of=sparse bs=1 seek=33554432 conv=notrunc 2>/dev/null"),
            ("large file", "head -c 8388608 /dev/urandom > large; cp large large-copy"),
            ("many files", "mkdir many; for i in $(seq 1 300); do echo $i > many/f$i; done"),
            ("unlink and rmdir", "rm many/f1 many/f2; rm -r d3; rm hard"),
            ("fifo and explicit times", "mkfifo fifo; touch -m -d '2001-02-03 04:05:06' a large"),
            ("overwrite in place", "printf XY | dd of=large bs=1 seek=4096 conv=notrunc 2>/dev/null; sync"),
        ];
        for (name, script) in cases {
            let tree = case(p, name, script)?;
            println!("case {name}: identical ({} entries)", tree.lines().count());
        }
        let last = tree(p, 1)?;
        ensure!(last.contains("mtime 981173106"), "explicit times replicate:\n{last}");
        ensure!(last.contains("1234:4321"), "owners replicate:\n{last}");
        Ok(())
    })
}

/// Opens a file for appending, writes a line, waits for /var/lib/hakit/go, writes 20 more
/// through the same descriptor, then keeps it open.
const HELD_OPEN: &str = r#"
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b"before the peer\n")
while not os.path.exists("/var/lib/hakit/go"):
    time.sleep(0.05)
for i in range(20):
    os.write(fd, b"after %d\n" % i)
time.sleep(3600)
"#;

/// A writer on the primary: one line per write, its write time logged outside the replicated
/// folder; stops at the first error.
const WRITER: &str = r#"
import os, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
log = open(sys.argv[2], "a", buffering=1)
i = 0
while True:
    t = time.monotonic()
    os.write(out, b"%d\n" % i)
    log.write("%d %.6f\n" % (i, time.monotonic() - t))
    i += 1
    time.sleep(0.005)
"#;

#[test]
fn a_lost_secondary_stalls_writes_only_until_it_is_declared_lost() -> Result<()> {
    let cfg = MirrorConfig {
        extra_xml: hakit_lab::witness_check_xml(),
        ..config()
    };
    let mut pair = MirrorPair::new("rfsloss", cfg)?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA}"))?;
        p.start_pair()?;
        let state = p.nodes[0].hakit(&["state", "-v", "-m", p.module()])?;
        ensure!(state.contains("stream        up;"), "{state}");
        ensure!(state.contains("async=\"second\""), "{state}");
        let json = p.client.http_get(
            p.nodes[0].host().ip(),
            hakit_lab::pair::HTTP_PORT,
            "/api/v1/state",
        )?;
        ensure!(
            json.contains("\"ack_level\":\"second\"") && json.contains("\"ops_sent\""),
            "the JSON state shows the replication figures: {json}"
        );
        let mut writer = run_script(
            p,
            "writer",
            WRITER,
            &[&format!("{DATA}/log"), "/var/lib/hakit/writes"],
        )?;
        let writes = || -> Result<Vec<f64>> {
            let text = p.nodes[0].host().read_file("/var/lib/hakit/writes")?;
            Ok(text
                .lines()
                .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
                .collect())
        };
        wait_until("the writer writes", DEADLINE, || Ok(writes()?.len() > 20))?;
        // The SECOND's cable is cut: it cannot reach the witness either, so it waits; the
        // primary's writes wait for the peer's verdict, then go on ALONE.
        p.nodes[1].host().link_down()?;
        p.wait_ready(0, State::Alone)?;
        let before = writes()?.len();
        wait_until("writes go on ALONE", DEADLINE, || {
            Ok(writes()?.len() > before + 20)
        })?;
        let stall = writes()?.into_iter().fold(0.0, f64::max);
        println!("longest write while the SECOND was lost: {stall:.3} s");
        p.wait_state(1, State::Wait)?;
        let log = p.module_log(0)?;
        ensure!(log.contains("held writes resume"), "{log}");
        p.nodes[0]
            .host()
            .kill(&mut writer, nix::sys::signal::Signal::SIGKILL)?;
        // Back on the network, node2 copies everything written meanwhile.
        p.nodes[1].host().link_up()?;
        p.wait_in_sync(0)?;
        wait_same_tree(p)?;
        Ok(())
    })
}

#[test]
fn a_secondary_joins_while_the_application_writes() -> Result<()> {
    let mut pair = MirrorPair::new("rfslive", config())?;
    pair.scenario(|p| {
        random_files(p, "bulk", 64, 1 << 20)?;
        p.hakit(0, "prim")?;
        p.wait_ready(0, State::Alone)?;
        let mut writer = run_script(
            p,
            "writer",
            WRITER,
            &[&format!("{DATA}/log"), "/var/lib/hakit/writes"],
        )?;
        p.hakit(1, "second")?;
        p.wait_in_sync(0)?;
        lines_grow(p, "/var/lib/hakit/writes", 20)?;
        p.nodes[0]
            .host()
            .kill(&mut writer, nix::sys::signal::Signal::SIGKILL)?;
        let tree = wait_same_tree(p)?;
        let written = p.nodes[0].host().read_file("/var/lib/hakit/writes")?;
        let lines = written.lines().count();
        ensure!(lines > 20, "the writer kept writing: {lines} writes");
        let log = p.module_log(0)?;
        let line = log
            .lines()
            .find(|l| l.contains("writes waited"))
            .ok_or_else(|| anyhow!("no copy report in\n{log}"))?;
        println!("{lines} writes during the join; {line}");
        let json = p.client.http_get(
            p.nodes[0].host().ip(),
            hakit_lab::pair::HTTP_PORT,
            "/api/v1/state",
        )?;
        ensure!(
            json.contains("\"phase\":\"done\"") && json.contains("\"files\":6"),
            "the copy's progress is reported: {json}"
        );
        ensure!(tree.contains("bulk/f64 "), "{tree}");
        Ok(())
    })
}

/// Waits until the file at `path` on node1 (absent: no line) has `n` more lines than now.
fn lines_grow(pair: &MirrorPair, path: &str, n: usize) -> Result<()> {
    let lines = || -> Result<usize> {
        Ok(sh(pair, 0, &format!("cat {path} 2>/dev/null || true"))?
            .lines()
            .count())
    };
    let from = lines()?;
    wait_until(&format!("{n} more lines in {path}"), DEADLINE, || {
        Ok(lines()? >= from + n)
    })
}

#[test]
fn swap_and_clean_stop_hand_the_data_over_both_ways() -> Result<()> {
    let mut pair = MirrorPair::new("rfsswap", config())?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA} && echo one > {DATA}/a"))?;
        p.start_pair()?;
        // Swap: node2 becomes PRIM, node1 SECOND; node2's writes reach node1.
        p.hakit(0, "swap")?;
        p.wait_in_sync(1)?;
        sh(
            p,
            1,
            &format!("echo two >> {DATA}/a && mkdir {DATA}/by-node2"),
        )?;
        let tree = wait_same_tree(p)?;
        ensure!(tree.contains("by-node2"), "{tree}");
        let refused = p.nodes[0]
            .host()
            .run(["sh", "-c", &format!("echo x > {DATA}/nope")])?;
        ensure!(!refused.status.success(), "node1 is SECOND: read-only");
        // SIGTERM of node2's daemon: a clean handover, node1 serves the data at once.
        p.nodes[1].stop_daemon()?;
        p.wait_ready(0, State::Alone)?;
        let content = sh(p, 0, &format!("cat {DATA}/a"))?;
        ensure!(content == "one\ntwo\n", "{content:?}");
        sh(p, 0, &format!("echo three >> {DATA}/a"))?;
        // node2's daemon restarts its module: it comes back as SECOND with node1's writes.
        p.nodes[1].start_daemon()?;
        p.wait_in_sync(0)?;
        let tree = wait_same_tree(p)?;
        ensure!(tree.contains("by-node2"), "{tree}");
        Ok(())
    })
}

/// Keeps one file open, appending and fsyncing a line every 10 ms (a database's log).
const LOG_WRITER: &str = r#"
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
i = 0
while True:
    os.write(fd, b"%d\n" % i)
    os.fsync(fd)
    i += 1
    time.sleep(0.01)
"#;

#[test]
fn a_network_blip_under_a_file_held_open_is_followed_by_one_new_copy() -> Result<()> {
    let cfg = MirrorConfig {
        extra_xml: hakit_lab::witness_check_xml(),
        ..config()
    };
    let mut pair = MirrorPair::new("rfsblip", cfg)?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA}"))?;
        p.start_pair()?;
        let log_file = format!("{DATA}/db.log");
        let mut writer = run_script(p, "log-writer", LOG_WRITER, &[&log_file])?;
        lines_grow(p, &log_file, 20)?;
        p.nodes[1].host().link_down()?;
        p.wait_ready(0, State::Alone)?;
        p.nodes[1].host().link_up()?;
        // node2 comes back and gets one new copy, the open file adopted by the new stream.
        p.wait_in_sync(0)?;
        lines_grow(p, &log_file, 50)?;
        let log = p.module_log(0)?;
        let copies = log.matches("replication to node2 is up").count();
        let breaks = log.matches("replication to node2 broke").count();
        ensure!(
            copies == 2 && breaks <= 1,
            "one copy at the start, one after the blip ({copies} copies, {breaks} breaks):\n{log}"
        );
        p.nodes[0]
            .host()
            .kill(&mut writer, nix::sys::signal::Signal::SIGKILL)?;
        wait_same_tree(p)?;
        Ok(())
    })
}

#[test]
fn a_returning_secondary_receives_only_what_changed() -> Result<()> {
    const ZONE: u64 = 64 << 10;
    let mut pair = MirrorPair::new(
        "rfsinc",
        MirrorConfig {
            rfs_attrs: format!(r#"ruzone_blocksize="{ZONE}""#),
            ..config()
        },
    )?;
    pair.scenario(|p| {
        random_files(p, "d", 200, 256 << 10)?;
        random_files(p, "big", 4, 24 << 20)?;
        p.start_pair()?;
        wait_same_tree(p)?;
        // node2 stops (its daemon, cleanly); node1 serves on alone and records what changes.
        p.nodes[1].stop_daemon()?;
        p.wait_ready(0, State::Alone)?;
        let in_place = |files: &str, seek: u64| {
            format!(
                "for f in {files}; do head -c {ZONE} /dev/urandom | \
                 dd of=$f bs={ZONE} seek={seek} conv=notrunc 2>/dev/null; done"
            )
        };
        sh(
            p,
            0,
            &format!(
                "cd {DATA}/d && {} && \
                 for i in $(seq 11 15); do head -c {ZONE} /dev/urandom >> f$i; done && \
                 for i in $(seq 16 20); do truncate -s 1000 f$i; done && \
                 for i in $(seq 21 25); do mv f$i renamed$i; done && \
                 for i in $(seq 26 30); do rm f$i; done && \
                 for i in $(seq 1 10); do head -c 131072 /dev/urandom > new$i; done && \
                 cd ../big && {} && \
                 for f in f3 f4; do head -c {ZONE} /dev/urandom >> $f; done",
                in_place("f1 f2 f3 f4 f5 f6 f7 f8 f9 f10", 1),
                in_place("f1 f2", 160),
            ),
        )?;
        // Written in place: one zone in each of f1-f15 but for the cut f16-f20, and in each
        // large file. Whole: the renamed and the new files.
        let zones = 19 * ZONE;
        let whole: u64 = sh(
            p,
            0,
            &format!(
                "cd {DATA}/d && cat renamed21 renamed22 renamed23 renamed24 renamed25 \
                 new1 new2 new3 new4 new5 new6 new7 new8 new9 new10 | wc -c"
            ),
        )?
        .trim()
        .parse()?;
        let changed = zones + whole;
        let estimate = p.hakit(0, "rfsdiff")?;
        ensure!(
            estimate.contains(&format!(
                "total: {changed} bytes: 25 changed path(s), {whole} bytes whole; 24 file(s) \
                 changed in place, {zones} bytes of changed zones"
            )),
            "rfsdiff estimates what will travel: {estimate}"
        );
        ensure!(
            estimate.contains("\n  time: about "),
            "rfsdiff estimates the time from the first copy's rate: {estimate}"
        );
        let before = p.tx_bytes(0)?;
        p.nodes[1].start_daemon()?;
        p.wait_in_sync(0)?;
        let sent = p.tx_bytes(0)? - before;
        wait_same_tree(p)?;
        let log = p.module_log(0)?;
        let line = log
            .lines()
            .rfind(|l| l.contains("replication to node2 is up"))
            .ok_or_else(|| anyhow!("no copy report:\n{log}"))?;
        println!(
            "incremental rejoin: {sent} bytes on node1's cable for {changed} changed bytes \
             (data set 146 MiB, 4 files of 24 MiB among them); {line}"
        );
        ensure!(
            line.contains("only what the change journal names"),
            "{line}"
        );
        ensure!(
            sent < 2 * changed,
            "{sent} bytes sent on the cable for {changed} changed bytes"
        );
        Ok(())
    })
}

#[test]
fn split_brain_writes_of_the_losing_side_are_saved_aside() -> Result<()> {
    // No split-brain checker: cutting the cable makes both nodes serve.
    let mut pair = MirrorPair::new("rfssplit", config())?;
    pair.scenario(|p| {
        sh(
            p,
            0,
            &format!("mkdir -p {DATA} && echo common > {DATA}/common"),
        )?;
        p.start_pair()?;
        p.nodes[1].host().link_down()?;
        p.wait_ready(1, State::Alone)?;
        p.wait_ready(0, State::Alone)?;
        sh(p, 0, &format!("echo from-node1 > {DATA}/only-node1"))?;
        sh(
            p,
            1,
            &format!("echo from-node2 > {DATA}/only-node2 && echo node2 >> {DATA}/common"),
        )?;
        p.nodes[1].host().link_up()?;
        // node1 served longer and keeps serving; node2 saves its changes, then takes node1's.
        p.wait_in_sync(0)?;
        let tree = wait_same_tree(p)?;
        ensure!(
            tree.contains("\nonly-node1 ") && !tree.contains("only-node2"),
            "the trees are the winner's:\n{tree}"
        );
        let log = p.module_log(1)?;
        ensure!(log.contains("quarantine:"), "{log}");
        let saved = sh(
            p,
            1,
            "find /var/lib/hakit -path '*quarantine*' -type f | sort | xargs -r cat",
        )?;
        ensure!(
            saved.contains("from-node2") && saved.contains("node2"),
            "node2's writes during the split are kept aside: {saved:?}\n{log}"
        );
        Ok(())
    })
}

#[test]
fn changes_made_alone_survive_a_sigkill_of_the_primary_and_still_travel_incrementally() -> Result<()>
{
    let mut pair = MirrorPair::new("rfsjournal", config())?;
    pair.scenario(|p| {
        random_files(p, "d", 50, 64 << 10)?;
        p.start_pair()?;
        p.nodes[1].stop_daemon()?;
        p.wait_ready(0, State::Alone)?;
        // node1, alone, keeps changing files; its daemon is SIGKILLed in the middle.
        let mut writer = run_script(
            p,
            "writer",
            WRITER,
            &[&format!("{DATA}/d/f7"), "/var/lib/hakit/writes"],
        )?;
        sh(
            p,
            0,
            &format!("cd {DATA}/d && echo changed > f1 && mv f2 moved2 && rm f3"),
        )?;
        lines_grow(p, "/var/lib/hakit/writes", 20)?;
        p.nodes[0].kill_daemon()?;
        let _ = p.nodes[0]
            .host()
            .kill(&mut writer, nix::sys::signal::Signal::SIGKILL);
        // node1 restarts (alone last: it serves again), then node2 returns.
        p.nodes[0].start_daemon()?;
        p.wait_ready(0, State::Alone)?;
        p.nodes[1].start_daemon()?;
        p.wait_in_sync(0)?;
        let tree = wait_same_tree(p)?;
        ensure!(
            tree.contains("\nd/moved2 ") && !tree.contains("\nd/f3 "),
            "{tree}"
        );
        let log = p.module_log(0)?;
        let line = log
            .lines()
            .rfind(|l| l.contains("replication to node2 is up"))
            .ok_or_else(|| anyhow!("no copy report:\n{log}"))?;
        ensure!(
            line.contains("only what the change journal names"),
            "{line}"
        );
        println!("after the SIGKILL: {line}");
        Ok(())
    })
}
