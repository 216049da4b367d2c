//! Real databases on a lab node's replicated directory: SQLite in WAL mode driven by Python's
//! `sqlite3` module, and PostgreSQL from Debian's `postgresql` package run as user `postgres`.
//!
//! Each workload writes numbered rows in transactions and appends every id to a "committed" file
//! outside the replicated directory once its `COMMIT` has returned, so that after a failover the
//! test knows exactly which rows the new primary must hold. Scripts and files here live in the
//! node's private `/var/lib/hakit` and `/var/log/hakit` (not replicated); only the databases'
//! own files are under the replicated directory, and they are always written through the node's
//! mount (inside its namespaces), never beneath it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::host::Host;
use crate::wait::wait_until;

/// Debian's Python (package `python3`; its `sqlite3` module is in the standard library), not
/// whatever `python3` comes first in the caller's PATH.
pub const PYTHON: &str = "/usr/bin/python3";
/// Where Debian's `postgresql-NN` packages put their server binaries.
const POSTGRES_LIB: &str = "/usr/lib/postgresql";

/// Writes a module's `bin/start_prim` and `bin/stop_prim` into `host`, replacing those of
/// [`crate::MirrorConfig::write`] (scripts are read when run, so this may follow it).
pub fn write_module_scripts(host: &Host, module: &str, start: &str, stop: &str) -> Result<()> {
    let bin = format!("/etc/hakit/modules/{module}/bin");
    host.write_file(format!("{bin}/start_prim"), start, 0o755)?;
    host.write_file(format!("{bin}/stop_prim"), stop, 0o755)
}

/// The ids of a "committed" file (one decimal id per line), as the harness reads it.
pub fn read_ids(host: &Host, path: &str) -> Result<BTreeSet<u64>> {
    if !host.path(path)?.exists() {
        return Ok(BTreeSet::new());
    }
    parse_ids(&host.read_file(path)?)
        .with_context(|| format!("reading the ids of {path} on {}", host.name()))
}

/// Whitespace-separated decimal ids.
pub fn parse_ids(text: &str) -> Result<BTreeSet<u64>> {
    text.split_whitespace()
        .map(|w| w.parse::<u64>().map_err(|e| anyhow!("bad id {w:?} ({e})")))
        .collect()
}

/// Every committed id must be in `present`. `present` may also hold rows of the transactions
/// whose `COMMIT` was in flight when the primary died (committed in the database, never
/// recorded): at most `in_flight` of them (writers × rows per transaction). Returns a sentence
/// for the report.
pub fn check_committed(
    committed: &BTreeSet<u64>,
    present: &BTreeSet<u64>,
    in_flight: u64,
) -> Result<String> {
    let missing: Vec<u64> = committed.difference(present).copied().collect();
    if !missing.is_empty() {
        bail!(
            "{} of {} committed rows are missing on the new primary (first ones: {:?}; the new \
             primary has {} rows, up to id {:?})",
            missing.len(),
            committed.len(),
            &missing[..missing.len().min(20)],
            present.len(),
            present.last()
        );
    }
    let extra: Vec<u64> = present.difference(committed).copied().collect();
    if extra.len() as u64 > in_flight {
        bail!(
            "{} rows on the new primary were never recorded as committed, more than the {in_flight} \
             of the transactions in flight (first ones: {:?})",
            extra.len(),
            &extra[..extra.len().min(20)]
        );
    }
    Ok(format!(
        "{} committed rows all present (ids up to {}); {} more row(s) from transactions in flight",
        committed.len(),
        committed.last().copied().unwrap_or(0),
        extra.len()
    ))
}

/// SQLite in WAL mode: `db` under the replicated directory, a Python writer and checker.
#[derive(Debug, Clone)]
pub struct Sqlite {
    /// The database file, e.g. `/srv/app/data/app.db`.
    pub db: String,
    /// Ids whose transaction committed, appended after `COMMIT` returned (not replicated).
    pub committed: String,
    /// The writer's pid, for `stop_prim`.
    pub pid_file: String,
    /// Where the Python scripts are written (not replicated).
    pub script_dir: String,
}

/// Rows per transaction of the SQLite writers.
pub const SQLITE_ROWS_PER_TX: u64 = 5;
/// Concurrent writer processes on the SQLite database (they take turns through SQLite's
/// POSIX locks and share its `-shm` mapping).
pub const SQLITE_WRITERS: u64 = 2;

/// The SQLite writers: [`SQLITE_WRITERS`] processes inserting [`SQLITE_ROWS_PER_TX`] rows per
/// transaction (ids chosen by SQLite), each id appended to the committed file after `COMMIT`
/// returned. `synchronous=FULL`: every commit fsyncs the WAL, so each `COMMIT` is
/// durable on both nodes before it returns (an fsync through the overlay is durable on the
/// peer too). `NORMAL` would be enough against the crash of a process or of the primary alone
/// (in WAL mode it only skips the WAL fsync at commit, and the peer holds every acknowledged
/// write in memory anyway) but not against power loss of both; `FULL` also exercises the fsync
/// path of the overlay on each transaction. A small `wal_autocheckpoint` makes checkpoints
/// (WAL frames copied into the database file, WAL reset) happen during the run, and one
/// transaction in 25 carries a 200 KiB blob (overflow pages). The `-shm` wal-index is a shared
/// writable mmap, the overlay's mmap path; `mmap_size` makes SQLite read the database file
/// through a (read-only) mmap as well.
const SQLITE_WRITER: &str = r#"import os, random, sqlite3, sys, zlib
db, committed, pid_file = sys.argv[1:4]
PER_TX, WRITERS = int(sys.argv[4]), int(sys.argv[5])

def connect():
    con = sqlite3.connect(db, isolation_level=None, timeout=60)
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA wal_autocheckpoint=64")
    con.execute("PRAGMA mmap_size=67108864")
    return con

con = connect()
mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
if mode != "wal":
    sys.exit(f"journal_mode is {mode}, not wal")
con.execute("CREATE TABLE IF NOT EXISTS rows("
            "id INTEGER PRIMARY KEY, payload BLOB NOT NULL, crc INTEGER NOT NULL)")
con.close()

def work(k):
    con = connect()
    rng = random.Random(os.getpid())
    out = os.open(committed, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print(f"writer {k} ({os.getpid()}): WAL mode, synchronous=FULL", flush=True)
    tx = 0
    while True:
        ids = []
        con.execute("BEGIN IMMEDIATE")
        for r in range(PER_TX):
            size = 200 * 1024 if tx % 25 == 24 and r == 0 else rng.randrange(16, 3000)
            payload = rng.randbytes(size)
            cur = con.execute("INSERT INTO rows(payload, crc) VALUES (?, ?)",
                              (payload, zlib.crc32(payload)))
            ids.append(cur.lastrowid)
        con.execute("COMMIT")
        # Only now is the transaction committed: record it in one append (a local file).
        os.write(out, "".join(f"{n}\n" for n in ids).encode())
        tx += 1

pids = []
for k in range(WRITERS):
    pid = os.fork()
    if pid == 0:
        try:
            work(k)
        except BaseException as e:
            print(f"writer {k} ({os.getpid()}): {type(e).__name__}: {e}", flush=True)
        os._exit(1)
    pids.append(pid)
with open(pid_file, "w") as f:
    f.write("".join(f"{p}\n" for p in [os.getpid()] + pids))
failed = 0
for _ in pids:
    _, status = os.wait()
    failed += status != 0
sys.exit(f"{failed} of {WRITERS} writers failed" if failed else 0)
"#;

/// Prints `journal <mode>`, `integrity <result>`, `badcrc <ids>` and `ids <ids>`.
const SQLITE_CHECK: &str = r#"import sqlite3, sys, zlib
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
print("journal", con.execute("PRAGMA journal_mode").fetchone()[0])
print("integrity", "; ".join(r[0] for r in con.execute("PRAGMA integrity_check")))
bad = [str(i) for i, p, c in con.execute("SELECT id, payload, crc FROM rows") if zlib.crc32(p) != c]
print("badcrc", " ".join(bad))
print("ids", " ".join(str(r[0]) for r in con.execute("SELECT id FROM rows ORDER BY id")))
"#;

/// Writes a file through a shared writable mmap (what SQLite does to its `-shm`), `msync`s it
/// and closes it: 256 pages, each starting with `page NNNNNNNN`, and `tail` at the end.
const MMAP_WRITER: &str = r#"import mmap, os, sys
size = 256 * 4096
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
for page in range(256):
    m[page * 4096:page * 4096 + 13] = b"page %08d" % page
m[size - 5:] = b"tail\n"
m.flush()
m.close()
os.close(fd)
"#;

/// Writes `path` in `host` through a shared writable mmap (see [`MMAP_WRITER`]).
pub fn mmap_write(host: &Host, path: &str) -> Result<()> {
    host.run_ok([PYTHON, "-c", MMAP_WRITER, path]).map(drop)
}

/// Takes a POSIX write lock (`fcntl(F_SETLK)`, what SQLite uses) on a file and checks that
/// another process is refused the same lock, then gets it once released. Prints `locks ok`.
const LOCK_CHECK: &str = r#"import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
def child_can_lock():
    pid = os.fork()
    if pid == 0:
        c = os.open(sys.argv[1], os.O_RDWR)
        try:
            fcntl.lockf(c, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)
            os._exit(0)
        except OSError:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 120)
if child_can_lock():
    sys.exit("another process got a write lock held by this one")
fcntl.lockf(fd, fcntl.LOCK_UN, 1, 120)
if not child_can_lock():
    sys.exit("another process cannot lock a released byte")
print("locks ok")
"#;

/// Checks POSIX record locks between two processes of `host` on `path` (see [`LOCK_CHECK`]).
pub fn posix_lock_check(host: &Host, path: &str) -> Result<()> {
    let out = host.run_ok([PYTHON, "-c", LOCK_CHECK, path])?;
    if out.trim() != "locks ok" {
        bail!("POSIX lock check on {path} in {}: {out}", host.name());
    }
    Ok(())
}

/// What [`Sqlite::check`] found in the database.
#[derive(Debug)]
pub struct SqliteCheck {
    pub journal_mode: String,
    pub integrity: String,
    pub bad_crc: Vec<String>,
    pub ids: BTreeSet<u64>,
}

impl Sqlite {
    /// The database `db`; scripts and bookkeeping in `/var/lib/hakit/sqlite-app/`.
    pub fn new(db: &str) -> Sqlite {
        let dir = "/var/lib/hakit/sqlite-app";
        Sqlite {
            db: db.into(),
            committed: format!("{dir}/committed"),
            pid_file: format!("{dir}/writer.pid"),
            script_dir: dir.into(),
        }
    }

    fn writer_path(&self) -> String {
        format!("{}/writer.py", self.script_dir)
    }

    fn check_path(&self) -> String {
        format!("{}/check.py", self.script_dir)
    }

    /// Writes the Python scripts into `host`.
    pub fn install(&self, host: &Host) -> Result<()> {
        if !Path::new(PYTHON).is_file() {
            bail!("{PYTHON} is missing: run `cargo xtask setup` (Debian's python3)");
        }
        host.write_file(self.writer_path(), SQLITE_WRITER, 0o644)?;
        host.write_file(self.check_path(), SQLITE_CHECK, 0o644)
    }

    /// `start_prim`: the application is the writer the test starts; nothing to do but log.
    pub fn start_prim(&self) -> String {
        format!(
            "#!/bin/sh\n# The SQLite application (the writer) is started by the test.\n\
             echo \"start_prim on ${{HAKIT_NODE:-?}}: {} ready\"\n",
            self.db
        )
    }

    /// `stop_prim`: kills the writers (SIGKILL: a crash of the application, the worst case for
    /// the database; idempotent).
    pub fn stop_prim(&self) -> String {
        let pid_file = &self.pid_file;
        format!(
            r#"#!/bin/sh
# Stops the SQLite writers started by the test; idempotent.
pid_file={pid_file}
[ -f "$pid_file" ] || exit 0
for pid in $(cat "$pid_file"); do
  if grep -q writer.py "/proc/$pid/cmdline" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null && echo "stop_prim: killed SQLite writer process $pid"
  fi
done
rm -f "$pid_file"
"#
        )
    }

    /// Starts the writers in `host` (output in [`Host::output_file`]`("sqlite-writer.log")`),
    /// in a process group of their own (see [`kill_group`]).
    pub fn spawn_writer(&self, host: &Host) -> Result<Child> {
        let (per_tx, writers) = (SQLITE_ROWS_PER_TX.to_string(), SQLITE_WRITERS.to_string());
        let writer = self.writer_path();
        host.spawn(
            [
                "setsid",
                PYTHON,
                writer.as_str(),
                self.db.as_str(),
                self.committed.as_str(),
                self.pid_file.as_str(),
                per_tx.as_str(),
                writers.as_str(),
            ],
            "sqlite-writer.log",
        )
    }

    /// Opens the database in `host` (through its mount) and reads what it holds.
    pub fn check(&self, host: &Host) -> Result<SqliteCheck> {
        let out = host.run_ok([PYTHON, &self.check_path(), &self.db])?;
        let field = |name: &str| -> Result<String> {
            out.lines()
                .find_map(|l| {
                    l.strip_prefix(name)
                        .filter(|rest| rest.is_empty() || rest.starts_with(' '))
                })
                .map(|rest| rest.trim().to_string())
                .ok_or_else(|| anyhow!("no {name:?} line in the check's output: {out}"))
        };
        Ok(SqliteCheck {
            journal_mode: field("journal")?,
            integrity: field("integrity")?,
            bad_crc: field("badcrc")?
                .split_whitespace()
                .map(String::from)
                .collect(),
            ids: parse_ids(&field("ids")?)?,
        })
    }
}

/// The directory of the newest PostgreSQL server binaries (`/usr/lib/postgresql/<N>/bin`).
pub fn postgres_bin_dir() -> Result<PathBuf> {
    let entries = fs::read_dir(POSTGRES_LIB).with_context(|| {
        format!(
            "no PostgreSQL server in {POSTGRES_LIB}: run `cargo xtask setup` (Debian's postgresql)"
        )
    })?;
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in entries {
        let entry = entry?;
        let Some(version) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if bin.join("postgres").is_file() && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin).ok_or_else(|| {
        anyhow!("no {POSTGRES_LIB}/<version>/bin/postgres: run `cargo xtask setup` (Debian's postgresql)")
    })
}

/// A PostgreSQL cluster whose data directory is under the replicated directory, run as user
/// `postgres`, reachable only on a Unix socket in the node's private `run_dir` (nodes share
/// `/var/run/postgresql`, not their `/var/lib/hakit`).
#[derive(Debug, Clone)]
pub struct Postgres {
    /// `/usr/lib/postgresql/<N>/bin`.
    pub bin: PathBuf,
    /// The data directory, e.g. `/srv/app/data/pg`.
    pub data: String,
    /// Socket directory and pid file (`external_pid_file`), private to the node.
    pub run_dir: String,
    /// The server log, private to the node.
    pub log_file: String,
    /// Ids whose transaction committed, appended after `COMMIT` returned (not replicated).
    pub committed: String,
}

/// Rows per transaction of the PostgreSQL writers.
pub const PG_ROWS_PER_TX: u64 = 5;
/// Concurrent client loops writing to PostgreSQL.
pub const PG_WRITERS: u64 = 2;

impl Postgres {
    pub fn new(data: &str) -> Result<Postgres> {
        Ok(Postgres {
            bin: postgres_bin_dir()?,
            data: data.into(),
            run_dir: "/var/lib/hakit/postgresql".into(),
            log_file: "/var/log/hakit/postgresql/postgres.log".into(),
            committed: "/var/lib/hakit/pg-committed".into(),
        })
    }

    fn bin(&self, program: &str) -> String {
        self.bin.join(program).to_string_lossy().into_owned()
    }

    fn pid_file(&self) -> String {
        format!("{}/postmaster.pid", self.run_dir)
    }

    fn writer_path(&self) -> String {
        "/var/lib/hakit/pg-writer.sh".into()
    }

    /// A shell prelude creating the node's private folders for the server.
    fn private_dirs(&self) -> String {
        let log_dir = Path::new(&self.log_file)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/var/log/hakit".into());
        format!(
            "install -d -o postgres -g postgres -m 0700 {run} && \
             install -d -o postgres -g postgres -m 0755 {log_dir}",
            run = self.run_dir
        )
    }

    /// Shell commands creating the cluster (run as root in the node, before the module starts:
    /// an existing database put under hakit's protection). One-MiB WAL segments so that the
    /// workload switches, creates and recycles segments.
    pub fn initdb_script(&self) -> String {
        let (data, run) = (&self.data, &self.run_dir);
        format!(
            "set -e\n{dirs}\n\
             install -d -o postgres -g postgres -m 0700 {data}\n\
             runuser -u postgres -- {initdb} -D {data} -U postgres --auth=trust -E UTF8 \
               --locale=C --wal-segsize=1 --no-instructions\n\
             cat >> {data}/postgresql.conf <<'EOF'\n\
             # hakit lab: only a Unix socket in the node's private folder.\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{run}'\n\
             external_pid_file = '{run}/postmaster.pid'\n\
             # A dying overlay (the daemon killed) must stop the server, not restart it.\n\
             restart_after_crash = off\n\
             fsync = on\n\
             synchronous_commit = on\n\
             full_page_writes = on\n\
             min_wal_size = 4MB\n\
             max_wal_size = 8MB\n\
             checkpoint_timeout = 30s\n\
             shared_buffers = 16MB\n\
             EOF\n",
            dirs = self.private_dirs(),
            initdb = self.bin("initdb"),
        )
    }

    /// `start_prim`: starts the server on the data directory (crash recovery included) and waits
    /// a little for it to accept connections. Idempotent.
    pub fn start_prim(&self) -> String {
        let (data, log, pid_file) = (&self.data, &self.log_file, self.pid_file());
        format!(
            r#"#!/bin/sh
# Starts PostgreSQL on the replicated data directory; idempotent.
set -eu
{dirs}
pid_file={pid_file}
if [ -f "$pid_file" ] && [ "$(cat "/proc/$(head -n1 "$pid_file")/comm" 2>/dev/null)" = postgres ]; then
  echo "start_prim: PostgreSQL already running ($(head -n1 "$pid_file"))"
  exit 0
fi
# No server of this node runs, and hakit lets one node only be primary: a postmaster.pid in the
# data directory was left by the previous primary (the other node) and names a process of that
# node. PostgreSQL would refuse to start if that number happened to be a live process here
# (always in the lab, whose hosts share one PID namespace), so it goes, as in any HA start script.
if [ -f {data}/postmaster.pid ]; then
  echo "start_prim: removing the previous primary's postmaster.pid (PID $(head -n1 {data}/postmaster.pid))"
  rm -f {data}/postmaster.pid
fi
echo "start_prim on ${{HAKIT_NODE:-?}}: starting PostgreSQL on {data}"
# Waits below hakit's start timeout (forcestoptimeout, 5 s in the lab): a longer crash recovery
# goes on in the background (the postmaster has its own session) and clients wait for it.
if runuser -u postgres -- {pg_ctl} start -D {data} -l {log} -w -t 3; then
  echo "start_prim: PostgreSQL running ($(head -n1 "$pid_file"))"
elif [ -f "$pid_file" ] && [ "$(cat "/proc/$(head -n1 "$pid_file")/comm" 2>/dev/null)" = postgres ]; then
  echo "start_prim: PostgreSQL ($(head -n1 "$pid_file")) still starting (crash recovery), in the background"
else
  echo "start_prim: PostgreSQL did not start: see {log}"
  exit 1
fi
"#,
            dirs = self.private_dirs(),
            pg_ctl = self.bin("pg_ctl"),
        )
    }

    /// `stop_prim`: fast shutdown (SIGINT to the postmaster), then immediate (SIGQUIT), then
    /// SIGKILL of its process group (pg_ctl makes the postmaster a session leader). The pid
    /// comes from the `external_pid_file` in the node's private folder, not from the data
    /// directory, which is unreachable when the overlay died with the daemon. With `force`
    /// (hakit's second call after `nicestoptimeout`) it skips the fast shutdown.
    pub fn stop_prim(&self) -> String {
        let pid_file = self.pid_file();
        format!(
            r#"#!/bin/sh
# Stops PostgreSQL; idempotent.
pid_file={pid_file}
[ -f "$pid_file" ] || {{ echo "stop_prim: PostgreSQL not running"; exit 0; }}
pid=$(head -n1 "$pid_file")
alive() {{ [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] && \
  [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; }}
wait_gone() {{ i=0; while alive && [ "$i" -lt "$1" ]; do sleep 0.1; i=$((i + 1)); done; ! alive; }}
if alive && [ "${{1:-}}" != force ]; then
  echo "stop_prim: fast shutdown of PostgreSQL $pid"
  kill -INT "$pid" 2>/dev/null
  wait_gone 40 && echo "stop_prim: PostgreSQL stopped"
fi
if alive; then
  echo "stop_prim: immediate shutdown of PostgreSQL $pid"
  kill -QUIT "$pid" 2>/dev/null
  wait_gone 20 || {{ echo "stop_prim: killing PostgreSQL's process group $pid"; kill -9 -- "-$pid" 2>/dev/null; wait_gone 20; }}
fi
# Children (backends) of a postmaster that died first: its process group.
kill -9 -- "-$pid" 2>/dev/null || true
rm -f "$pid_file"
"#
        )
    }

    /// The client workload: [`PG_WRITERS`] loops of one `psql` per transaction, each
    /// inserting [`PG_ROWS_PER_TX`] rows (ids from a sequence, payload derived from the id) in
    /// one statement (its own transaction: psql succeeds only once the server said the
    /// transaction committed) and appending the ids it returned once it succeeded; a loop stops
    /// at its first failure.
    pub fn writer_script(&self) -> String {
        let (run, committed) = (&self.run_dir, &self.committed);
        let (per_tx, writers) = (PG_ROWS_PER_TX, PG_WRITERS);
        format!(
            r#"#!/bin/sh
# Inserts rows in committed transactions; records each id once COMMIT has returned.
psql() {{ {psql} -X -q -A -t -h {run} -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }}
work() {{
  echo "pg writer $1 ($$): starting"
  while :; do
    if ! ids=$(psql -c "INSERT INTO rows SELECT n, md5(n::text) || repeat('x', (n % 2000)::int) \
        FROM (SELECT nextval('rows_id') AS n FROM generate_series(1, {per_tx})) s RETURNING id"); then
      echo "pg writer $1: a transaction failed"
      return 1
    fi
    printf '%s\n' "$ids" >> {committed}
  done
}}
pids=
for k in $(seq 1 {writers}); do work "$k" & pids="$pids $!"; done
failed=0
for pid in $pids; do wait "$pid" || failed=$((failed + 1)); done
echo "pg writer: $failed of {writers} loops failed"
exit 1
"#,
            psql = self.bin("psql"),
        )
    }

    /// The table and sequence the workload writes, as SQL.
    pub fn schema(&self) -> &'static str {
        "CREATE TABLE rows(id bigint PRIMARY KEY, payload text NOT NULL); \
         CREATE SEQUENCE rows_id;"
    }

    /// Writes the client workload into `host`.
    pub fn install(&self, host: &Host) -> Result<()> {
        host.write_file(self.writer_path(), self.writer_script(), 0o755)
    }

    /// Starts the client workload in `host` (output in `pg-writer.log`), in a process group of
    /// its own (see [`kill_group`]).
    pub fn spawn_writer(&self, host: &Host) -> Result<Child> {
        host.spawn(
            ["setsid", "sh", self.writer_path().as_str()],
            "pg-writer.log",
        )
    }

    /// Runs SQL in `host` with `psql` (unaligned, tuples only): its output.
    pub fn psql(&self, host: &Host, sql: &str) -> Result<String> {
        host.run_ok([
            self.bin("psql").as_str(),
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            &self.run_dir,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
    }

    /// Waits until the server of `host` accepts connections and answers (a crash recovery may
    /// outlast `start_prim`, see [`Postgres::start_prim`]).
    pub fn wait_ready(&self, host: &Host) -> Result<()> {
        wait_until(
            &format!("PostgreSQL on {} to accept connections", host.name()),
            Duration::from_secs(120),
            || Ok(self.psql(host, "SELECT 1")?.trim() == "1"),
        )
    }

    /// The postmaster's pid on `host`, from its `external_pid_file`, while it runs.
    pub fn postmaster_pid(&self, host: &Host) -> Result<u32> {
        let text = host.read_file(self.pid_file())?;
        let line = text.lines().next().unwrap_or("");
        line.trim().parse().map_err(|e| {
            anyhow!(
                "bad pid {line:?} in {} on {} ({e})",
                self.pid_file(),
                host.name()
            )
        })
    }

    /// The server log of `host`.
    pub fn server_log(&self, host: &Host) -> String {
        host.read_file(&self.log_file)
            .unwrap_or_else(|e| format!("(no server log: {e:#})"))
    }
}

/// SIGKILLs the process group led by `child` (a writer started with `setsid`: it and every
/// process it forked) and reaps `child`.
pub fn kill_group(child: &mut Child) -> Result<()> {
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    if child.try_wait()?.is_none() {
        killpg(pid, Signal::SIGKILL).with_context(|| format!("killing process group {pid}"))?;
    }
    child
        .wait()
        .with_context(|| format!("reaping process {pid}"))?;
    Ok(())
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet). Lab hosts share the
/// harness's PID namespace, so this sees their processes.
pub fn process_ended(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses (which may hold spaces).
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> BTreeSet<u64> {
        list.iter().copied().collect()
    }

    #[test]
    fn every_committed_id_must_be_present() {
        let err = check_committed(&ids(&[1, 2, 3]), &ids(&[1, 3]), 5).unwrap_err();
        assert!(
            format!("{err}").contains("1 of 3 committed rows are missing"),
            "{err}"
        );
    }

    #[test]
    fn only_the_transactions_in_flight_may_add_rows() {
        assert!(check_committed(&ids(&[1, 2]), &ids(&[1, 2, 3, 4]), 2).is_ok());
        assert!(check_committed(&ids(&[2]), &ids(&[1, 2]), 1).is_ok());
        assert!(check_committed(&ids(&[1, 2]), &ids(&[1, 2, 3, 4, 5]), 2).is_err());
    }

    #[test]
    fn ids_parse_or_fail() {
        assert_eq!(parse_ids("1\n2 3\n").unwrap(), ids(&[1, 2, 3]));
        assert!(parse_ids("1\nx\n").is_err());
    }
}
