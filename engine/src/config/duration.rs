//! Time attributes: a whole number with an optional unit (`d h m s ms us`, e.g. `30s`,
//! `1500ms`). A bare number keeps the unit the attribute historically had in the model
//! product (ms for `pulse`, hours for `loop_interval`, ...), so existing files keep meaning
//! what they meant.

use std::time::Duration;

/// A unit of time, for a suffix or for the historical unit of a bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Days,
    Hours,
    Minutes,
    Seconds,
    Millis,
    Micros,
}

impl TimeUnit {
    fn from_suffix(suffix: &str) -> Option<TimeUnit> {
        Some(match suffix {
            "d" => TimeUnit::Days,
            "h" => TimeUnit::Hours,
            "m" => TimeUnit::Minutes,
            "s" => TimeUnit::Seconds,
            "ms" => TimeUnit::Millis,
            "us" => TimeUnit::Micros,
            _ => return None,
        })
    }

    /// `n` of this unit, or `None` if that does not fit a `Duration`'s seconds.
    fn times(self, n: u64) -> Option<Duration> {
        let secs = |per: u64| n.checked_mul(per).map(Duration::from_secs);
        match self {
            TimeUnit::Days => secs(86_400),
            TimeUnit::Hours => secs(3_600),
            TimeUnit::Minutes => secs(60),
            TimeUnit::Seconds => Some(Duration::from_secs(n)),
            TimeUnit::Millis => Some(Duration::from_millis(n)),
            TimeUnit::Micros => Some(Duration::from_micros(n)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("not a time (write a whole number with an optional unit, e.g. \"30s\")")]
    NotANumber,
    #[error("fractions are not supported (use a smaller unit, e.g. \"1500ms\" for 1.5 s)")]
    Fraction,
    #[error("unknown time unit \"{0}\" (use d, h, m, s, ms or us, e.g. \"30s\")")]
    UnknownUnit(String),
    #[error("time too large")]
    Overflow,
}

/// Parses `text` (surrounding spaces allowed); a number without unit is in `bare` units.
pub fn parse_duration(text: &str, bare: TimeUnit) -> Result<Duration, DurationError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(DurationError::NotANumber);
    }
    let n: u64 = digits.parse().map_err(|_| DurationError::Overflow)?;
    let suffix = suffix.trim_start();
    let unit = if suffix.is_empty() {
        bare
    } else if suffix.starts_with(['.', ',']) {
        return Err(DurationError::Fraction);
    } else {
        TimeUnit::from_suffix(suffix).ok_or_else(|| DurationError::UnknownUnit(suffix.into()))?
    };
    unit.times(n).ok_or(DurationError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str, bare: TimeUnit) -> Duration {
        match parse_duration(text, bare) {
            Ok(d) => d,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn every_suffix() {
        assert_eq!(ok("2d", TimeUnit::Millis), Duration::from_secs(2 * 86_400));
        assert_eq!(ok("3h", TimeUnit::Millis), Duration::from_secs(3 * 3_600));
        assert_eq!(ok("1m", TimeUnit::Millis), Duration::from_secs(60));
        assert_eq!(ok("30s", TimeUnit::Millis), Duration::from_secs(30));
        assert_eq!(ok("1500ms", TimeUnit::Hours), Duration::from_millis(1500));
        assert_eq!(ok("250us", TimeUnit::Hours), Duration::from_micros(250));
    }

    #[test]
    fn bare_numbers_keep_the_historical_unit() {
        assert_eq!(ok("700", TimeUnit::Millis), Duration::from_millis(700));
        assert_eq!(ok("24", TimeUnit::Hours), Duration::from_secs(24 * 3_600));
        assert_eq!(ok("10", TimeUnit::Seconds), Duration::from_secs(10));
        assert_eq!(ok("0", TimeUnit::Seconds), Duration::ZERO);
    }

    #[test]
    fn spaces_are_tolerated() {
        assert_eq!(ok(" 30 s ", TimeUnit::Millis), Duration::from_secs(30));
    }

    #[test]
    fn unknown_unit() {
        let err = parse_duration("3x", TimeUnit::Millis).unwrap_err();
        assert_eq!(err, DurationError::UnknownUnit("x".into()));
        assert_eq!(
            err.to_string(),
            "unknown time unit \"x\" (use d, h, m, s, ms or us, e.g. \"30s\")"
        );
        assert_eq!(
            parse_duration("1m30s", TimeUnit::Millis),
            Err(DurationError::UnknownUnit("m30s".into()))
        );
    }

    #[test]
    fn not_numbers() {
        for text in ["", "  ", "s", "-1", "+1", "ten"] {
            assert_eq!(
                parse_duration(text, TimeUnit::Seconds),
                Err(DurationError::NotANumber),
                "{text:?}"
            );
        }
    }

    #[test]
    fn fractions() {
        assert_eq!(
            parse_duration("1.5s", TimeUnit::Seconds),
            Err(DurationError::Fraction)
        );
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = "99999999999999999999999";
        assert_eq!(
            parse_duration(huge, TimeUnit::Seconds),
            Err(DurationError::Overflow)
        );
        let days = format!("{}d", u64::MAX / 2);
        assert_eq!(
            parse_duration(&days, TimeUnit::Seconds),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            ok(&format!("{}us", u64::MAX), TimeUnit::Seconds),
            Duration::from_micros(u64::MAX)
        );
    }
}
