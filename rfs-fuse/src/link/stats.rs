//! Counters for `hakit state -v` and `/metrics`: what the link sent and how long acks take.

use std::collections::VecDeque;
use std::time::Duration;

/// How many recent acks the latency summary covers: enough for a stable p99, recent enough
/// to show a degrading link within seconds under load.
pub const LATENCY_WINDOW: usize = 1024;

/// A snapshot of a link's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Requests written to the connection.
    pub ops_sent: u64,
    /// Bytes written, frame headers included.
    pub bytes_sent: u64,
    /// Requests sent and not answered yet.
    pub outstanding: u64,
    /// Requests answered (first reply, whatever its level).
    pub acks: u64,
    /// Errors the secondary reported after acknowledging a request as received, which did
    /// not match the local outcome (each one calls for a resync).
    pub late_failures: u64,
    /// Median time from sending a request to its first reply, over the last
    /// [`LATENCY_WINDOW`] acks; `None` before the first.
    pub ack_latency_p50: Option<Duration>,
    /// 99th percentile, same window.
    pub ack_latency_p99: Option<Duration>,
    /// Why the link broke, if it did.
    pub broken: Option<String>,
}

/// The last [`LATENCY_WINDOW`] ack latencies.
#[derive(Debug, Default)]
pub(super) struct LatencyWindow {
    samples: VecDeque<Duration>,
}

impl LatencyWindow {
    pub fn record(&mut self, latency: Duration) {
        if self.samples.len() >= LATENCY_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(latency);
    }

    /// `(p50, p99)` by nearest rank.
    pub fn summary(&self) -> (Option<Duration>, Option<Duration>) {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        (percentile(&sorted, 50), percentile(&sorted, 99))
    }
}

/// Nearest-rank percentile of sorted samples: the smallest sample with at least `p`% of the
/// samples at or below it.
fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank_over_a_sliding_window() {
        let mut window = LatencyWindow::default();
        assert_eq!(window.summary(), (None, None));
        for ms in 1..=100 {
            window.record(Duration::from_millis(ms));
        }
        assert_eq!(
            window.summary(),
            (
                Some(Duration::from_millis(50)),
                Some(Duration::from_millis(99))
            )
        );
        for _ in 0..LATENCY_WINDOW {
            window.record(Duration::from_millis(7));
        }
        assert_eq!(
            window.summary(),
            (
                Some(Duration::from_millis(7)),
                Some(Duration::from_millis(7))
            )
        );
    }
}
