//! Polling for a condition. Deadlines only guard against hangs: they are generous and never a
//! timing threshold a test asserts on.

use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

/// The usual deadline: long enough that only a hang reaches it.
pub const DEADLINE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Ok(true)` or `deadline` passes.
///
/// `Ok(false)` and `Err(_)` both mean "not yet"; an error's text is kept as the last observation,
/// so a check can say what it saw (`Err(anyhow!("state is WAIT"))`). On timeout the error names
/// `what` was awaited and the last observation. To stop waiting at once (e.g. the daemon died),
/// return [`abort`]`(reason)`.
pub fn wait_until(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let observation = match check() {
            Ok(true) => return Ok(()),
            Ok(false) => "condition not met".to_string(),
            Err(e) if e.is::<Abort>() => return Err(e.context(format!("waiting for {what}"))),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() >= deadline {
            bail!(
                "timed out after {deadline:?} waiting for {what}; last observation: {observation}"
            );
        }
        sleep(POLL_INTERVAL);
    }
}

/// An error that makes [`wait_until`] give up at once instead of polling on.
pub fn abort(reason: impl Into<String>) -> anyhow::Error {
    anyhow!(Abort(reason.into()))
}

#[derive(Debug)]
struct Abort(String);

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Abort {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds() {
        let mut n = 0;
        wait_until("n to reach 3", DEADLINE, || {
            n += 1;
            Ok(n >= 3)
        })
        .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn timeout_names_what_and_the_last_observation() {
        let err = wait_until("the moon", Duration::from_millis(120), || {
            Err(anyhow!("state is WAIT"))
        })
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("waiting for the moon"), "{msg}");
        assert!(msg.contains("last observation: state is WAIT"), "{msg}");
    }

    #[test]
    fn abort_stops_at_once() {
        let mut calls = 0;
        let err = wait_until("anything", DEADLINE, || {
            calls += 1;
            Err(abort("the daemon exited"))
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(format!("{err:#}").contains("the daemon exited"));
    }
}
