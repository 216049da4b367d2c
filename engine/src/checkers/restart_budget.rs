//! The `maxloop` / `loop_interval` bookkeeping: how many local restarts a checker may cause
//! before the module gives up locally and fails over to its peer.

use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RestartBudget {
    maxloop: u32,
    interval: Duration,
    restarts: VecDeque<Duration>,
}

/// The answer to "may I restart locally once more?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart here; this is restart number `nth` within the interval.
    Restart { nth: u32 },
    /// `maxloop` restarts already happened within the interval: fail over instead.
    Exhausted { restarts: u32 },
}

impl RestartBudget {
    pub fn new(maxloop: u32, interval: Duration) -> RestartBudget {
        RestartBudget {
            maxloop,
            interval,
            restarts: VecDeque::new(),
        }
    }

    /// Ask for one more local restart at `now`; a granted restart is counted.
    pub fn request(&mut self, now: Duration) -> Verdict {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_sub(oldest) >= self.interval {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        let used = self.restarts.len() as u32;
        if used >= self.maxloop {
            Verdict::Exhausted { restarts: used }
        } else {
            self.restarts.push_back(now);
            Verdict::Restart { nth: used + 1 }
        }
    }

    /// Local restarts counted within the interval ending at `now`.
    pub fn used(&self, now: Duration) -> u32 {
        let recent = self
            .restarts
            .iter()
            .filter(|t| now.saturating_sub(**t) < self.interval)
            .count();
        u32::try_from(recent).unwrap_or(u32::MAX)
    }

    /// Forget past restarts (the module was stopped by the administrator, or moved).
    pub fn reset(&mut self) {
        self.restarts.clear();
    }

    pub fn maxloop(&self) -> u32 {
        self.maxloop
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxloop_restarts_then_exhausted_until_the_interval_slides() {
        let s = Duration::from_secs;
        let mut b = RestartBudget::new(3, s(60));
        assert_eq!(b.request(s(0)), Verdict::Restart { nth: 1 });
        assert_eq!(b.request(s(10)), Verdict::Restart { nth: 2 });
        assert_eq!(b.request(s(20)), Verdict::Restart { nth: 3 });
        assert_eq!(b.request(s(30)), Verdict::Exhausted { restarts: 3 });
        // The first restart leaves the window at 60 s.
        assert_eq!(b.request(s(60)), Verdict::Restart { nth: 3 });
        assert_eq!(b.used(s(60)), 3);
        assert_eq!(b.used(s(200)), 0);
        b.reset();
        assert_eq!(b.request(s(61)), Verdict::Restart { nth: 1 });
    }

    #[test]
    fn maxloop_zero_never_restarts_locally() {
        let mut b = RestartBudget::new(0, Duration::from_secs(60));
        assert_eq!(
            b.request(Duration::ZERO),
            Verdict::Exhausted { restarts: 0 }
        );
    }
}
