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
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| entries.get(i).is_some_and(|e| e.kind == FileKind::Regular))
        .collect();
    let jobs = Jobs {
        root,
        entries: &entries,
        files: &files,
        next: AtomicUsize::new(0),
        block,
    };
    let mut outcomes: Vec<Option<Hashed>> = vec![None; entries.len()];
    for (index, hashed) in jobs.run(workers.clamp(1, files.len().max(1)))? {
        if let Some(outcome) = outcomes.get_mut(index) {
            *outcome = Some(hashed);
        }
    }
    Ok(entries
        .into_iter()
        .zip(outcomes)
        .filter_map(|(entry, outcome)| with_blocks(entry, outcome))
        .collect())
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

/// The files to hash and the index the workers take them from.
struct Jobs<'a> {
    root: BorrowedFd<'a>,
    entries: &'a [Entry],
    /// Indices in `entries` of the regular files.
    files: &'a [usize],
    /// The next position in `files` to take.
    next: AtomicUsize,
    block: usize,
}

impl Jobs<'_> {
    /// Every file read by `workers` threads; each file's entry index with what was read.
    fn run(&self, workers: usize) -> Result<Vec<(usize, Hashed)>> {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..workers).map(|_| scope.spawn(|| self.work())).collect();
            let mut all = Vec::with_capacity(self.files.len());
            let mut failure = None;
            for thread in threads {
                match thread.join() {
                    Ok(Ok(done)) => all.extend(done),
                    Ok(Err(error)) => failure = failure.or(Some(error)),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            failure.map_or(Ok(all), Err)
        })
    }

    /// One worker: files taken from the index until none is left or one fails, in which
    /// case the others stop at their next file.
    fn work(&self) -> Result<Vec<(usize, Hashed)>> {
        let mut buffer = vec![0; self.block];
        let mut done = Vec::new();
        while let Some(&index) = self.files.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let Some(entry) = self.entries.get(index) else {
                continue;
            };
            match read_file(self.root, entry, &mut buffer) {
                Ok(read) => done.push((index, read)),
                Err(error) => {
                    self.next.store(self.files.len(), Ordering::Relaxed);
                    return Err(error);
                }
            }
        }
        Ok(done)
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
