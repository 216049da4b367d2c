//! How far a copy to a joining SECOND got: what `hakit state -v`, the JSON endpoint and the
//! module log show (phase, files and bytes done and to go, throughput, ETA).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A copy's progress as shown to the administrator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyProgress {
    /// "connecting", "full copy", "copy of what differs", "journaled changes",
    /// "catch-up pass N",
    /// "last changes (writes waiting)", "done".
    pub phase: String,
    pub files: u64,
    pub bytes: u64,
    /// What the copy expects to send in all (measured before it starts; catch-up passes
    /// add what the application changed meanwhile).
    #[serde(default)]
    pub files_total: Option<u64>,
    #[serde(default)]
    pub bytes_total: Option<u64>,
    /// Data bytes per second since the copy started.
    #[serde(default)]
    pub bytes_per_second: Option<u64>,
    /// Seconds left at that rate.
    #[serde(default)]
    pub eta_seconds: Option<u64>,
    /// `reiallowedbw` in force, bytes per second.
    #[serde(default)]
    pub bandwidth_cap: Option<u64>,
}

impl CopyProgress {
    /// "412.0 of 1024.0 MiB, 1200 of 3000 files, 180.2 MiB/s, ETA 4 s" (what is known).
    pub fn summary(&self) -> String {
        let mut parts = vec![bytes_of(self.bytes, self.bytes_total)];
        parts.push(match self.files_total {
            Some(total) => format!("{} of {} files", self.files, total.max(self.files)),
            None => format!("{} files", self.files),
        });
        if let Some(rate) = self.bytes_per_second {
            parts.push(format!("{} MiB/s", mib(rate)));
        }
        if let Some(eta) = self.eta_seconds {
            parts.push(format!("ETA {eta} s"));
        }
        if let Some(cap) = self.bandwidth_cap {
            parts.push(format!("capped at {} KiB/s", cap / 1024));
        }
        parts.join(", ")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1 << 20) as f64)
}

/// "412.0 of 1024.0 MiB", or "412.0 MiB" when the total is unknown.
pub fn bytes_of(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("{} of {} MiB", mib(done), mib(total.max(done))),
        None => format!("{} MiB", mib(done)),
    }
}

/// The rate since the start and the time left at that rate; `None` until data moved.
pub fn rate_and_eta(
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
) -> (Option<u64>, Option<u64>) {
    let seconds = elapsed.as_secs_f64();
    if done == 0 || seconds <= 0.0 {
        return (None, None);
    }
    let rate = done as f64 / seconds;
    let eta = total.map(|total| (total.saturating_sub(done) as f64 / rate).ceil() as u64);
    (Some(rate as u64), eta)
}

/// The shared progress of one copy, updated by the copying thread, read by the views.
pub struct ProgressMeter {
    inner: Mutex<Metered>,
}

struct Metered {
    shown: CopyProgress,
    started: Option<Instant>,
    last_logged: Option<Instant>,
}

/// How often the module log repeats a copy's progress.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl ProgressMeter {
    pub fn new(bandwidth_cap: Option<u64>) -> ProgressMeter {
        ProgressMeter {
            inner: Mutex::new(Metered {
                shown: CopyProgress {
                    phase: "connecting".to_string(),
                    bandwidth_cap,
                    ..CopyProgress::default()
                },
                started: None,
                last_logged: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Metered> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self) -> CopyProgress {
        self.lock().shown.clone()
    }

    pub fn phase(&self, phase: String) {
        self.lock().shown.phase = phase;
    }

    /// What the copy is about to send; the clock of the rate starts here.
    pub fn expect(&self, files: u64, bytes: u64) {
        let mut m = self.lock();
        m.shown.files_total = Some(files);
        m.shown.bytes_total = Some(bytes);
        m.started = Some(Instant::now());
        m.last_logged = m.started;
    }

    /// More to send than expected (a catch-up pass).
    pub fn expect_more(&self, files: u64, bytes: u64) {
        let mut m = self.lock();
        let shown = &mut m.shown;
        shown.files_total = Some(shown.files_total.unwrap_or(shown.files) + files);
        shown.bytes_total = Some(shown.bytes_total.unwrap_or(shown.bytes) + bytes);
    }

    /// A file or data bytes sent; `Some(summary)` when it is time to log the progress.
    pub fn sent(&self, files: u64, bytes: u64) -> Option<String> {
        let mut m = self.lock();
        m.shown.files += files;
        m.shown.bytes += bytes;
        let started = *m.started.get_or_insert_with(Instant::now);
        let (rate, eta) = rate_and_eta(m.shown.bytes, m.shown.bytes_total, started.elapsed());
        m.shown.bytes_per_second = rate;
        m.shown.eta_seconds = eta;
        let due = m.last_logged.is_none_or(|at| at.elapsed() >= LOG_EVERY);
        if !due {
            return None;
        }
        m.last_logged = Some(Instant::now());
        Some(format!(
            "copy progress ({}): {}",
            m.shown.phase,
            m.shown.summary()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_time_left_follow_what_moved() {
        assert_eq!(
            rate_and_eta(0, Some(100), Duration::from_secs(1)),
            (None, None)
        );
        assert_eq!(
            rate_and_eta(50 << 20, Some(200 << 20), Duration::from_secs(2)),
            (Some(25 << 20), Some(6))
        );
        assert_eq!(
            rate_and_eta(10, None, Duration::from_secs(10)),
            (Some(1), None),
            "no total, no ETA"
        );
        assert_eq!(
            rate_and_eta(300, Some(200), Duration::from_secs(1)).1,
            Some(0),
            "more sent than expected: nothing left, not a negative time"
        );
    }

    #[test]
    fn the_summary_names_what_is_known() {
        let p = CopyProgress {
            phase: "full copy".into(),
            files: 1200,
            bytes: 412 << 20,
            files_total: Some(3000),
            bytes_total: Some(1 << 30),
            bytes_per_second: Some(180 << 20),
            eta_seconds: Some(4),
            bandwidth_cap: Some(200 << 20),
        };
        assert_eq!(
            p.summary(),
            "412.0 of 1024.0 MiB, 1200 of 3000 files, 180.0 MiB/s, ETA 4 s, capped at \
             204800 KiB/s"
        );
        let early = CopyProgress {
            files: 3,
            ..CopyProgress::default()
        };
        assert_eq!(early.summary(), "0.0 MiB, 3 files");
    }

    #[test]
    fn catch_up_passes_raise_the_total() {
        let meter = ProgressMeter::new(None);
        meter.expect(10, 1000);
        assert!(meter.sent(10, 1000).is_none(), "logged at most every 10 s");
        meter.expect_more(2, 50);
        let p = meter.get();
        assert_eq!((p.files_total, p.bytes_total), (Some(12), Some(1050)));
        assert_eq!((p.files, p.bytes), (10, 1000));
    }
}
