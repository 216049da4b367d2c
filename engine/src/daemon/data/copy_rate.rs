//! The data rate of the last copy large enough to say something (16 MiB or more), kept in
//! the module's state folder: what `hakit rfsdiff` estimates a resynchronisation's time with.

use std::path::{Path, PathBuf};

/// A copy smaller than this measures its start-up, not its rate.
pub const MEANINGFUL: u64 = 16 << 20;

fn file(state_dir: &Path) -> PathBuf {
    state_dir.join("rfs-copy-rate")
}

/// Keeps `bytes_per_second`; best effort (an estimate is lost at worst).
pub fn record(state_dir: &Path, bytes_per_second: u64) {
    let _ = std::fs::write(file(state_dir), format!("{bytes_per_second}\n"));
}

/// The rate recorded last, if any.
pub fn last(state_dir: &Path) -> Option<u64> {
    std::fs::read_to_string(file(state_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&rate| rate > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_rate_is_read_back_and_nonsense_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last(dir.path()), None);
        record(dir.path(), 123 << 20);
        assert_eq!(last(dir.path()), Some(123 << 20));
        std::fs::write(file(dir.path()), "fast").unwrap();
        assert_eq!(last(dir.path()), None);
    }
}
