//! Block hashes of the regular files a metadata walk listed, read by several worker threads
//! that take files from a shared index. Each file is opened by its path beneath the root with
//! the walk's guarantees: no symlink followed, no mount point crossed.

use super::walk::{Result, io_error, open_beneath, shown, vanished};
use super::{Entry, Hash, ManifestError};
use crate::compare::FileKind;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// What reading one file gave: its block hashes and the bytes actually read, or `None` when
/// it vanished or is no longer a regular file (its entry is then left out).
type Hashed = Option<(Vec<Hash>, u64)>;

/// `entries` (a walk's, sorted) with every regular file's blocks of `block` bytes hashed by
/// up to `workers` threads; files gone meanwhile left out, the order kept.
pub(super) fn hash_files(
    root: BorrowedFd<'_>,
    entries: Vec<Entry>,
    block: usize,
    workers: usize,
) -> Result<Vec<Entry>> {
    let mut hashed = Vec::with_capacity(entries.len());
    hash_in_order(root, entries, block, workers, &mut |entry| {
        hashed.push(entry);
        true
    })?;
    Ok(hashed)
}

/// [`hash_files`], each entry handed to `emit` in order as soon as it is complete (a file's
/// once read), so that a listing can be sent while the rest is read; `emit` returns `false`
/// to stop (the workers stop at their next file).
pub(super) fn hash_in_order(
    root: BorrowedFd<'_>,
    entries: Vec<Entry>,
    block: usize,
    workers: usize,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<()> {
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| entries.get(i).is_some_and(|e| e.kind == FileKind::Regular))
        .collect();
    let jobs = Jobs {
        root,
        entries: &entries,
        files: &files,
        next: AtomicUsize::new(0),
        block,
        done: Mutex::new(Done {
            hashed: vec![None; files.len()],
            failure: None,
        }),
        changed: Condvar::new(),
    };
    let workers = workers.clamp(1, files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| jobs.work());
        }
        let ready = jobs.deliver(emit);
        jobs.stop();
        ready
    })
}

/// What the workers have read so far, by position in the list of files.
struct Done {
    hashed: Vec<Option<Hashed>>,
    failure: Option<ManifestError>,
}

/// The files to hash, the index the workers take them from, and what they read.
struct Jobs<'a> {
    root: BorrowedFd<'a>,
    entries: &'a [Entry],
    /// Indices in `entries` of the regular files.
    files: &'a [usize],
    /// The next position in `files` to take.
    next: AtomicUsize,
    block: usize,
    done: Mutex<Done>,
    changed: Condvar,
}

impl Jobs<'_> {
    fn lock(&self) -> MutexGuard<'_, Done> {
        self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// No worker takes another file.
    fn stop(&self) {
        self.next.store(self.files.len(), Ordering::Relaxed);
    }

    /// One worker: files taken from the index until none is left or one fails, in which
    /// case the others stop at their next file.
    fn work(&self) {
        let mut buffer = vec![0; self.block];
        loop {
            let position = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(entry) = self.files.get(position).and_then(|&i| self.entries.get(i)) else {
                return;
            };
            let read = read_file(self.root, entry, &mut buffer);
            let mut done = self.lock();
            match read {
                Ok(hashed) => {
                    if let Some(slot) = done.hashed.get_mut(position) {
                        *slot = Some(hashed);
                    }
                }
                Err(error) => {
                    done.failure.get_or_insert(error);
                    self.stop();
                }
            }
            drop(done);
            self.changed.notify_all();
        }
    }

    /// Every entry, in order, to `emit`: a regular file once a worker has read it.
    fn deliver(&self, emit: &mut dyn FnMut(Entry) -> bool) -> Result<()> {
        let mut position = 0;
        for entry in self.entries {
            let outcome = if entry.kind == FileKind::Regular {
                let hashed = self.wait_for(position)?;
                position += 1;
                Some(hashed)
            } else {
                None
            };
            if let Some(entry) = with_blocks(entry.clone(), outcome)
                && !emit(entry)
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// What the worker that took file `position` read, once it has.
    fn wait_for(&self, position: usize) -> Result<Hashed> {
        let mut done = self.lock();
        loop {
            if let Some(error) = done.failure.take() {
                return Err(error);
            }
            if let Some(hashed) = done.hashed.get_mut(position).and_then(Option::take) {
                return Ok(hashed);
            }
            done = self
                .changed
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// `entry` as its file was read: `outcome` is `None` for an entry that is not a regular
/// file, `Some(None)` for a file gone meanwhile.
fn with_blocks(mut entry: Entry, outcome: Option<Hashed>) -> Option<Entry> {
    match outcome {
        None => Some(entry),
        Some(None) => None,
        Some(Some((blocks, size))) => {
            (entry.blocks, entry.size) = (blocks, size);
            Some(entry)
        }
    }
}

/// The block hashes of the regular file `entry` names and the bytes it held.
fn read_file(root: BorrowedFd<'_>, entry: &Entry, buffer: &mut [u8]) -> Result<Hashed> {
    let path = entry.path.as_ref();
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = match open_beneath(root, path, flags) {
        Ok(fd) => fd,
        // ELOOP: now a symlink; EXDEV: now a mount point or beneath one.
        Err(errno) if vanished(errno) || matches!(errno, Errno::ELOOP | Errno::EXDEV) => {
            return Ok(None);
        }
        Err(errno) => return Err(io_error(path, "opening")(errno)),
    };
    let mut file = File::from(fd);
    let read_error = |source| ManifestError::Io {
        path: shown(path),
        doing: "reading",
        source,
    };
    if !file.metadata().map_err(read_error)?.is_file() {
        // Replaced by another kind of entry since it was examined.
        return Ok(None);
    }
    blocks(&mut file, buffer).map(Some).map_err(read_error)
}

/// The hashes of every block of `file` (blocks the size of `buffer`) and how many bytes it
/// held.
fn blocks(file: &mut File, buffer: &mut [u8]) -> io::Result<(Vec<Hash>, u64)> {
    let (mut hashes, mut size) = (Vec::new(), 0u64);
    loop {
        let filled = read_block(file, buffer)?;
        if filled == 0 {
            return Ok((hashes, size));
        }
        let block = buffer.get(..filled).unwrap_or_default();
        hashes.push(*blake3::hash(block).as_bytes());
        size += filled as u64;
        if filled < buffer.len() {
            return Ok((hashes, size));
        }
    }
}

/// Reads from `file`'s position until `buffer` is full or the file ends; how many bytes
/// were read.
pub(crate) fn read_block(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buffer.get_mut(filled..).filter(|r| !r.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::super::walk_metadata;
    use super::*;
    use std::fs;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    fn paths(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| e.path.as_ref())
            .map(|p| String::from_utf8_lossy(&p.to_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn entries_arrive_in_order_one_by_one_and_a_stop_is_clean() {
        let tree = tempfile::tempdir().unwrap();
        for i in 0..40 {
            fs::write(tree.path().join(format!("f{i:02}")), vec![i as u8; 5000]).unwrap();
        }
        let root = fs::File::open(tree.path()).unwrap();
        let all = hash_files(root.as_fd(), walk_metadata(root.as_fd()).unwrap(), 4096, 4).unwrap();
        let mut seen = Vec::new();
        let listed = walk_metadata(root.as_fd()).unwrap();
        hash_in_order(root.as_fd(), listed, 4096, 4, &mut |entry| {
            seen.push(entry);
            seen.len() < 10
        })
        .unwrap();
        assert_eq!(seen.len(), 10, "stopped when asked");
        assert_eq!(seen[..], all[..10], "the same entries, in the same order");
        assert!(
            seen[1..].iter().all(|e| e.blocks.len() == 2),
            "each file hashed"
        );
    }

    #[test]
    fn files_replaced_after_the_listing_are_left_out_never_read_through_a_symlink() {
        let (tree, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir(tree.path().join("d")).unwrap();
        for name in ["d/f", "now-link", "now-fifo", "kept"] {
            fs::write(tree.path().join(name), b"data").unwrap();
        }
        fs::write(outside.path().join("f"), b"secret").unwrap();
        let root = fs::File::open(tree.path()).unwrap();
        let listed = walk_metadata(root.as_fd()).unwrap();

        fs::rename(tree.path().join("d"), tree.path().join("old-d")).unwrap();
        symlink(outside.path(), tree.path().join("d")).unwrap();
        fs::remove_file(tree.path().join("now-link")).unwrap();
        symlink(outside.path().join("f"), tree.path().join("now-link")).unwrap();
        fs::remove_file(tree.path().join("now-fifo")).unwrap();
        nix::unistd::mkfifo(&tree.path().join("now-fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

        let hashed = hash_files(root.as_fd(), listed, 4096, 3).unwrap();
        assert_eq!(paths(&hashed), ["d", "kept"]);
        let kept = hashed.last().unwrap();
        assert_eq!((kept.size, kept.blocks.len()), (4, 1));
    }
}
