//! `reiallowedbw`: a copy to a joining SECOND sends its data no faster than the cap, so that a
//! resynchronisation does not starve the application's own traffic on a shared link.

use std::time::{Duration, Instant};

/// Longest single sleep, so that a stopped copy notices it soon.
pub const SLICE: Duration = Duration::from_millis(100);

/// How long to wait before sending more, `sent` bytes having gone out `elapsed` after the
/// start at `rate` bytes per second.
pub fn delay(rate: u64, sent: u64, elapsed: Duration) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    due.saturating_sub(elapsed)
}

/// The data bytes a copy sent, against an optional cap.
pub struct Pacer {
    rate: Option<u64>,
    started: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new(rate: Option<u64>) -> Pacer {
        Pacer {
            rate,
            started: Instant::now(),
            sent: 0,
        }
    }

    /// No cap from now on (writes are waiting for the copy's end).
    pub fn lift(&mut self) {
        self.rate = None;
    }

    /// Counts `bytes` about to be sent; how long to wait first (never more than [`SLICE`]:
    /// call again with 0 until it says zero).
    pub fn account(&mut self, bytes: u64) -> Duration {
        self.sent += bytes;
        self.rate.map_or(Duration::ZERO, |rate| {
            delay(rate, self.sent, self.started.elapsed()).min(SLICE)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_waits_until_its_bytes_are_due() {
        let mib = 1 << 20;
        assert_eq!(
            delay(mib, 2 * mib, Duration::from_millis(500)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            delay(mib, mib, Duration::from_secs(3)),
            Duration::ZERO,
            "behind"
        );
        assert_eq!(delay(0, mib, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn no_cap_never_waits_and_a_cap_waits_in_slices() {
        assert_eq!(Pacer::new(None).account(1 << 30), Duration::ZERO);
        assert_eq!(Pacer::new(Some(1024)).account(1 << 20), SLICE);
    }
}
