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

/// Every entry's type, mode, size, owner and content hash, as node `i` sees the directory.
fn tree(pair: &MirrorPair, i: usize) -> Result<String> {
    sh(
        pair,
        i,
        &format!(
            "cd {DATA} && find . -printf '%p %y %m %s %U:%G %l\\n' | sort && \
             find . -type f -exec sha256sum {{}} + | sort"
        ),
    )
}

fn wait_same_tree(pair: &MirrorPair) -> Result<String> {
    let mut last = String::new();
    wait_until("both trees identical", DEADLINE, || {
        let (a, b) = (tree(pair, 0)?, tree(pair, 1)?);
        last = a.clone();
        if a == b {
            Ok(true)
        } else {
            Err(anyhow!("node1:\n{a}\nnode2:\n{b}"))
        }
    })?;
    Ok(last)
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
        p.start_pair()?;
        wait_same_tree(p)?;
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
        ensure!(expected.contains("./renamed.txt"), "{expected}");
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
        ensure!(now.contains("./after.txt"), "{now}");
        let log = p.module_log(0)?;
        ensure!(log.contains("copied its data generation"), "{log}");
        Ok(())
    })
}
