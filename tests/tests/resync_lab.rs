//! Resynchronisation as an administrator lives it, on real daemons in the lab: a copy that
//! says how far it got and respects its bandwidth cap, and a node whose every process dies at
//! once in the middle of changes, whose change journal still names everything.

use anyhow::{Result, anyhow, ensure};
use hakit_lab::pair::MirrorPair;
use hakit_lab::torture::{Writer, install_writer, parse_records, verify};
use hakit_lab::{DEADLINE, MirrorConfig, State, wait_until};
use std::time::Duration;

const DATA: &str = "/srv/app/data";

fn config(rfs_attrs: &str) -> MirrorConfig {
    MirrorConfig {
        rfs_dirs: vec![DATA.to_string()],
        rfs_attrs: rfs_attrs.to_string(),
        ..MirrorConfig::default()
    }
}

fn sh(pair: &MirrorPair, i: usize, script: &str) -> Result<String> {
    pair.nodes[i].host().run_ok(["sh", "-c", script])
}

/// `count` files of `bytes` random bytes, `d/f1`..., on node1.
fn random_files(pair: &MirrorPair, count: u32, bytes: u32) -> Result<()> {
    sh(
        pair,
        0,
        &format!(
            "mkdir -p {DATA}/d && for i in $(seq 1 {count}); do \
             head -c {bytes} /dev/urandom > {DATA}/d/f$i; done"
        ),
    )
    .map(drop)
}

/// Files the epoch test's writer has made on node1.
fn files_written(pair: &MirrorPair) -> Result<u64> {
    Ok(sh(pair, 0, &format!("ls {DATA}/many | wc -l"))?
        .trim()
        .parse()?)
}

/// Waits until the epoch test's writer has made 20 more files.
fn twenty_more_files(pair: &MirrorPair) -> Result<()> {
    let from = files_written(pair)?;
    wait_until("20 more files written", DEADLINE, || {
        Ok(files_written(pair)? >= from + 20)
    })
}

/// How many paths node1's change journal names whole (`hakit rfsdiff`'s total).
fn journal_paths(pair: &MirrorPair) -> Result<u64> {
    let out = pair.hakit(0, "rfsdiff")?;
    let total = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("total: "))
        .ok_or_else(|| anyhow!("no total in rfsdiff's output:\n{out}"))?;
    let paths = total
        .split(" changed path(s)")
        .next()
        .and_then(|t| t.rsplit(' ').next())
        .ok_or_else(|| anyhow!("no path count in {total:?}"))?;
    Ok(paths.parse()?)
}

/// The line of node `i`'s module log that reports the last completed copy to node2.
fn copy_report(pair: &MirrorPair, i: usize) -> Result<String> {
    copy_report_to(pair, i, "node2")
}

/// The line of node `i`'s module log that reports the last completed copy to `peer`.
fn copy_report_to(pair: &MirrorPair, i: usize, peer: &str) -> Result<String> {
    let log = pair.module_log(i)?;
    log.lines()
        .rfind(|l| l.contains(&format!("replication to {peer} is up")))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no copy report in node{}'s log:\n{log}", i + 1))
}

/// The copy's duration from its report ("... data bytes in 12345 ms while ...").
fn copy_ms(report: &str) -> Result<u64> {
    let after = report
        .split(" data bytes in ")
        .nth(1)
        .ok_or_else(|| anyhow!("no duration in {report}"))?;
    Ok(after.split(' ').next().unwrap_or("").parse()?)
}

#[test]
fn a_capped_copy_says_what_is_left_and_never_runs_faster_than_the_cap() -> Result<()> {
    const CAP_KIB: u64 = 1024;
    const FILES: u64 = 12;
    let mut pair = MirrorPair::new("rfscap", config(&format!("reiallowedbw=\"{CAP_KIB}\"")))?;
    pair.scenario(|p| {
        sh(
            p,
            0,
            &format!(
                "mkdir -p {DATA} && for i in $(seq 1 {FILES}); do \
                 head -c 1048576 /dev/urandom > {DATA}/f$i; done"
            ),
        )?;
        p.hakit(0, "prim")?;
        p.hakit(1, "second")?;
        let mut seen = String::new();
        wait_until("node1 to show the copy's progress", DEADLINE, || {
            seen = p.nodes[0].hakit(&["state", "-v", "-m", p.module()])?;
            Ok(seen.contains("copying (copy of what differs: ")
                && seen.contains(&format!(" of {FILES}.0 MiB, "))
                && seen.contains(&format!(" of {FILES} files, "))
                && seen.contains("ETA ")
                && seen.contains(&format!("capped at {CAP_KIB} KiB/s")))
        })?;
        println!("while copying: {seen}");
        wait_until("node2 to show the copy it receives", DEADLINE, || {
            seen = p.nodes[1].hakit(&["state", "-v", "-m", p.module()])?;
            Ok(seen.contains("resync        receiving node1's copy: ")
                && seen.contains(&format!(" of {FILES}.0 MiB, ETA ")))
        })?;
        p.wait_in_sync(0)?;
        let report = copy_report(p, 0)?;
        let ms = copy_ms(&report)?;
        // A lower bound only: a slow machine makes the copy longer, never shorter.
        let least = FILES * 1000 * 1024 / CAP_KIB;
        ensure!(
            ms >= least,
            "{FILES} MiB copied in {ms} ms: faster than {CAP_KIB} KiB/s allows ({least} ms)\n{report}"
        );
        let log = p.module_log(0)?;
        ensure!(
            log.contains("copy progress (copy of what differs): ") && log.contains("MiB/s, ETA "),
            "the module log repeats the progress of a long copy:\n{log}"
        );
        println!("{report}");
        Ok(())
    })
}

#[test]
fn every_process_of_the_alone_node_killed_at_once_loses_no_change() -> Result<()> {
    let mut pair = MirrorPair::new("rfspower", config(""))?;
    pair.scenario(|p| {
        random_files(p, 40, 65536)?;
        p.start_pair()?;
        p.nodes[1].stop_daemon()?;
        p.wait_ready(0, State::Alone)?;
        let host = p.nodes[0].host().clone();
        install_writer(&host)?;
        let mut writer = Writer::start(
            &host,
            "alone",
            &format!("{DATA}/records"),
            "/var/lib/hakit/acked-records",
            true,
            7,
        )?;
        sh(
            p,
            0,
            &format!(
                "cd {DATA}/d && echo changed > f1 && mv f2 moved2 && rm f3 && \
                 head -c 4096 /dev/urandom | dd of=f4 bs=4096 seek=3 conv=notrunc 2>/dev/null && \
                 truncate -s 100 f5 && mkdir new && echo n > new/file"
            ),
        )?;
        wait_until("the writer to acknowledge records", DEADLINE, || {
            Ok(writer.acked()?.len() > 200)
        })?;
        let killed = p.nodes[0].kill_everything()?;
        writer.kill()?;
        writer.reap(DEADLINE)?;
        let acked = writer.acked()?;
        println!("killed {killed} processes of node1 at once; {} records acknowledged", acked.len());
        p.nodes[0].start_daemon()?;
        p.wait_ready(0, State::Alone)?;
        p.nodes[1].start_daemon()?;
        p.wait_in_sync(0)?;
        let report = copy_report(p, 0)?;
        ensure!(
            report.contains("only what the change journal names"),
            "{report}"
        );
        let held = sh(p, 1, &format!("cat {DATA}/records"))?;
        verify(parse_records(held.as_bytes())?, &acked)?;
        let same = |i| sh(p, i, &format!("cd {DATA} && find . -printf '%p %s %m\\n' | sort && find . -type f | sort | xargs md5sum"));
        let (one, two) = (same(0)?, same(1)?);
        ensure!(one == two, "the trees differ:\n{one}\n---\n{two}");
        ensure!(
            one.contains("./d/moved2 ") && !one.contains("./d/f3 ") && one.contains("./d/new/file "),
            "{one}"
        );
        Ok(())
    })
}

#[test]
fn a_node_stopped_mid_copy_refuses_prim_and_primforce_makes_its_data_the_reference() -> Result<()> {
    // A slow copy (cap 1 MiB/s, 12 MiB) leaves time to stop the SECOND half-way through it.
    let mut pair = MirrorPair::new("rfshalf", config("reiallowedbw=\"1024\""))?;
    pair.scenario(|p| {
        sh(
            p,
            0,
            &format!(
                "mkdir -p {DATA} && for i in $(seq 1 12); do \
                 head -c 1048576 /dev/urandom > {DATA}/f$i; done"
            ),
        )?;
        p.hakit(0, "prim")?;
        p.hakit(1, "second")?;
        wait_until("node1 to copy some data", DEADLINE, || {
            let state = p.nodes[0].hakit(&["state", "-v", "-m", p.module()])?;
            Ok(state.contains("copying (copy of what differs: ")
                && !state.contains("differs: 0.0 of"))
        })?;
        p.hakit(1, "stop")?;
        p.wait_ready(0, State::Alone)?;
        p.hakit(0, "stop")?;
        p.wait_state(0, State::Stop)?;
        p.wait_state(1, State::Stop)?;
        wait_until("node2 to see node1 stopped", DEADLINE, || {
            Ok(p.hakit(1, "state")?.contains("peer node1: STOP"))
        })?;
        let refused = p.nodes[1].hakit_output(&["prim", "-m", p.module()])?;
        let said = String::from_utf8_lossy(&refused.stdout).into_owned()
            + &String::from_utf8_lossy(&refused.stderr);
        ensure!(
            refused.status.code() == Some(5)
                && said.contains("incomplete")
                && said.contains("primforce"),
            "prim on a half-copied node is refused with the reason and the way out: {:?} {said}",
            refused.status
        );
        p.hakit(1, "primforce")?;
        p.wait_ready(1, State::Alone)?;
        let forced = sh(p, 1, &format!("ls {DATA} | wc -l"))?;
        // node1 first records that node2 holds data it lacks (a short transition).
        wait_until("node1 to record its copy as stale", DEADLINE, || {
            Ok(p.module_log(0)?.contains("recording my copy as stale")
                && p.hakit(0, "state")?.contains("STOP (NotReady)"))
        })?;
        p.hakit(0, "start")?;
        p.wait_in_sync(1)?;
        let log = p.module_log(1)?;
        let report = log
            .lines()
            .rfind(|l| l.contains("replication to node1 is up"))
            .ok_or_else(|| anyhow!("no copy to node1:\n{log}"))?;
        ensure!(
            !report.contains("only what the change journal names"),
            "the old primary gets the forced node's whole copy: {report}"
        );
        let listing = |i| sh(p, i, &format!("cd {DATA} && ls | sort && cat * | md5sum"));
        let (one, two) = (listing(0)?, listing(1)?);
        ensure!(one == two, "node1 holds node2's data:\n{one}\n---\n{two}");
        println!("forced node held {} files; {report}", forced.trim());
        Ok(())
    })
}

#[test]
fn after_a_long_time_in_sync_a_returning_secondary_receives_only_the_recent_changes() -> Result<()>
{
    // Heartbeat timeout 1 s: the journal moves on every 5 s while in sync.
    let mut pair = MirrorPair::new("rfsepoch", config(""))?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA}"))?;
        p.start_pair()?;
        sh(
            p,
            0,
            &format!("for i in $(seq 1 20); do head -c 65536 /dev/urandom > {DATA}/old$i; done"),
        )?;
        let total = |p: &MirrorPair| -> Result<String> {
            let out = p.hakit(0, "rfsdiff")?;
            Ok(out
                .lines()
                .find(|l| l.trim_start().starts_with("total:"))
                .unwrap_or("")
                .to_string())
        };
        let named = total(p)?;
        ensure!(named.contains(" 20 changed path(s)"), "{named}");
        wait_until(
            "node1's journal to forget what node2 holds durably",
            Duration::from_secs(60),
            || Ok(total(p)?.contains("total: 0 bytes")),
        )?;
        p.nodes[1].stop_daemon()?;
        p.wait_ready(0, State::Alone)?;
        sh(p, 0, &format!("echo recent > {DATA}/recent"))?;
        p.nodes[1].start_daemon()?;
        p.wait_in_sync(0)?;
        let report = copy_report(p, 0)?;
        ensure!(
            report.contains("only what the change journal names")
                && report.contains(" 1 files, ")
                && report.contains(" 7 data bytes "),
            "only the file written while node2 was away travels: {report}"
        );
        Ok(())
    })
}

#[test]
fn files_written_across_journal_epochs_all_reach_a_secondary_killed_and_returning() -> Result<()> {
    let mut pair = MirrorPair::new("rfsepochs", config(""))?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA}/many"))?;
        p.start_pair()?;
        // A new file every 20 ms, through several epochs (5 s each) and node2's death.
        let host = p.nodes[0].host().clone();
        let mut writer = host.spawn(
            [
                "sh",
                "-c",
                &format!(
                    "i=0; while true; do i=$((i+1)); echo $i > {DATA}/many/f$i; sleep 0.02; done"
                ),
            ],
            "epoch-writer.log",
        )?;
        // Epochs went by under the writes: the journal names far fewer files than were written.
        wait_until(
            "node1's journal to forget files node2 holds",
            Duration::from_secs(60),
            || {
                let (files, named) = (files_written(p)?, journal_paths(p)?);
                Ok(files > 300 && named + 100 < files)
            },
        )?;
        p.nodes[1].kill_daemon()?;
        p.wait_ready(0, State::Alone)?;
        twenty_more_files(p)?;
        p.nodes[1].start_daemon()?;
        p.wait_in_sync(0)?;
        twenty_more_files(p)?;
        host.kill(&mut writer, hakit_lab::Signal::SIGKILL)?;
        let listing = p.wait_same("node2 to hold every file", |p, i| {
            sh(
                p,
                i,
                &format!("cd {DATA}/many && ls | wc -l && cat * | md5sum"),
            )
        })?;
        let report = copy_report(p, 0)?;
        ensure!(
            report.contains("only what the change journal names"),
            "{report}"
        );
        println!("{} files; {report}", listing.lines().next().unwrap_or(""));
        Ok(())
    })
}

#[test]
fn an_old_primary_cut_off_with_writes_it_never_had_acknowledged_gets_them_replaced() -> Result<()> {
    // A witness: the primary whose cable is cut cannot reach it and steps down; the writes it
    // had applied but could not replicate fail in the application, yet sit on its disk.
    let cfg = MirrorConfig {
        extra_xml: hakit_lab::witness_check_xml(),
        ..config("")
    };
    let mut pair = MirrorPair::new("rfsoldprim", cfg)?;
    pair.scenario(|p| {
        random_files(p, 30, 262144)?;
        p.start_pair()?;
        let host = p.nodes[0].host().clone();
        install_writer(&host)?;
        let mut writer = Writer::start(
            &host,
            "cut",
            &format!("{DATA}/records"),
            "/var/lib/hakit/acked-records",
            false,
            5,
        )?;
        wait_until("the writer to acknowledge records", DEADLINE, || {
            Ok(writer.acked()?.len() > 300)
        })?;
        p.nodes[0].host().link_down()?;
        p.wait_ready(1, State::Alone)?;
        writer.reap(DEADLINE)?;
        let acked = writer.acked()?;
        sh(
            p,
            1,
            &format!("echo after > {DATA}/d/after && rm {DATA}/d/f7"),
        )?;
        p.nodes[0].host().link_up()?;
        p.wait_in_sync(1)?;
        let log = p.module_log(1)?;
        let report = copy_report_to(p, 1, "node1")?;
        ensure!(
            report.contains("only what the change journal names")
                && log.contains("the peer's own change journal names"),
            "node2 copies what changed since it took over and what node1's journal names:\n{report}"
        );
        let held = sh(p, 0, &format!("cat {DATA}/records"))?;
        verify(parse_records(held.as_bytes())?, &acked)?;
        let verified = p.nodes[1].hakit_output(&["rfsverify", "-m", p.module()])?;
        ensure!(
            verified.status.code() == Some(0),
            "the replicas are identical: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
        println!("{} records acknowledged; {report}", acked.len());
        Ok(())
    })
}
