//! The zero-loss torture's tools: a writer process run inside a node that appends numbered,
//! checksummed records to a file of the replicated directory and notes, outside it, every
//! record whose `write` (or `fsync`) returned, with the time; the checks of what a node holds afterwards; a
//! small seeded random generator; the knobs read from the environment.
//!
//! Record format, one line each: `<seq> <crc32 of "<seq> <payload>", 8 hex digits> <payload>\n`,
//! seq counting from 1 in each file. A writer appends `<seq> <Unix time in ms>` for each
//! acknowledged record, one a line, to a file of `/var/lib/hakit` (private to the node, not
//! replicated) right after the call returned: a record listed there was acknowledged to the
//! application.

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::host::Host;

/// Where [`install_writer`] puts the writer script in a node (private, not replicated).
pub const WRITER_SCRIPT: &str = "/var/lib/hakit/torture-writer.py";

/// The writer: `python3 WRITER_SCRIPT <data file> <acked file> fsync|nofsync <seed>`.
/// Stops at the first error (the mount vanishes with a killed daemon: ENOTCONN, EIO), or a
/// short write (a large record split into several FUSE requests, cut half-way).
const WRITER_PY: &str = r#"import os, random, sys, time, zlib

path, acked_path, mode, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
acked = open(acked_path, "a")
seq = 0
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while True:
        seq += 1
        # Mostly small records; now and then one of 32 KiB to 320 KiB (several FUSE requests).
        if rng.randrange(150) == 0:
            size = rng.randrange(16 * 1024, 160 * 1024)
        else:
            size = rng.randrange(4, 150)
        payload = rng.randbytes(size).hex()
        body = "%d %s" % (seq, payload)
        line = ("%d %08x %s\n" % (seq, zlib.crc32(body.encode()), payload)).encode()
        done = os.write(fd, line)
        if done != len(line):
            raise OSError("short write: %d of %d bytes" % (done, len(line)))
        if mode == "fsync":
            os.fsync(fd)
        acked.write("%d %d\n" % (seq, time.time() * 1000))
        acked.flush()
except OSError as e:
    sys.stderr.write("writer %s stopped at record %d: %s\n" % (path, seq, e))
"#;

/// Writes the writer script into `host`.
pub fn install_writer(host: &Host) -> Result<()> {
    host.write_file(WRITER_SCRIPT, WRITER_PY, 0o644)
}

/// A writer process started inside a node by [`Writer::start`].
pub struct Writer {
    host: Host,
    name: String,
    data: String,
    acked: String,
    log: PathBuf,
    child: Child,
    reaped: Option<ExitStatus>,
}

impl Writer {
    /// Starts a writer on `host` appending to `data` (a path through the node's mount), its
    /// acknowledged seqs to `acked` (under `/var/lib/hakit`); `fsync`: after every record.
    /// `name` names its output file (see [`Host::output_file`]).
    pub fn start(
        host: &Host,
        name: &str,
        data: &str,
        acked: &str,
        fsync: bool,
        seed: u64,
    ) -> Result<Writer> {
        let log_name = format!("writer-{name}.log");
        let log = host.output_file(&log_name)?;
        let mode = if fsync { "fsync" } else { "nofsync" };
        let seed = seed.to_string();
        let child = host.spawn(
            ["python3", WRITER_SCRIPT, data, acked, mode, seed.as_str()],
            &log_name,
        )?;
        Ok(Writer {
            host: host.clone(),
            name: name.to_string(),
            data: data.to_string(),
            acked: acked.to_string(),
            log,
            child,
            reaped: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data file, as the node sees it.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The records the writer has acknowledged so far (see [`acked_records`]); none before
    /// it created its file.
    pub fn acked(&self) -> Result<Vec<(u64, u64)>> {
        let real = self.host.path(&self.acked)?;
        if !real.exists() {
            return Ok(Vec::new());
        }
        acked_records(&self.host.read_file(&self.acked)?)
            .with_context(|| format!("the acknowledgements of writer {}", self.name))
    }

    /// SIGKILLs the writer without waiting for it: a process blocked in a FUSE request that
    /// the daemon already received dies only when the daemon answers. Once this returns, the
    /// writer never runs another instruction of its own, so its acknowledgements are final.
    pub fn kill(&mut self) -> Result<()> {
        if self.reaped.is_some() || self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(self.child.id())?);
        match kill(pid, Signal::SIGKILL) {
            // Exited since try_wait: a zombie answers ESRCH only once reaped, so this is rare.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("SIGKILL to writer {}", self.name)),
        }
    }

    /// Waits until the writer has exited (after [`Writer::kill`], or on its own), at most
    /// `deadline`; an error then says it is stuck, with its kernel stack when readable.
    pub fn reap(&mut self, deadline: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.reaped {
            return Ok(status);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = Some(status);
                return Ok(status);
            }
            if start.elapsed() > deadline {
                let pid = self.child.id();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let stack =
                    std::fs::read_to_string(format!("/proc/{pid}/stack")).unwrap_or_default();
                bail!(
                    "writer {} (pid {pid}) still alive {deadline:?} after SIGKILL: stat {:?}; \
                     kernel stack:\n{stack}",
                    self.name,
                    stat.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the writer printed (why it stopped).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Best effort; the lab's teardown kills every process of its hosts anyway.
        // Never waits: it may be stuck in a FUSE request until the lab goes.
        let _ = self.kill();
    }
}

/// The acknowledgements of an acknowledgement file: `(seq, Unix time in ms)` of each
/// complete line, seqs `1`, `2`, ... in order (anything else is an error); a last line
/// without its newline is ignored (the writer was killed while noting it).
pub fn acked_records(text: &str) -> Result<Vec<(u64, u64)>> {
    let mut acked = Vec::new();
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let parsed = line
            .split_once(' ')
            .and_then(|(seq, ms)| Some((seq.parse::<u64>().ok()?, ms.parse::<u64>().ok()?)));
        let Some((seq, ms)) = parsed else {
            bail!("bad acknowledgement line {line:?}");
        };
        let expected = acked.len() as u64 + 1;
        ensure!(
            seq == expected,
            "acknowledgement {seq} where {expected} was expected: a writer acknowledges in order"
        );
        acked.push((seq, ms));
    }
    Ok(acked)
}

/// The number of acknowledged records in an acknowledgement file (see [`acked_records`]).
pub fn acked_count(text: &str) -> Result<u64> {
    Ok(acked_records(text)?.len() as u64)
}

/// A Unix time in ms as the time of day the module logs show (`HH:MM:SS.mmmZ`, UTC).
pub fn time_of_day(ms: u64) -> String {
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// The current Unix time in ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// What a data file holds: records `1..=records`, each intact, in order, nothing between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Records {
    pub records: u64,
    /// Bytes after the last complete record: the start of a record whose write was cut (never
    /// acknowledged if the check of [`verify`] passes).
    pub torn_tail: usize,
}

/// Parses a data file written by the writer. Every complete line must be the next record
/// with a valid checksum: a gap, a duplicate, a reordering or a damaged record is an error
/// naming its line. Only the end may hold a partial record (no newline).
pub fn parse_records(text: &[u8]) -> Result<Records> {
    let mut records = 0u64;
    let mut rest = text;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..end];
        let show = || {
            let s = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            format!("line {} ({} bytes) {s:?}", records + 1, line.len())
        };
        let mut fields = line.splitn(3, |&b| b == b' ');
        let (Some(seq), Some(crc), Some(payload)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!("not a record: {}", show());
        };
        let seq: u64 = std::str::from_utf8(seq)
            .ok()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad seq in {}", show()))?;
        let crc = std::str::from_utf8(crc)
            .ok()
            .filter(|s| s.len() == 8)
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .with_context(|| format!("bad checksum field in {}", show()))?;
        ensure!(
            seq == records + 1,
            "record {seq} where record {} was expected: {}",
            records + 1,
            show()
        );
        let mut body = format!("{seq} ").into_bytes();
        body.extend_from_slice(payload);
        ensure!(
            crc32(&body) == crc,
            "record {seq} is damaged (checksum {crc:08x}, content {:08x}): {}",
            crc32(&body),
            show()
        );
        records = seq;
        rest = &rest[end + 1..];
    }
    Ok(Records {
        records,
        torn_tail: rest.len(),
    })
}

/// The zero-loss check: every record of `acked` (see [`acked_records`]) must be in `held`;
/// the error says which are missing and when they were acknowledged.
pub fn verify(held: Records, acked: &[(u64, u64)]) -> Result<()> {
    let Some(&(last, last_ms)) = acked.last() else {
        return Ok(());
    };
    if held.records >= last {
        return Ok(());
    }
    let first = held.records + 1;
    let when = |seq: u64| {
        acked
            .get(seq as usize - 1)
            .map(|&(_, ms)| time_of_day(ms))
            .unwrap_or_default()
    };
    bail!(
        "records {first}..={last} were acknowledged to the writer (from {} to {}) but are \
         missing: {} intact records (the last acknowledged at {}), then {} bytes of a partial \
         one",
        when(first),
        time_of_day(last_ms),
        held.records,
        if held.records == 0 {
            "-".to_string()
        } else {
            when(held.records)
        },
        held.torn_tail
    )
}

/// CRC-32 (IEEE 802.3, as zlib.crc32 and crc32fast compute it).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *entry = c;
        }
        table
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// A small seeded generator (splitmix64): the same seed replays the same choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// `HAKIT_SEED` if set, else a fresh seed from the clock and the process id.
pub fn seed_from_env() -> Result<u64> {
    match std::env::var("HAKIT_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .with_context(|| format!("HAKIT_SEED must be a number, not {s:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            Ok(Rng::new(nanos ^ u64::from(std::process::id())).next_u64() % 1_000_000_000)
        }
    }
}

/// The number of rounds: `HAKIT_TORTURE_ROUNDS` if set, else `heavy` with `HAKIT_HEAVY=1`,
/// else `default`.
pub fn rounds_from_env(default: u32, heavy: u32) -> Result<u32> {
    if let Ok(s) = std::env::var("HAKIT_TORTURE_ROUNDS") {
        let n: u32 = s
            .trim()
            .parse()
            .with_context(|| format!("HAKIT_TORTURE_ROUNDS must be a number, not {s:?}"))?;
        ensure!(n > 0, "HAKIT_TORTURE_ROUNDS must be at least 1");
        return Ok(n);
    }
    Ok(if std::env::var("HAKIT_HEAVY").is_ok_and(|v| v == "1") {
        heavy
    } else {
        default
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, payload: &str) -> String {
        let body = format!("{seq} {payload}");
        format!("{seq} {:08x} {payload}\n", crc32(body.as_bytes()))
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn intact_records_in_order_pass_and_a_torn_tail_is_measured() {
        let mut file = record(1, "ab") + &record(2, "") + &record(3, "cdef");
        assert_eq!(
            parse_records(file.as_bytes()).unwrap(),
            Records {
                records: 3,
                torn_tail: 0
            }
        );
        file.push_str("4 1234");
        let held = parse_records(file.as_bytes()).unwrap();
        assert_eq!(held.torn_tail, 6);
        let acked: Vec<(u64, u64)> = (1..=4).map(|seq| (seq, 1000 * seq)).collect();
        verify(held, &acked[..3]).unwrap();
        let err = verify(held, &acked).unwrap_err().to_string();
        assert!(err.contains("records 4..=4"), "{err}");
        assert!(err.contains("from 00:00:04.000Z"), "{err}");
    }

    #[test]
    fn gaps_duplicates_and_damage_are_errors() {
        let gap = record(1, "a") + &record(3, "c");
        assert!(parse_records(gap.as_bytes()).is_err());
        let dup = record(1, "a") + &record(1, "a");
        assert!(parse_records(dup.as_bytes()).is_err());
        let damaged = record(1, "a").replace('a', "b");
        let err = parse_records(damaged.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        let zeros = record(1, "a") + "\0\0\0\n";
        assert!(parse_records(zeros.as_bytes()).is_err());
    }

    #[test]
    fn acknowledgements_count_complete_lines_in_order() {
        assert_eq!(acked_count("").unwrap(), 0);
        assert_eq!(acked_count("1 10\n2 20\n3 30\n4").unwrap(), 3);
        assert_eq!(
            acked_records("1 10\n2 25\n").unwrap(),
            vec![(1, 10), (2, 25)]
        );
        assert!(acked_count("1 10\n3 30\n").is_err());
        assert!(acked_count("1\n").is_err());
        assert_eq!(time_of_day(86_400_000 + 3_723_004), "01:02:03.004Z");
    }

    #[test]
    fn the_generator_replays_its_seed() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let x = a.range(200, 1500);
            assert_eq!(x, b.range(200, 1500));
            assert!((200..=1500).contains(&x));
        }
    }
}
