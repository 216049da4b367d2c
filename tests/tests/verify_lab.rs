//! `hakit rfsverify` on real daemons: it finds two replicas in sync identical without
//! disturbing the replication stream, and names a file whose copy was changed beneath the
//! SECOND's read-only mount.

use anyhow::{Context, Result, ensure};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{MirrorConfig, hakit_bin};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

const DATA: &str = "/srv/app/data";

/// Acknowledged once applied on the SECOND: when a write returns, both replicas hold it.
fn config() -> MirrorConfig {
    MirrorConfig {
        rfs_dirs: vec![DATA.to_string()],
        rfs_async: "none".to_string(),
        ..MirrorConfig::default()
    }
}

fn sh(pair: &MirrorPair, i: usize, script: &str) -> Result<String> {
    pair.nodes[i].host().run_ok(["sh", "-c", script])
}

/// `hakit rfsverify` on node `i`: its exit code and everything it printed.
fn rfsverify(pair: &MirrorPair, i: usize) -> Result<(i32, String)> {
    let bin = hakit_bin()?;
    let out = pair.nodes[i].host().run([
        bin.as_os_str(),
        "rfsverify".as_ref(),
        "-m".as_ref(),
        pair.module().as_ref(),
    ])?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().context("rfsverify killed by a signal")?;
    println!("rfsverify on node{} (exit {code}):\n{text}", i + 1);
    Ok((code, text))
}

/// Changes one byte in the middle of `file`'s second MiB in node2's folder, seen from
/// outside node2's namespaces (so beneath its read-only mount), keeping size and mtime.
fn corrupt_on_node2(pair: &MirrorPair, file: &str) -> Result<()> {
    let path = pair.nodes[1].host().path(format!("{DATA}/{file}"))?;
    let mtime = std::fs::metadata(&path)?.modified()?;
    let mut f = OpenOptions::new().write(true).open(&path)?;
    f.seek(SeekFrom::Start((1 << 20) + 1000))?;
    f.write_all(b"corrupted")?;
    f.set_modified(mtime)?;
    Ok(())
}

#[test]
fn rfsverify_reports_identical_replicas_then_names_a_corrupted_file() -> Result<()> {
    let mut pair = MirrorPair::new("verify", config())?;
    pair.scenario(|p| {
        sh(p, 0, &format!("mkdir -p {DATA}"))?;
        p.start_pair()?;
        // Times set explicitly travel in the stream; those a write implies are each node's.
        sh(
            p,
            0,
            &format!(
                "set -e; cd {DATA}; mkdir -p d/e; head -c 3000000 /dev/urandom > d/big; \
                 for i in $(seq 1 20); do echo $i > d/e/f$i; done; chmod 600 d/e/f3; \
                 touch -d '2020-01-02 03:04:05' d/big d/e/f*"
            ),
        )?;
        let (code, text) = rfsverify(p, 0)?;
        ensure!(code == 0, "in sync: exit {code}\n{text}");
        ensure!(text.contains(&format!("{DATA}: identical")), "{text}");

        // The manifest's connection left the stream alone: writes still reach the SECOND.
        sh(p, 0, &format!("echo still replicated > {DATA}/after"))?;
        let after = sh(p, 1, &format!("cat {DATA}/after"))?;
        ensure!(after == "still replicated\n", "node2 holds {after:?}");
        p.wait_in_sync(0)?;
        sh(
            p,
            0,
            &format!("touch -d '2020-01-02 03:04:05' {DATA}/after"),
        )?;

        let (code, text) = rfsverify(p, 1)?;
        ensure!(
            code == 2,
            "on the SECOND there is nothing to compare from: exit {code}\n{text}"
        );

        corrupt_on_node2(p, "d/big")?;
        let (code, text) = rfsverify(p, 0)?;
        ensure!(code == 1, "after the corruption: exit {code}\n{text}");
        ensure!(
            text.contains("d/big: content differs (same size) in 1 block(s), the first at block 1"),
            "names the file and its block:\n{text}"
        );
        ensure!(
            text.contains(&format!("{DATA}: 1 difference(s)")),
            "nothing else differs:\n{text}"
        );

        p.nodes[1].stop_daemon()?;
        p.wait_ready(0, hakit_lab::State::Alone)?;
        let (code, text) = rfsverify(p, 0)?;
        ensure!(
            code == 2 && text.contains("no peer to compare with"),
            "alone, there is no SECOND to compare with: exit {code}\n{text}"
        );
        Ok(())
    })
}

/// Every file's path and SHA-256 as node `i` sees the folder (through its mount).
fn checksums(pair: &MirrorPair, i: usize) -> Result<String> {
    sh(
        pair,
        i,
        &format!("cd {DATA} && find . -type f | sort | xargs sha256sum"),
    )
}

#[test]
fn an_old_primary_whose_journal_is_unusable_receives_only_the_blocks_that_differ() -> Result<()> {
    const FILES: u64 = 10;
    const FILE_BYTES: u64 = 4 << 20;
    let mut pair = MirrorPair::new("cmpsync", config())?;
    pair.scenario(|p| {
        sh(
            p,
            0,
            &format!(
                "mkdir -p {DATA}/d && for i in $(seq 1 {FILES}); do \
                 head -c {FILE_BYTES} /dev/urandom > {DATA}/d/f$i; done"
            ),
        )?;
        p.start_pair()?;
        // node1 dies; node2 serves alone and changes a few files.
        p.nodes[0].kill_daemon()?;
        p.wait_ready(1, hakit_lab::State::Alone)?;
        sh(
            p,
            1,
            &format!(
                "set -e; cd {DATA}/d; \
                 for i in 1 2 3; do head -c 65536 /dev/urandom | \
                 dd of=f$i bs=65536 seek=20 conv=notrunc 2>/dev/null; done; \
                 head -c 65536 /dev/urandom >> f4; rm f5; \
                 head -c 262144 /dev/urandom > new"
            ),
        )?;
        // node1, an old primary, comes back with a damaged change journal: the trees are
        // compared instead.
        sh(
            p,
            0,
            &format!(
                "printf '\\007\\000\\000\\000\\000' > /var/lib/hakit/{}/rfs-journal/root-0",
                p.module()
            ),
        )?;
        let before = p.tx_bytes(1)?;
        p.nodes[0].start_daemon()?;
        p.wait_in_sync(1)?;
        let sent = p.tx_bytes(1)? - before;
        let data = FILES * FILE_BYTES;
        let log = p.module_log(1)?;
        let line = log
            .lines()
            .rfind(|l| l.contains("replication to node1 is up"))
            .unwrap_or("(no copy report)");
        println!(
            "old primary's return: {sent} bytes on node2's cable for {data} bytes of data; {line}"
        );
        ensure!(
            log.contains("the peer's own change journal could not be had (its journal of /srv/app/data: malformed journal")
                && log.contains("copying only what differs"),
            "the copy compares with node1's manifest:\n{log}"
        );
        ensure!(
            sent < data / 4,
            "{sent} bytes on the cable for {data} bytes of data"
        );
        ensure!(
            checksums(p, 0)? == checksums(p, 1)?,
            "both nodes hold the same files"
        );
        let (code, text) = rfsverify(p, 1)?;
        ensure!(code == 0, "identical after the copy: exit {code}\n{text}");
        Ok(())
    })
}
