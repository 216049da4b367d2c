//! Copying the replicated directories to a joining SECOND while the application keeps
//! writing, then handing the overlays over to the stream.
//!
//! 1. Under a brief freeze, every overlay starts recording what it changes
//!    ([`ChangeTracker`]), nothing sent to the peer yet.
//! 2. What differs from the peer's manifest is copied (only differing blocks of a file both
//!    hold), what only the peer holds removed, writes going on; if the peer's manifest cannot
//!    be had, its directories are emptied and everything is copied.
//! 3. Passes copy again what changed during the previous one, until little is left.
//! 4. Writes wait (the freeze) while the last changes are copied, the files the application
//!    holds open are opened on the peer, and the overlays switch to the stream: from then on
//!    every write reaches the peer before it returns.
//!
//! The application's writes wait only during step 4, whose length follows what changed
//! during the last pass, not the size of the data.

use super::estimate::{Size, changed_size, tree_size};
use super::journal::Journal;
use super::pace::Pacer;
use super::passes::another_pass;
use super::progress::ProgressMeter;
use super::replicate::Backing;
use super::verify::MANIFEST_BLOCK;
use crate::modlog::{ModuleLog, Source};
use rfs_fuse::link::{
    LinkError, Pending, ReplicationError, StreamReplicator, request_journal, request_manifest,
    side_connection,
};
use rfs_fuse::overlay::{NoReplication, OpenHandles, StreamAdopter, SwitchReplicator};
use rfs_fuse::protocol::op::Op;
use rfs_fuse::sync::compare_copy::compare_copy;
use rfs_fuse::sync::full_copy::{CopyStats, copy_changes, live_copy};
use rfs_fuse::sync::manifest::RootManifest;
use rfs_fuse::sync::tracker::{ChangeTracker, Changes};
use rfs_fuse::sync::zones::ZoneSize;
use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Copy requests in flight before the oldest one's verdict is awaited.
const WINDOW: usize = 256;

#[derive(Debug, thiserror::Error)]
enum Abort {
    #[error("replication stopped")]
    Cancelled,
    #[error(transparent)]
    Peer(#[from] ReplicationError),
}

pub(super) struct Copier<'a> {
    /// Copy only what the journal names (the peer holds everything before it).
    pub incremental: bool,
    /// The peer was the primary: what its own change journal names is copied too.
    pub peer_journal: bool,
    pub journal: &'a Journal,
    pub log: &'a ModuleLog,
    pub progress: &'a ProgressMeter,
    /// `reiallowedbw`; lifted while writes wait for the last changes.
    pub pacer: Mutex<Pacer>,
    pub dirs: &'a [PathBuf],
    pub switches: &'a [SwitchReplicator],
    pub backing: &'a Backing,
    pub cancelled: &'a AtomicBool,
    pub link: &'a Arc<StreamReplicator>,
    /// The connection beside the stream in use (manifest, journal), for the task's stop.
    pub side: &'a Mutex<Option<TcpStream>>,
    /// Where the SECOND answers manifest requests, and for which module.
    pub peer: SocketAddr,
    pub module: &'a str,
}

#[derive(Default)]
struct Totals {
    /// Only the journal's paths were copied.
    journaled: bool,
    copied: CopyStats,
    passes: usize,
    final_paths: usize,
    writes_waited: Duration,
}

impl Copier<'_> {
    /// Everything copied and the stream in place; what was done, for the log.
    pub fn run(&self) -> Result<String, String> {
        let started = Instant::now();
        let mut window = VecDeque::new();
        let mut totals = Totals::default();
        let trackers = self.start_tracking();
        let journaled = self.journaled();
        totals.journaled = journaled.is_some();
        let mut changes: Vec<Changes> = match journaled {
            Some(journaled) => journaled,
            None => {
                self.phase("full copy".to_string());
                let expected = (0..self.dirs.len())
                    .filter_map(|index| self.backing.path(index))
                    .map(|path| tree_size(&path))
                    .fold(Size::default(), |a, b| a + b);
                self.progress.expect(expected.files, expected.bytes);
                let theirs = self.their_manifests();
                if theirs.is_some() {
                    self.phase("copy of what differs".to_string());
                }
                for index in 0..self.dirs.len() {
                    let manifest = theirs.as_ref().and_then(|t| t.get(index));
                    let stats = self.full(index, manifest, &mut window)?;
                    add(&mut totals.copied, stats);
                }
                Vec::new()
            }
        };
        for (index, tracker) in trackers.iter().enumerate() {
            let taken = tracker.take();
            match changes.get_mut(index) {
                Some(changed) => changed.extend(taken),
                None => changes.push(taken),
            }
        }
        while another_pass(totals.passes, changes.iter().map(Changes::len).sum()) {
            totals.passes += 1;
            self.phase(format!("catch-up pass {}", totals.passes));
            let more = self.changed_size(&changes);
            self.progress.expect_more(more.files, more.bytes);
            for (index, changed) in changes.iter().enumerate() {
                let stats = self.changed(index, changed, &mut window)?;
                add(&mut totals.copied, stats);
            }
            changes = trackers.iter().map(|t| t.take()).collect();
        }
        self.phase("last changes (writes waiting)".to_string());
        self.finish(&trackers, changes, &mut window, &mut totals)?;
        self.phase("done".to_string());
        let c = &totals.copied;
        Ok(format!(
            "copied {}{} directories, {} files, {} links, {} others, {} data bytes in {} ms \
             while the application ran ({} catch-up pass(es)); writes waited {} ms for the last \
             {} changed path(s); every write now reaches the peer before it returns",
            if totals.journaled {
                "only what the change journal names: "
            } else {
                ""
            },
            c.directories,
            c.files,
            c.links,
            c.others,
            c.bytes,
            started.elapsed().as_millis(),
            totals.passes,
            totals.writes_waited.as_millis(),
            totals.final_paths
        ))
    }

    /// The journal's changes per folder when the copy may be incremental; `None`: copy
    /// everything (not incremental, or a journal cannot be trusted — said in the log).
    fn journaled(&self) -> Option<Vec<Changes>> {
        if !self.incremental {
            return None;
        }
        let mut all = Vec::new();
        for index in 0..self.dirs.len() {
            match self.journal.changes(index) {
                Ok(changes) => all.push(changes),
                Err(why) => {
                    self.log.line(
                        Source::Engine,
                        &format!("change journal unusable ({why}): comparing the trees instead"),
                    );
                    return None;
                }
            }
        }
        if self.peer_journal {
            match self.their_journal() {
                Ok(theirs) => {
                    for (mine, theirs) in all.iter_mut().zip(theirs) {
                        mine.extend(theirs);
                    }
                }
                Err(why) => {
                    self.log.line(
                        Source::Engine,
                        &format!(
                            "the peer's own change journal could not be had ({why}): \
                             comparing the trees instead"
                        ),
                    );
                    return None;
                }
            }
        }
        self.phase("journaled changes".to_string());
        let expected = self.changed_size(&all);
        self.progress.expect(expected.files, expected.bytes);
        Some(all)
    }

    /// The changes the peer's own journal names, one per folder (it was the primary: the
    /// writes it may hold that this node never received are among them).
    fn their_journal(&self) -> Result<Vec<Changes>, String> {
        let roots = u16::try_from(self.dirs.len())
            .map_err(|_| format!("{} folders: more than a stream can name", self.dirs.len()))?;
        let journals = self
            .beside()
            .and_then(|(reader, writer)| request_journal(reader, writer, self.module, roots))
            .map_err(|e| e.to_string());
        self.done_beside();
        let journals = journals?;
        let changes: Vec<Changes> = journals
            .iter()
            .zip(self.dirs)
            .map(|(bytes, dir)| {
                Journal::parse(bytes, ZoneSize::EXACT)
                    .map_err(|e| format!("its journal of {}: {e}", dir.display()))
            })
            .collect::<Result<_, _>>()?;
        let named: usize = changes.iter().map(Changes::len).sum();
        self.log.line(
            Source::Engine,
            &format!("the peer's own change journal names {named} change(s): copied too"),
        );
        Ok(changes)
    }

    /// What copying `changes` (one per folder) will send.
    fn changed_size(&self, changes: &[Changes]) -> Size {
        changes
            .iter()
            .enumerate()
            .filter_map(|(index, c)| Some(changed_size(&self.backing.path(index)?, c)))
            .fold(Size::default(), |a, b| a + b)
    }

    /// Every overlay records its changes from now on; nothing is half-applied meanwhile.
    fn start_tracking(&self) -> Vec<Arc<ChangeTracker>> {
        let frozen: Vec<_> = self.switches.iter().map(|s| s.freeze()).collect();
        frozen
            .iter()
            .enumerate()
            .map(|(index, frozen)| {
                let open = self.open_handles(index);
                let tracker = Arc::new(ChangeTracker::new(
                    Arc::new(NoReplication),
                    open,
                    ZoneSize::EXACT,
                ));
                frozen.set(tracker.clone());
                tracker
            })
            .collect()
    }

    fn open_handles(&self, index: usize) -> Vec<(u64, Option<rfs_fuse::protocol::op::RelPath>)> {
        self.backing
            .open
            .get(index)
            .map(OpenHandles::snapshot)
            .unwrap_or_default()
    }

    fn path(&self, index: usize) -> Result<PathBuf, String> {
        self.backing
            .path(index)
            .ok_or_else(|| self.failed(index, &"the directory is not open"))
    }

    fn failed(&self, index: usize, e: &dyn std::fmt::Display) -> String {
        let dir = self.dirs.get(index).map(|d| d.display().to_string());
        format!("copying {}: {e}", dir.unwrap_or_default())
    }

    /// A connection to the peer beside the stream, which stopping the task shuts down (the
    /// peer may be dead: its answer is then not waited for).
    fn beside(&self) -> Result<(TcpStream, TcpStream), LinkError> {
        let (reader, writer) = side_connection(self.peer)?;
        *lock(self.side) = writer.try_clone().ok();
        if self.cancelled.load(Ordering::SeqCst) {
            let _ = writer.shutdown(Shutdown::Both);
        }
        Ok((reader, writer))
    }

    fn done_beside(&self) {
        *lock(self.side) = None;
    }

    /// The SECOND's manifests, so that only what differs travels; `None` (the reason in the
    /// log): it is emptied and gets everything.
    fn their_manifests(&self) -> Option<Vec<RootManifest>> {
        let roots = u16::try_from(self.dirs.len()).ok()?;
        let manifests = self.beside().and_then(|(reader, writer)| {
            request_manifest(reader, writer, self.module, roots, MANIFEST_BLOCK)
        });
        self.done_beside();
        match manifests {
            Ok(manifests) => {
                let entries: usize = manifests.iter().map(|m| m.entries.len()).sum();
                self.log.line(
                    Source::Engine,
                    &format!(
                        "the SECOND holds {entries} entries: copying only what differs from them"
                    ),
                );
                Some(manifests)
            }
            Err(e) => {
                self.log.line(
                    Source::Engine,
                    &format!(
                        "the SECOND's manifest could not be had ({e}): emptying its folders \
                         and copying everything"
                    ),
                );
                None
            }
        }
    }

    /// Folder `index` copied to the SECOND: by comparison with `theirs` (its manifest), or
    /// whole into the emptied folder.
    fn full(
        &self,
        index: usize,
        theirs: Option<&RootManifest>,
        window: &mut VecDeque<Pending>,
    ) -> Result<CopyStats, String> {
        let path = self.path(index)?;
        let root = index as u16;
        let copied = match theirs {
            Some(theirs) => compare_copy(&path, &theirs.entries, MANIFEST_BLOCK, |op| {
                self.send(window, root, op)
            }),
            None => {
                self.push(window, self.link.send_to(root, Op::EmptyRoot))
                    .map_err(|e| self.failed(index, &e))?;
                live_copy(&path, |op| self.send(window, root, op))
            }
        };
        copied.map_err(|e| self.failed(index, &e))
    }

    fn changed(
        &self,
        index: usize,
        changes: &Changes,
        window: &mut VecDeque<Pending>,
    ) -> Result<CopyStats, String> {
        let path = self.path(index)?;
        let root = index as u16;
        copy_changes(&path, changes, |op| self.send(window, root, op))
            .map_err(|e| self.failed(index, &e))
    }

    /// With writes waiting: the last changes, the open files, the switch to the stream.
    fn finish(
        &self,
        trackers: &[Arc<ChangeTracker>],
        mut changes: Vec<Changes>,
        window: &mut VecDeque<Pending>,
        totals: &mut Totals,
    ) -> Result<(), String> {
        let frozen: Vec<_> = self.switches.iter().map(|s| s.freeze()).collect();
        let waiting = Instant::now();
        lock(&self.pacer).lift();
        for (index, (changed, tracker)) in changes.iter_mut().zip(trackers).enumerate() {
            changed.extend(tracker.take());
            totals.final_paths += changed.len();
            let stats = self.changed(index, changed, window)?;
            add(&mut totals.copied, stats);
            let root = index as u16;
            self.push(window, self.link.send_to(root, Op::FsyncDir { path: None }))
                .map_err(|e| self.failed(index, &e))?;
        }
        for (index, frozen) in frozen.iter().enumerate() {
            let open = self.open_handles(index);
            let stream = Arc::new(self.link.root(index as u16));
            let (adopter, opens) = StreamAdopter::adopt(stream, open);
            window.extend(opens);
            frozen.set(Arc::new(adopter));
        }
        while let Some(pending) = window.pop_front() {
            pending
                .wait()
                .map_err(|e| format!("finishing the copy: {e}"))?;
        }
        // Everything so far is on the peer (every request answered): the journal starts
        // afresh, before any write resumes.
        self.journal.reset();
        totals.writes_waited = waiting.elapsed();
        drop(frozen);
        Ok(())
    }

    fn phase(&self, phase: String) {
        self.progress.phase(phase);
    }

    /// A copy operation to the peer, counted, paced by the bandwidth cap.
    fn send(&self, window: &mut VecDeque<Pending>, root: u16, op: Op) -> Result<(), Abort> {
        let (files, bytes) = match &op {
            Op::Create { .. } | Op::Open { .. } => (1, 0),
            Op::Write { data, .. } => (0, data.len() as u64),
            _ => (0, 0),
        };
        self.pace(bytes)?;
        if let Some(line) = self.progress.sent(files, bytes) {
            self.log.line(Source::Engine, &line);
        }
        self.push(window, self.link.send_to(root, op))
    }

    /// Waits until `bytes` more are within the bandwidth cap.
    fn pace(&self, bytes: u64) -> Result<(), Abort> {
        let mut wait = lock(&self.pacer).account(bytes);
        while !wait.is_zero() {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(Abort::Cancelled);
            }
            std::thread::sleep(wait);
            wait = lock(&self.pacer).account(0);
        }
        Ok(())
    }

    fn push(&self, window: &mut VecDeque<Pending>, pending: Pending) -> Result<(), Abort> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(Abort::Cancelled);
        }
        window.push_back(pending);
        if window.len() > WINDOW
            && let Some(oldest) = window.pop_front()
        {
            oldest.wait()?;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn add(total: &mut CopyStats, stats: CopyStats) {
    total.directories += stats.directories;
    total.files += stats.files;
    total.links += stats.links;
    total.others += stats.others;
    total.bytes += stats.bytes;
}
