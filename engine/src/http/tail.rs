//! The last lines of a log file, read from the end: module logs grow without bound between
//! rotations, and the API must answer in time proportional to what it returns, not to the
//! size of the file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Read size when walking back from the end.
const CHUNK: usize = 64 * 1024;
/// Upper bound on what one request reads, whatever `lines` says: a file of very long lines
/// (an application dumping binary data) must not make the daemon allocate without limit.
pub const MAX_TAIL_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("no log file at {}", .0.display())]
    Missing(PathBuf),
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The last `lines` lines of the file at `path` (a final newline does not start an empty
/// line), at most [`MAX_TAIL_BYTES`] of them, starting on a line boundary.
pub fn tail_file(path: &Path, lines: usize) -> Result<Vec<u8>, TailError> {
    tail_file_with(path, lines, CHUNK, MAX_TAIL_BYTES)
}

pub(super) fn tail_file_with(
    path: &Path,
    lines: usize,
    chunk: usize,
    max_bytes: u64,
) -> Result<Vec<u8>, TailError> {
    let io_err = |source| TailError::Io {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO planted at the log path must not hang the worker; it has
    // no effect on regular files. O_NOCTTY likewise for a terminal device.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(TailError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(TailError::NotAFile(path.to_path_buf()));
    }
    tail_bytes(&file, meta.len(), lines, chunk.max(1), max_bytes).map_err(io_err)
}

/// Walks back from `len` one chunk at a time until `lines` newlines are seen (not counting
/// one at the very end), the start of the file, or `max_bytes`.
fn tail_bytes(
    file: &File,
    len: u64,
    lines: usize,
    chunk: usize,
    max_bytes: u64,
) -> io::Result<Vec<u8>> {
    if lines == 0 || len == 0 {
        return Ok(Vec::new());
    }
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut pos = len;
    let mut newlines = 0usize;
    let mut start: Option<u64> = None;
    let mut truncated = false;
    while pos > 0 && start.is_none() {
        let size = (chunk as u64).min(pos);
        let from = pos - size;
        let mut buf = vec![0u8; size as usize];
        // The length comes from fstat before reading; a file truncated meanwhile (copytruncate
        // rotation) ends in UnexpectedEof, reported as an I/O error.
        file.read_exact_at(&mut buf, from)?;
        for (i, &b) in buf.iter().enumerate().rev() {
            let at = from + i as u64;
            if b == b'\n' && at + 1 != len {
                newlines += 1;
                if newlines == lines {
                    start = Some(at + 1);
                    break;
                }
            }
        }
        chunks.push(buf);
        pos = from;
        if start.is_none() && len - pos >= max_bytes {
            start = Some(pos);
            truncated = pos > 0;
        }
    }
    let start = start.unwrap_or(0);
    let mut out = Vec::with_capacity((len - start) as usize);
    for buf in chunks.iter().rev() {
        out.extend_from_slice(buf);
    }
    out.drain(..(start - pos) as usize);
    if truncated {
        // Cut at the byte limit: drop the partial first line.
        let cut = out.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        out.drain(..cut);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `tail` must return: the last `n` lines, each with its terminator.
    fn naive(text: &str, n: usize) -> String {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        lines[lines.len().saturating_sub(n)..].concat()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("module.log");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn matches_naive_tail_for_every_chunk_size() {
        let tmp = tempfile::tempdir().unwrap();
        let texts = [
            "",
            "\n",
            "\n\n\n",
            "one",
            "one\n",
            "one\ntwo",
            "one\ntwo\n",
            "a\n\nb\n",
            "first line\nsecond\n\nfourth is longer than a chunk\nlast without newline",
        ];
        for text in texts {
            let path = write(tmp.path(), text);
            for n in 0..7 {
                for chunk in 1..9 {
                    let got = tail_file_with(&path, n, chunk, MAX_TAIL_BYTES).unwrap();
                    assert_eq!(
                        String::from_utf8(got).unwrap(),
                        naive(text, n),
                        "text {text:?}, lines {n}, chunk {chunk}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_file_reads_only_the_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let path = write(tmp.path(), &text);
        let got = tail_file(&path, 3).unwrap();
        assert_eq!(got, b"line 49997\nline 49998\nline 49999\n");
    }

    #[test]
    fn byte_limit_cuts_on_a_line_boundary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "aaaaaaaa\nbbbb\ncccc\n");
        // 8 bytes from the end land inside "bbbb": the partial line is dropped.
        let got = tail_file_with(&path, 100, 4, 8).unwrap();
        assert_eq!(got, b"cccc\n");
        // 12 bytes land inside the first line.
        let got = tail_file_with(&path, 100, 4, 12).unwrap();
        assert_eq!(got, b"bbbb\ncccc\n");
        // Enough lines before the limit: no cut.
        let got = tail_file_with(&path, 1, 4, 8).unwrap();
        assert_eq!(got, b"cccc\n");
    }

    #[test]
    fn missing_directory_and_fifo_are_errors_not_hangs() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope/module.log");
        assert!(matches!(tail_file(&missing, 1), Err(TailError::Missing(_))));
        let file_as_dir = write(tmp.path(), "x\n").join("module.log");
        assert!(matches!(
            tail_file(&file_as_dir, 1),
            Err(TailError::Missing(_))
        ));
        assert!(matches!(
            tail_file(tmp.path(), 1),
            Err(TailError::NotAFile(_))
        ));
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(tail_file(&fifo, 1), Err(TailError::NotAFile(_))));
    }
}
