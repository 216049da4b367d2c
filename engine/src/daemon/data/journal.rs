//! The primary's durable record of which paths changed since its SECOND last received a
//! complete copy (the idea of DRBD's activity log): what a returning SECOND needs instead of
//! everything.
//!
//! Every operation is seen before it is sent and applied ([`Observer`]); the first change of
//! a path (whole), of a zone of a file changed in place, of a file's length or metadata is
//! appended to the root's file and made durable (`fdatasync`) before the operation goes on;
//! later changes already named cost a lookup. A record torn by a crash belongs to
//! an operation that was never applied. The journal restarts empty when a copy completes
//! (under its freeze: everything before it is on the peer). If a record cannot be written, or
//! a file cannot be read back, the journal says so and the next join copies everything.
//!
//! While the stream is up the journal moves on in *epochs*: a new epoch starts under a
//! brief write freeze, the previous one is kept (`root-<index>.retiring`) until the peer has
//! made durable everything sent before the new one began, then forgotten. What the journal
//! names is then what changed recently (in flight, or since the peer was lost), not
//! everything since the last copy.
//!
//! Two precisions: the durable records name zones of `ruzone_blocksize` (few `fdatasync`s),
//! and the same changes are kept in memory in zones of [`ZoneSize::EXACT`]. As long as this
//! process saw every change since the journal was empty, the exact ones are what a returning
//! SECOND receives; after a restart with records on disk, the durable ones.

use rfs_fuse::overlay::Observer;
use rfs_fuse::protocol::op::RelPath;
use rfs_fuse::sync::paths::{Changed, PathFollower};
use rfs_fuse::sync::tracker::Changes;
use rfs_fuse::sync::zones::ZoneSize;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const ROOT_RECORD: u8 = 0;
const PATH_RECORD: u8 = 1;
/// Bytes `[start, end)` of a file written in place: start and end (u64 LE), then the path.
const DATA_RECORD: u8 = 2;
/// A file cut to a length: the length (u64 LE), then the path.
const CUT_RECORD: u8 = 3;
const METADATA_RECORD: u8 = 4;

/// What one epoch of the journal names: its records' changes, and the same in exact zones
/// while this process saw every change of the epoch.
struct Epoch {
    /// What the records on disk name, in zones of `ruzone_blocksize`.
    durable: Changes,
    /// The same in exact zones (none when the epoch was loaded with records from disk).
    exact: Option<Changes>,
}

impl Epoch {
    fn new(zone: ZoneSize) -> Epoch {
        Epoch {
            durable: Changes::new(zone),
            exact: Some(Changes::new(ZoneSize::EXACT)),
        }
    }

    /// The epoch recorded in `path` (absent: empty).
    fn load(path: &Path, zone: ZoneSize) -> io::Result<Epoch> {
        let mut durable = Changes::new(zone);
        load(path, &mut durable)?;
        let exact = durable.is_empty().then(|| Changes::new(ZoneSize::EXACT));
        Ok(Epoch { durable, exact })
    }

    /// The most precise changes known.
    fn best(&self) -> &Changes {
        self.exact.as_ref().unwrap_or(&self.durable)
    }

    /// Whether `changed` is new to the durable records (a record must be written).
    fn add(&mut self, changed: Changed) -> bool {
        if let Some(exact) = self.exact.as_mut() {
            exact.add(changed.clone());
        }
        self.durable.add(changed)
    }
}

struct RootJournal {
    /// `root-<index>`: the current epoch's records.
    path: PathBuf,
    /// `root-<index>.retiring`: the previous epoch's.
    retiring_path: PathBuf,
    file: Option<File>,
    follower: PathFollower,
    current: Epoch,
    /// The epoch before the current one, in `root-<index>.retiring`, kept until the peer
    /// holds durably everything sent before the current one began.
    retiring: Option<Epoch>,
    /// Why the journal cannot be trusted (a full copy is needed).
    unusable: Option<String>,
}

/// One journal per replicated folder, in `<state dir>/rfs-journal/root-<index>`.
pub struct Journal {
    roots: Vec<Arc<Mutex<RootJournal>>>,
}

fn lock(root: &Mutex<RootJournal>) -> MutexGuard<'_, RootJournal> {
    root.lock().unwrap_or_else(PoisonError::into_inner)
}

fn paths(state_dir: &Path, index: usize) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("rfs-journal");
    (
        dir.join(format!("root-{index}")),
        dir.join(format!("root-{index}.retiring")),
    )
}

/// Makes the entries of the directory holding `path` durable.
fn sync_dir_of(path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

impl Journal {
    /// Loads (or starts) the journals of `roots` folders, files changed in place counted in
    /// zones of `zone`. Never fails: a journal that cannot be read or written is marked
    /// unusable, and said so by [`Journal::changes`].
    pub fn open(state_dir: &Path, roots: usize, zone: ZoneSize) -> Journal {
        let roots = (0..roots)
            .map(|index| {
                let (path, retiring) = paths(state_dir, index);
                let mut journal = RootJournal {
                    path: path.clone(),
                    retiring_path: retiring.clone(),
                    file: None,
                    follower: PathFollower::default(),
                    current: Epoch::new(zone),
                    retiring: None,
                    unusable: None,
                };
                let opened = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| {
                        if retiring.exists() {
                            journal.retiring = Some(Epoch::load(&retiring, zone)?);
                        }
                        journal.current = Epoch::load(&path, zone)?;
                        cut_torn_tail(&path)?;
                        OpenOptions::new().create(true).append(true).open(&path)
                    });
                match opened {
                    Ok(file) => journal.file = Some(file),
                    Err(e) => journal.unusable = Some(format!("{}: {e}", path.display())),
                }
                Arc::new(Mutex::new(journal))
            })
            .collect();
        Journal { roots }
    }

    /// What the journals of `roots` folders hold, without opening them for writing (for
    /// `hakit rfsdiff`, the daemon running or not).
    pub fn read(state_dir: &Path, roots: usize, zone: ZoneSize) -> Vec<Result<Changes, String>> {
        (0..roots)
            .map(|index| {
                let (path, retiring) = paths(state_dir, index);
                let mut changes = Changes::new(zone);
                load(&retiring, &mut changes)
                    .and_then(|()| load(&path, &mut changes))
                    .map(|()| changes)
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect()
    }

    /// The records of every epoch of `roots` folders, as bytes (for a peer that took over
    /// from this node: see [`Journal::parse`]).
    pub fn raw(state_dir: &Path, roots: usize) -> io::Result<Vec<Vec<u8>>> {
        (0..roots)
            .map(|index| {
                let (path, retiring) = paths(state_dir, index);
                let mut bytes = read_records(&retiring)?;
                bytes.extend(read_records(&path)?);
                Ok(bytes)
            })
            .collect()
    }

    /// The changes [`raw`](Self::raw) bytes name; `Err` for malformed records.
    pub fn parse(bytes: &[u8], zone: ZoneSize) -> Result<Changes, String> {
        let mut changes = Changes::new(zone);
        parse_into(bytes, &mut changes).map_err(|e| e.to_string())?;
        Ok(changes)
    }

    /// What sees root `index`'s operations (see [`SwitchReplicator::observe`]).
    ///
    /// [`SwitchReplicator::observe`]: rfs_fuse::overlay::SwitchReplicator::observe
    pub fn observer(&self, index: usize) -> Option<Observer> {
        let root = Arc::clone(self.roots.get(index)?);
        Some(Arc::new(move |op| {
            let mut journal = lock(&root);
            journal.follower.follow(op);
            for changed in journal.follower.changed(op) {
                journal.record(changed);
            }
            journal.follower.closed(op);
        }))
    }

    /// What changed in root `index` since the last [`reset`](Self::reset) and may not be on
    /// the peer durably; `Err(why)` when the journal cannot be trusted.
    pub fn changes(&self, index: usize) -> Result<Changes, String> {
        let root = self
            .roots
            .get(index)
            .ok_or_else(|| format!("no journal for folder {index}"))?;
        let journal = lock(root);
        if let Some(why) = &journal.unusable {
            return Err(why.clone());
        }
        let mut changes = journal.current.best().clone();
        if let Some(retiring) = &journal.retiring {
            changes.extend(retiring.best().clone());
        }
        Ok(changes)
    }

    /// Starts a new epoch in every folder whose previous one was retired: its records move
    /// aside until [`retire`](Self::retire). Call with writes frozen (every operation
    /// recorded so far has been sent).
    pub fn rotate(&self) {
        for root in &self.roots {
            lock(root).rotate();
        }
    }

    /// The peer holds durably everything sent before the last [`rotate`](Self::rotate): the
    /// epochs set aside then are forgotten.
    pub fn retire(&self) {
        for root in &self.roots {
            lock(root).retire();
        }
    }

    /// Everything is on the peer: start afresh. Call with writes frozen.
    pub fn reset(&self) {
        for root in &self.roots {
            let mut journal = lock(root);
            let previous = journal.unusable.take();
            let cleared = journal
                .file
                .as_ref()
                .map(|f| f.set_len(0).and_then(|()| f.sync_data()));
            match cleared {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    journal.unusable = Some(format!("{}: {e}", journal.path.display()));
                }
                // Never opened: still not usable.
                None => journal.unusable = previous,
            }
            journal.retire();
            journal.current = Epoch::new(journal.current.durable.zone);
        }
    }
}

impl RootJournal {
    fn record(&mut self, changed: Changed) {
        let record = encode(&whole_zones(changed.clone(), self.current.durable.zone));
        if !self.current.add(changed) || self.unusable.is_some() {
            return;
        }
        let written = match self.file.as_mut() {
            Some(file) => file.write_all(&record).and_then(|()| file.sync_data()),
            None => Err(io::Error::other("not open")),
        };
        if let Err(e) = written {
            self.unusable = Some(format!("{}: {e}", self.path.display()));
        }
    }

    fn rotate(&mut self) {
        if self.retiring.is_some() || self.unusable.is_some() {
            return;
        }
        let rotated = std::fs::rename(&self.path, &self.retiring_path)
            .and_then(|()| {
                OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(&self.path)
            })
            .and_then(|file| sync_dir_of(&self.path).map(|()| file));
        match rotated {
            Ok(file) => {
                self.file = Some(file);
                let zone = self.current.durable.zone;
                self.retiring = Some(std::mem::replace(&mut self.current, Epoch::new(zone)));
            }
            Err(e) => self.unusable = Some(format!("{}: new epoch: {e}", self.path.display())),
        }
    }

    fn retire(&mut self) {
        if self.retiring.is_none() {
            return;
        }
        let removed = match std::fs::remove_file(&self.retiring_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => sync_dir_of(&self.retiring_path),
        };
        match removed {
            Ok(()) => self.retiring = None,
            Err(e) => self.unusable = Some(format!("{}: {e}", self.retiring_path.display())),
        }
    }
}

/// `changed` with a written range widened to the zones it touches: a record names whole zones,
/// since the later writes into them are not recorded, and reads the same whatever zone size
/// reads it back.
fn whole_zones(changed: Changed, zone: ZoneSize) -> Changed {
    match changed {
        Changed::Data { path, start, end } => {
            let size = zone.bytes();
            Changed::Data {
                path,
                start: start / size * size,
                end: end.div_ceil(size).saturating_mul(size),
            }
        }
        other => other,
    }
}

/// A record: its kind, the length of its body (u32 LE), the body.
fn encode(changed: &Changed) -> Vec<u8> {
    let (kind, numbers, path): (u8, &[u64], _) = match changed {
        Changed::Root => (ROOT_RECORD, &[], None),
        Changed::Path(path) => (PATH_RECORD, &[], Some(path)),
        Changed::Data { path, start, end } => (DATA_RECORD, &[*start, *end], Some(path)),
        Changed::Cut { path, len } => (CUT_RECORD, &[*len], Some(path)),
        Changed::Metadata(path) => (METADATA_RECORD, &[], Some(path)),
    };
    let mut body: Vec<u8> = numbers.iter().flat_map(|n| n.to_le_bytes()).collect();
    body.extend(path.map(RelPath::to_bytes).unwrap_or_default());
    let mut record = vec![kind];
    record.extend_from_slice(&(body.len() as u32).to_le_bytes());
    record.extend_from_slice(&body);
    record
}

/// The change a complete record names.
fn decode(kind: u8, body: &[u8]) -> Result<Changed, String> {
    let path = |bytes: &[u8]| RelPath::new(bytes).map_err(|e| e.to_string());
    match kind {
        ROOT_RECORD => Ok(Changed::Root),
        PATH_RECORD => Ok(Changed::Path(path(body)?)),
        METADATA_RECORD => Ok(Changed::Metadata(path(body)?)),
        CUT_RECORD => {
            let (len, rest) = number(body)?;
            Ok(Changed::Cut {
                path: path(rest)?,
                len,
            })
        }
        DATA_RECORD => {
            let (start, rest) = number(body)?;
            let (end, rest) = number(rest)?;
            if start > end {
                return Err(format!("written range {start}..{end}"));
            }
            Ok(Changed::Data {
                path: path(rest)?,
                start,
                end,
            })
        }
        other => Err(format!("record kind {other}")),
    }
}

/// A u64 (LE) at the start of `body`, and what follows it.
fn number(body: &[u8]) -> Result<(u64, &[u8]), String> {
    body.split_first_chunk::<8>()
        .map(|(n, rest)| (u64::from_le_bytes(*n), rest))
        .ok_or_else(|| "record too short".to_string())
}

/// Reads the records of `path` (absent: none). A torn last record is ignored (its operation
/// never ran); anything else malformed is an error.
fn load(path: &Path, changes: &mut Changes) -> io::Result<()> {
    parse_into(&read_records(path)?, changes).map(drop)
}

/// The bytes of the records file `path` (absent: none).
fn read_records(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes).map(|_| bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(bytes),
        Err(e) => Err(e),
    }
}

/// The records in `bytes`, as [`load`] reads them; the length of the complete ones.
fn parse_into(bytes: &[u8], changes: &mut Changes) -> io::Result<u64> {
    let mut rest = bytes;
    while let Some((&kind, after)) = rest.split_first() {
        let Some((len, after)) = after.split_first_chunk::<4>() else {
            break; // torn
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((body, after)) = after.split_at_checked(len) else {
            break; // torn
        };
        let changed = decode(kind, body)
            .map_err(|what| io::Error::other(format!("malformed journal: {what}")))?;
        changes.add(changed);
        rest = after;
    }
    Ok((bytes.len() - rest.len()) as u64)
}

/// Cuts a record torn by a crash off the end of `path`, so that records appended from now on
/// follow the last complete one.
fn cut_torn_tail(path: &Path) -> io::Result<()> {
    let bytes = read_records(path)?;
    let complete = parse_into(&bytes, &mut Changes::new(ZoneSize::EXACT))?;
    if complete < bytes.len() as u64 {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(complete)?;
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rfs_fuse::protocol::op::Op;

    const ZONE: u64 = 1 << 20;

    fn p(s: &str) -> RelPath {
        RelPath::new(s.as_bytes()).unwrap()
    }

    fn zone() -> ZoneSize {
        ZoneSize::new(ZONE).unwrap()
    }

    /// A journal in `dir` whose file `big` was opened and written at `offset`.
    fn journal_with_one_write(dir: &Path, offset: u64) -> Journal {
        let journal = Journal::open(dir, 1, zone());
        let observe = journal.observer(0).unwrap();
        observe(&Op::Open {
            handle: 1,
            path: p("big"),
        });
        observe(&write(1, offset));
        journal
    }

    /// `journal` names nothing, nor does a journal opened afresh on its files.
    fn assert_empty_here_and_on_disk(journal: &Journal, dir: &Path) {
        assert!(journal.changes(0).unwrap().is_empty());
        assert!(Journal::open(dir, 1, zone()).changes(0).unwrap().is_empty());
    }

    fn write(handle: u64, offset: u64) -> Op {
        Op::Write {
            handle,
            offset,
            data: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn changes_survive_a_restart_and_a_torn_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = Journal::open(dir.path(), 1, zone());
            let observe = journal.observer(0).unwrap();
            observe(&Op::Create {
                handle: 1,
                path: p("db/file"),
                mode: 0o644,
                owner: rfs_fuse::protocol::op::Owner { uid: 0, gid: 0 },
                exclusive: false,
            });
            observe(&Op::Write {
                handle: 1,
                offset: 0,
                data: Bytes::from_static(b"x"),
            });
            observe(&Op::Unlink { path: p("old") });
            observe(&Op::SetAttr {
                path: None,
                attr: Default::default(),
            });
        }
        let file = dir.path().join("rfs-journal/root-0");
        let len = std::fs::metadata(&file).unwrap().len();
        // A crash in the middle of appending one more record.
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[PATH_RECORD, 9, 0]).unwrap();
        drop(f);
        assert!(std::fs::metadata(&file).unwrap().len() > len);
        let journal = Journal::open(dir.path(), 1, zone());
        let changes = journal.changes(0).unwrap();
        assert!(changes.root);
        assert_eq!(
            changes.paths.into_iter().collect::<Vec<_>>(),
            vec![p("db/file"), p("old")],
            "each path once; the write resolved to its file"
        );
        // Recorded after the torn record: read back, not swallowed by it.
        journal.observer(0).unwrap()(&Op::Unlink { path: p("later") });
        drop(journal);
        let journal = Journal::open(dir.path(), 1, zone());
        assert!(journal.changes(0).unwrap().paths.contains(&p("later")));
        journal.reset();
        assert_empty_here_and_on_disk(&journal, dir.path());
    }

    #[test]
    fn a_corrupt_journal_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rfs-journal")).unwrap();
        std::fs::write(dir.path().join("rfs-journal/root-0"), [7u8, 0, 0, 0, 0]).unwrap();
        let journal = Journal::open(dir.path(), 1, zone());
        let why = journal.changes(0).unwrap_err();
        assert!(why.contains("malformed journal"), "{why}");
    }

    #[test]
    fn zones_cuts_and_metadata_survive_a_restart_each_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rfs-journal/root-0");
        let records = || std::fs::metadata(&file).unwrap().len();
        {
            let journal = journal_with_one_write(dir.path(), 3 * ZONE + 5);
            let observe = journal.observer(0).unwrap();
            let one_zone = records();
            for offset in [3 * ZONE, 3 * ZONE + 9, 4 * ZONE - 1] {
                observe(&write(1, offset));
            }
            assert_eq!(records(), one_zone, "a zone already named costs no record");
            observe(&Op::SetLen {
                handle: 1,
                len: 7 * ZONE,
            });
            observe(&write(1, 8 * ZONE));
            observe(&Op::SetXattr {
                path: Some(p("other")),
                name: "user.k".into(),
                value: Bytes::from_static(b"v"),
                flags: 0,
            });
        }
        // A crash in the middle of appending a zone record.
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[DATA_RECORD, 30, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        // Read back in smaller zones than it was recorded in: the whole recorded zone, since
        // the writes at 3 Z + 9 and 4 Z - 1 were not recorded (their zone was named).
        let journal = Journal::open(dir.path(), 1, ZoneSize::new(ZONE / 2).unwrap());
        let changes = journal.changes(0).unwrap();
        assert!(changes.paths.is_empty(), "nothing changed whole");
        let files: Vec<_> = changes.in_place().collect();
        assert_eq!(files.len(), 2);
        let (path, big) = files[0];
        assert_eq!(*path, p("big"));
        assert_eq!(
            big.ranges(changes.zone, 9 * ZONE),
            [(3 * ZONE, 4 * ZONE), (7 * ZONE, 9 * ZONE)],
            "the written zone and everything from the cut on"
        );
        assert_eq!(*files[1].0, p("other"));
        assert!(files[1].1.metadata_only());
    }

    #[test]
    fn exact_zones_serve_until_a_restart_then_the_durable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let in_place = |journal: &Journal| {
            let changes = journal.changes(0).unwrap();
            let (_, file) = changes.in_place().next().unwrap();
            file.ranges(changes.zone, 9 * ZONE)
        };
        {
            let journal = journal_with_one_write(dir.path(), 3 * ZONE + 5);
            let exact = ZoneSize::EXACT.bytes();
            assert_eq!(in_place(&journal), [(3 * ZONE, 3 * ZONE + exact)]);
        }
        let reopened = Journal::open(dir.path(), 1, zone());
        assert_eq!(
            in_place(&reopened),
            [(3 * ZONE, 4 * ZONE)],
            "after a restart, only the durable zone is known"
        );
        reopened.reset();
        assert!(reopened.changes(0).unwrap().is_empty());
    }

    #[test]
    fn a_new_epoch_keeps_the_previous_one_until_it_is_retired_even_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let names = |journal: &Journal| {
            let changes = journal.changes(0).unwrap();
            let mut names: Vec<_> = changes.paths.iter().cloned().collect();
            names.extend(changes.in_place().map(|(path, _)| path.clone()));
            names.sort();
            names
        };
        let file = dir.path().join("rfs-journal/root-0");
        {
            let journal = journal_with_one_write(dir.path(), 0);
            let observe = journal.observer(0).unwrap();
            observe(&Op::Unlink { path: p("gone") });
            journal.rotate();
            let before = std::fs::metadata(&file).unwrap().len();
            observe(&write(1, 0));
            assert!(
                std::fs::metadata(&file).unwrap().len() > before,
                "a zone first changed in the new epoch is recorded again"
            );
            assert_eq!(names(&journal), [p("big"), p("gone")]);
            journal.rotate();
            assert_eq!(
                names(&journal),
                [p("big"), p("gone")],
                "one epoch retires at a time"
            );
        }
        // A restart before the peer confirmed: both epochs are read back.
        let reopened = Journal::open(dir.path(), 1, zone());
        assert_eq!(names(&reopened), [p("big"), p("gone")]);
        reopened.retire();
        assert_eq!(
            names(&reopened),
            [p("big")],
            "the current epoch's own write stays"
        );
        assert!(!dir.path().join("rfs-journal/root-0.retiring").exists());
        reopened.rotate();
        reopened.retire();
        assert_empty_here_and_on_disk(&reopened, dir.path());
    }

    #[test]
    fn a_zone_record_with_a_backward_range_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rfs-journal")).unwrap();
        let mut record = encode(&Changed::Data {
            path: p("f"),
            start: 0,
            end: 1,
        });
        record[5] = 2; // start 2 > end 1
        std::fs::write(dir.path().join("rfs-journal/root-0"), record).unwrap();
        let journal = Journal::open(dir.path(), 1, zone());
        let why = journal.changes(0).unwrap_err();
        assert!(why.contains("malformed journal"), "{why}");
    }
}
