//! Real databases on the replicated directory, through a failover and a swap.
//!
//! Failover: SQLite in WAL mode and PostgreSQL (Debian's package) write numbered rows in
//! committed transactions on node1 through its mount; node1's daemon is SIGKILLed in the middle
//! of the workload; node2 takes over alone, opens the database on the replicated files (SQLite's
//! WAL recovery, PostgreSQL's crash recovery) and must hold every transaction whose `COMMIT` had
//! returned on node1, with the database consistent (SQLite's `integrity_check`, PostgreSQL's
//! amcheck) and writable.
//!
//! Join and swap: the database runs on node1 alone (its files open) when node2 joins as SECOND,
//! with the workload going on; then `hakit swap` moves the application to node2 (node1's
//! `stop_prim` stops it, node2's `start_prim` starts it), which must hold every transaction
//! committed on node1.

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, ensure};
use hakit_lab::database::{
    PG_ROWS_PER_TX, PG_WRITERS, Postgres, SQLITE_ROWS_PER_TX, SQLITE_WRITERS, Sqlite, SqliteCheck,
    check_committed, kill_group, mmap_write, parse_ids, posix_lock_check, process_ended, read_ids,
    write_module_scripts,
};
use hakit_lab::pair::MirrorPair;
use hakit_lab::{DEADLINE, Host, MirrorConfig, State, abort, wait_until};

const DATA: &str = "/srv/app/data";
/// Transactions committed on node1 before its daemon is killed.
const TX_BEFORE_KILL: u64 = 300;
/// Transactions committed in each later phase: on node2 after the failover; on node1 before
/// node2 joins, then again before the swap.
const TX_AFTER: u64 = 50;
/// Generous: the workload's pace depends on the machine; only a hang reaches it.
const WORKLOAD_DEADLINE: Duration = Duration::from_secs(120);

fn config(module: &str) -> MirrorConfig {
    MirrorConfig {
        module: module.into(),
        rfs_dirs: vec![DATA.to_string()],
        ..MirrorConfig::default()
    }
}

/// Runs a shell command inside node `i`'s namespaces (so through its mounts).
fn sh(pair: &MirrorPair, i: usize, script: &str) -> Result<String> {
    pair.nodes[i].host().run_ok(["sh", "-c", script])
}

fn output_of(host: &Host, log: &str) -> String {
    host.output_file(log)
        .and_then(|p| Ok(std::fs::read_to_string(p)?))
        .unwrap_or_else(|e| format!("(no output: {e:#})"))
}

/// Waits until `committed` on `host` holds at least `rows` ids, while `writer` runs.
fn wait_committed(
    host: &Host,
    writer: &mut Child,
    committed: &str,
    log: &str,
    rows: u64,
) -> Result<()> {
    let mut seen = 0;
    wait_until(
        &format!("{rows} committed rows on {}", host.name()),
        WORKLOAD_DEADLINE,
        || {
            if let Some(status) = writer.try_wait()? {
                return Err(abort(format!(
                    "the writer on {} exited ({status}) after {seen} committed rows:\n{}",
                    host.name(),
                    output_of(host, log)
                )));
            }
            seen = read_ids(host, committed)?.len() as u64;
            Ok(seen >= rows)
        },
    )
}

/// Waits until `writer` has ended (stopped by `stop_prim`, or failed); says how.
fn wait_exit(host: &Host, writer: &mut Child, log: &str) -> Result<String> {
    let mut status = None;
    wait_until(
        &format!("the writer on {} to end", host.name()),
        DEADLINE,
        || {
            status = writer.try_wait()?;
            Ok(status.is_some())
        },
    )?;
    Ok(format!(
        "{} ({}): {}",
        status.map_or("?".into(), |s| s.to_string()),
        host.name(),
        output_of(host, log).lines().last().unwrap_or("")
    ))
}

/// With the application on node1 alone and `writer` running there: node2 joins as SECOND
/// (the first copy is made while the database has its files open), the workload goes on
/// replicated, then `hakit swap` hands the application over to node2 (node1's `stop_prim` stops
/// it, ending `writer`). Returns the rows committed on node1.
fn join_then_swap(
    p: &mut MirrorPair,
    writer: &mut Child,
    committed: &str,
    log: &str,
    rows_per_tx: u64,
) -> Result<BTreeSet<u64>> {
    let h1 = p.nodes[0].host().clone();
    wait_committed(&h1, writer, committed, log, TX_AFTER * rows_per_tx)?;
    p.hakit(1, "second")?;
    p.wait_in_sync(0)
        .map_err(|e| e.context("node2 joining while the database runs on node1"))?;
    wait_committed(&h1, writer, committed, log, 2 * TX_AFTER * rows_per_tx)?;
    p.hakit(0, "swap")?;
    p.wait_in_sync(1)
        .map_err(|e| e.context("the swap to node2 with the database running on node1"))?;
    wait_exit(&h1, writer, log)?;
    read_ids(&h1, committed)
}

fn ensure_sane(check: &SqliteCheck, node: &str) -> Result<()> {
    ensure!(
        check.integrity == "ok",
        "integrity_check on {node}: {}",
        check.integrity
    );
    ensure!(
        check.journal_mode == "wal",
        "journal mode on {node}: {}",
        check.journal_mode
    );
    ensure!(
        check.bad_crc.is_empty(),
        "rows whose payload does not match its CRC on {node}: {:?}",
        check.bad_crc
    );
    Ok(())
}

#[test]
fn sqlite_wal_keeps_every_committed_transaction_across_a_failover() -> Result<()> {
    let started = Instant::now();
    let sqlite = Sqlite::new(&format!("{DATA}/app.db"));
    let mut pair = MirrorPair::new("sqlite", config("sqlite"))?;
    for node in &pair.nodes {
        write_module_scripts(
            node.host(),
            "sqlite",
            &sqlite.start_prim(),
            &sqlite.stop_prim(),
        )?;
        sqlite.install(node.host())?;
    }
    pair.scenario(|p| {
        for i in 0..2 {
            sh(p, i, &format!("mkdir -p {DATA}"))?;
        }
        p.start_pair()?;
        let (h1, h2) = (p.nodes[0].host().clone(), p.nodes[1].host().clone());
        // The overlay's shared mmap path on its own first: pages written through a mapping
        // (then msync) reach the SECOND like any write.
        let mapped = format!("{DATA}/mapped");
        mmap_write(&h1, &mapped)?;
        let digest = |i| {
            sh(
                p,
                i,
                &format!("sha256sum < {mapped} && tail -c 5 {mapped} && head -c 13 {mapped}"),
            )
        };
        let written = digest(0)?;
        ensure!(
            written.contains("tail") && written.contains("page 00000000"),
            "{written}"
        );
        wait_until("the mmap-written file identical on node2", DEADLINE, || {
            let seen = digest(1)?;
            if seen == written {
                Ok(true)
            } else {
                Err(anyhow!("node1: {written:?}, node2: {seen:?}"))
            }
        })?;
        // SQLite serialises its writers with POSIX record locks: they hold on the mount (the
        // kernel keeps them, per node; the SECOND runs no application).
        posix_lock_check(&h1, &format!("{DATA}/lock-check"))?;

        // The workload on node1; its daemon dies in the middle (its guardian's stop_prim kills
        // the writers, whose files on the dead mount fail meanwhile).
        let log = "sqlite-writer.log";
        let mut writer = sqlite.spawn_writer(&h1)?;
        let rows = TX_BEFORE_KILL * SQLITE_ROWS_PER_TX;
        wait_committed(&h1, &mut writer, &sqlite.committed, log, rows)?;
        p.nodes[0].kill_daemon()?;
        let killed = Instant::now();
        p.wait_ready(1, State::Alone)?;
        let takeover = killed.elapsed();
        let ended = wait_exit(&h1, &mut writer, log)?;
        let committed = read_ids(&h1, &sqlite.committed)?;

        // What node2 took over: the WAL (frames not yet checkpointed into app.db) and -shm.
        let files = sh(
            p,
            1,
            &format!("cd {DATA} && stat -c '%n %s' app.db app.db-wal app.db-shm"),
        )?;
        let check = sqlite.check(&h2)?;
        ensure_sane(&check, "node2")?;
        let in_flight = SQLITE_WRITERS * SQLITE_ROWS_PER_TX;
        let verdict = check_committed(&committed, &check.ids, in_flight)?;
        let extra = check.ids.len() - committed.len();
        println!("sqlite: node1's writers ended {ended}");
        println!(
            "sqlite: node2 took over {}",
            files.trim().replace('\n', ", ")
        );
        println!(
            "sqlite: node2 ALONE {takeover:?} after the SIGKILL; {verdict}; integrity_check ok"
        );

        // The database is writable on the new primary: the workload goes on there.
        let mut writer = sqlite.spawn_writer(&h2)?;
        let rows = TX_AFTER * SQLITE_ROWS_PER_TX;
        wait_committed(&h2, &mut writer, &sqlite.committed, log, rows)?;
        kill_group(&mut writer)?;
        let check = sqlite.check(&h2)?;
        ensure_sane(&check, "node2")?;
        let all: BTreeSet<u64> = committed
            .union(&read_ids(&h2, &sqlite.committed)?)
            .copied()
            .collect();
        let verdict = check_committed(&all, &check.ids, extra as u64 + in_flight)?;
        println!(
            "sqlite: node2 went on writing: {verdict}; integrity_check ok; {:.1?} in all",
            started.elapsed()
        );
        Ok(())
    })
}

/// A lab pair named `name` whose module `pg` starts and stops PostgreSQL (installed on both
/// nodes), its data directory in the replicated folder.
fn postgres_pair(name: &str) -> Result<(Postgres, MirrorPair)> {
    let pg = Postgres::new(&format!("{DATA}/pg"))?;
    let pair = MirrorPair::new(name, config("pg"))?;
    for node in &pair.nodes {
        write_module_scripts(node.host(), "pg", &pg.start_prim(), &pg.stop_prim())?;
        pg.install(node.host())?;
    }
    Ok((pg, pair))
}

#[test]
fn postgresql_recovers_every_committed_transaction_on_the_new_primary() -> Result<()> {
    let started = Instant::now();
    let (pg, mut pair) = postgres_pair("pg")?;
    let result = pair.scenario(|p| {
        let (h1, h2) = (p.nodes[0].host().clone(), p.nodes[1].host().clone());
        // An existing cluster on node1, put under hakit's protection: the first copy takes it
        // to node2, owner and modes included.
        sh(p, 0, &pg.initdb_script())?;
        sh(p, 1, &format!("mkdir -p {DATA}"))?;
        p.start_pair()?;
        pg.wait_ready(&h1)?;
        pg.psql(&h1, pg.schema())?;
        pg.psql(&h1, "CHECKPOINT")?;
        let data_dir = |i| sh(p, i, &format!("stat -c '%U:%G %a' {}", pg.data));
        ensure!(
            data_dir(1)?.trim() == "postgres:postgres 700",
            "node2's copy of the data directory: {}",
            data_dir(1)?
        );
        // Every file's owner and mode, as each node sees it (files created by the server
        // through node1's mount are owned by postgres on node2 too).
        let listing = |i| {
            sh(
                p,
                i,
                &format!(
                    "cd {} && find . -printf '%p %y %u:%g %m\\n' | sort",
                    pg.data
                ),
            )
        };
        wait_until(
            "the data directory's owners and modes identical",
            DEADLINE,
            || {
                let (a, b) = (listing(0)?, listing(1)?);
                if a == b {
                    Ok(true)
                } else {
                    Err(anyhow!("node1:\n{a}\nnode2:\n{b}"))
                }
            },
        )?;
        let foreign = listing(1)?
            .lines()
            .filter(|l| !l.contains(" postgres:postgres "))
            .map(String::from)
            .collect::<Vec<_>>();
        ensure!(
            foreign.is_empty(),
            "{} entries not owned by postgres on node2, e.g. {:?}",
            foreign.len(),
            &foreign[..foreign.len().min(10)]
        );

        let log = "pg-writer.log";
        let mut writer = pg.spawn_writer(&h1)?;
        // Half the workload, a checkpoint (data files written and fsynced, WAL segments
        // recycled), the other half: recovery on node2 replays from that checkpoint.
        let rows = TX_BEFORE_KILL * PG_ROWS_PER_TX;
        wait_committed(&h1, &mut writer, &pg.committed, log, rows / 2)?;
        pg.psql(&h1, "CHECKPOINT")?;
        wait_committed(&h1, &mut writer, &pg.committed, log, rows)?;
        let postmaster = pg.postmaster_pid(&h1)?;
        p.nodes[0].kill_daemon()?;
        let killed = Instant::now();
        p.wait_ready(1, State::Alone)?;
        let takeover = killed.elapsed();
        pg.wait_ready(&h2)?;
        let serving = killed.elapsed();
        // node1's guardian stops its server (the overlay under it died with the daemon).
        wait_until(
            &format!("node1's postmaster {postmaster} to end"),
            DEADLINE,
            || Ok(process_ended(postmaster)),
        )?;
        let ended = wait_exit(&h1, &mut writer, log)?;
        let committed = read_ids(&h1, &pg.committed)?;

        let rows_of = |host: &Host| -> Result<BTreeSet<u64>> {
            let present = parse_ids(&pg.psql(host, "SELECT id FROM rows ORDER BY id")?)?;
            let bad = pg.psql(
                host,
                "SELECT count(*) FROM rows \
                 WHERE payload <> md5(id::text) || repeat('x', (id % 2000)::int)",
            )?;
            ensure!(
                bad.trim() == "0",
                "{} rows with a wrong payload on {}",
                bad.trim(),
                host.name()
            );
            // amcheck: the primary key index and the heap agree, tuple by tuple.
            pg.psql(
                host,
                "CREATE EXTENSION IF NOT EXISTS amcheck; \
                 SELECT bt_index_parent_check('rows_pkey', true);",
            )?;
            let heap = pg.psql(host, "SELECT count(*) FROM verify_heapam('rows')")?;
            ensure!(
                heap.trim() == "0",
                "verify_heapam found {} problems on {}",
                heap.trim(),
                host.name()
            );
            Ok(present)
        };
        let present = rows_of(&h2)?;
        let in_flight = PG_WRITERS * PG_ROWS_PER_TX;
        let verdict = check_committed(&committed, &present, in_flight)?;
        let extra = present.len() - committed.len();
        let server_log = pg.server_log(&h2);
        ensure!(
            server_log.contains("database system was interrupted")
                || server_log.contains("was not properly shut down"),
            "node2's server did not run crash recovery, yet node1's server was running:\n{server_log}"
        );
        println!("postgresql: node1's writers ended {ended}");
        println!(
            "postgresql: node2 ALONE {takeover:?} after the SIGKILL, accepting connections after \
             {serving:?} (crash recovery done); {verdict}; amcheck and verify_heapam clean"
        );

        // The new primary takes writes.
        let mut writer = pg.spawn_writer(&h2)?;
        let rows = TX_AFTER * PG_ROWS_PER_TX;
        wait_committed(&h2, &mut writer, &pg.committed, log, rows)?;
        kill_group(&mut writer)?;
        let present = rows_of(&h2)?;
        let all: BTreeSet<u64> = committed.union(&read_ids(&h2, &pg.committed)?).copied().collect();
        let verdict = check_committed(&all, &present, extra as u64 + in_flight)?;
        println!(
            "postgresql: node2 went on writing: {verdict}; amcheck and verify_heapam clean; \
             {:.1?} in all",
            started.elapsed()
        );
        Ok(())
    });
    result.map_err(|e| anyhow!("{e:#}\n{}", pg_logs(&pair, &pg)))
}

#[test]
fn sqlite_wal_moves_to_a_secondary_that_joined_while_it_ran() -> Result<()> {
    let started = Instant::now();
    let sqlite = Sqlite::new(&format!("{DATA}/app.db"));
    let mut pair = MirrorPair::new("sqlite-join", config("sqlite"))?;
    for node in &pair.nodes {
        write_module_scripts(
            node.host(),
            "sqlite",
            &sqlite.start_prim(),
            &sqlite.stop_prim(),
        )?;
        sqlite.install(node.host())?;
    }
    pair.scenario(|p| {
        for i in 0..2 {
            sh(p, i, &format!("mkdir -p {DATA}"))?;
        }
        let (h1, h2) = (p.nodes[0].host().clone(), p.nodes[1].host().clone());
        p.hakit(0, "prim")?;
        p.wait_ready(0, State::Alone)?;
        let log = "sqlite-writer.log";
        let mut writer = sqlite.spawn_writer(&h1)?;
        let committed = join_then_swap(p, &mut writer, &sqlite.committed, log, SQLITE_ROWS_PER_TX)?;
        let check = sqlite.check(&h2)?;
        ensure_sane(&check, "node2")?;
        let verdict = check_committed(&committed, &check.ids, SQLITE_WRITERS * SQLITE_ROWS_PER_TX)?;
        println!(
            "sqlite: node2 joined while the writers ran on node1, then took the database over by \
             swap: {verdict}; integrity_check ok; {:.1?} in all",
            started.elapsed()
        );
        Ok(())
    })
}

#[test]
fn postgresql_moves_to_a_secondary_that_joined_while_it_ran() -> Result<()> {
    let started = Instant::now();
    let (pg, mut pair) = postgres_pair("pg-join")?;
    let result = pair.scenario(|p| {
        let (h1, h2) = (p.nodes[0].host().clone(), p.nodes[1].host().clone());
        sh(p, 0, &pg.initdb_script())?;
        sh(p, 1, &format!("mkdir -p {DATA}"))?;
        p.hakit(0, "prim")?;
        p.wait_ready(0, State::Alone)?;
        pg.wait_ready(&h1)?;
        pg.psql(&h1, pg.schema())?;
        let log = "pg-writer.log";
        let mut writer = pg.spawn_writer(&h1)?;
        let committed = join_then_swap(p, &mut writer, &pg.committed, log, PG_ROWS_PER_TX)?;
        pg.wait_ready(&h2)?;
        let present = parse_ids(&pg.psql(&h2, "SELECT id FROM rows ORDER BY id")?)?;
        let verdict = check_committed(&committed, &present, PG_WRITERS * PG_ROWS_PER_TX)?;
        pg.psql(
            &h2,
            "CREATE EXTENSION IF NOT EXISTS amcheck; \
             SELECT bt_index_parent_check('rows_pkey', true);",
        )?;
        println!(
            "postgresql: node2 joined while the server ran on node1, then took it over by swap: \
             {verdict}; amcheck clean; {:.1?} in all",
            started.elapsed()
        );
        Ok(())
    });
    result.map_err(|e| anyhow!("{e:#}\n{}", pg_logs(&pair, &pg)))
}

/// Both nodes' PostgreSQL server logs, to explain a failure.
fn pg_logs(pair: &MirrorPair, pg: &Postgres) -> String {
    let logs: Vec<String> = pair
        .nodes
        .iter()
        .map(|n| {
            format!(
                "--- {} postgres.log:\n{}",
                n.name(),
                pg.server_log(n.host())
            )
        })
        .collect();
    logs.join("\n")
}
