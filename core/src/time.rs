//! Timestamps as clients send them: RFC 3339 strings or epoch numbers, and the clock the
//! services read "now" from.
//!
//! The clock is the machine's wall clock, except that it never goes back: after the
//! machine's clock is stepped backwards (an NTP correction, a VM resumed, an operator's fix),
//! it stands still, one nanosecond a call, until the wall clock catches up. So two calls
//! never give the same time (two readings stamped with them would be one point in
//! InfluxDB), nothing is stamped before what was already stamped, and a device whose clock
//! is right is not taken for one that is ahead. A restart follows the machine's clock at
//! once. Forward steps are followed as they come. Monotonic timers (`Instant`, tokio's
//! sleeps, the rate limiter) are not wall time and never see a step.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, NaiveDateTime, Utc};

/// Nanoseconds since the Unix epoch, the unit InfluxDB stores.
pub type Nanos = i64;

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {value:?}: expected RFC 3339 (2026-11-27T10:00:00Z) or epoch milliseconds")]
pub struct InvalidTime {
    /// The rejected value.
    pub value: String,
}

/// A step of the machine's clock simulated by a test (see [`set_simulated_step`]), ns.
static SIMULATED_STEP: AtomicI64 = AtomicI64::new(0);
/// The last time [`now_nanos`] returned.
static LAST: AtomicI64 = AtomicI64::new(i64::MIN);

/// The current time in nanoseconds since the epoch: the wall clock, never earlier than (and
/// never equal to) a time returned before, in any thread.
pub fn now_nanos() -> Nanos {
    let wall = Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
        .saturating_add(SIMULATED_STEP.load(Ordering::Relaxed));
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Makes the wall clock [`now_nanos`] reads `step` nanoseconds off the machine's, as if the
/// machine's clock had been stepped by that much: the collector's testing flag
/// `--testing-clock-step-file` sets it, so that a test can step the clock of one process
/// without touching the machine's.
pub fn set_simulated_step(step: Nanos) {
    SIMULATED_STEP.store(step, Ordering::Relaxed);
}

/// Converts epoch milliseconds to nanoseconds; `None` past the year 2262.
pub fn millis_to_nanos(ms: f64) -> Option<Nanos> {
    if !ms.is_finite() || ms.abs() >= (i64::MAX / 1_000_000) as f64 {
        return None;
    }
    // Whole milliseconds in integer arithmetic: `ms * 1e6` in floating point would land a
    // few hundred nanoseconds off, on either side of the millisecond.
    let whole = ms.trunc() as i64;
    let fraction = (ms.fract() * 1e6).round() as i64;
    whole.checked_mul(1_000_000)?.checked_add(fraction)
}

/// Parses an RFC 3339 / ISO 8601 string (a missing offset means UTC; a space may stand for
/// the `T`) into nanoseconds.
///
/// # Errors
/// [`InvalidTime`] when the string has neither form.
pub fn parse_rfc3339(value: &str) -> Result<Nanos, InvalidTime> {
    let invalid = || InvalidTime { value: value.to_owned() };
    let parsed = DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).or_else(|_| {
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|fmt| NaiveDateTime::parse_from_str(value, fmt).ok())
            .map(|naive| naive.and_utc())
            .ok_or_else(invalid)
    })?;
    parsed.timestamp_nanos_opt().ok_or_else(invalid)
}

/// Parses a time given as a string: RFC 3339, or an epoch number in milliseconds.
///
/// # Errors
/// [`InvalidTime`] when it is neither.
pub fn parse_str_or_millis(value: &str) -> Result<Nanos, InvalidTime> {
    match value.parse::<f64>() {
        Ok(ms) => millis_to_nanos(ms).ok_or_else(|| InvalidTime { value: value.to_owned() }),
        Err(_) => parse_rfc3339(value),
    }
}

/// Formats nanoseconds as RFC 3339 with millisecond precision, in UTC.
pub fn format_rfc3339(ns: Nanos) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms() {
        let expected = 1_764_237_600_000_000_000;
        assert_eq!(parse_str_or_millis("2025-11-27T10:00:00Z"), Ok(expected));
        assert_eq!(parse_str_or_millis("2025-11-27T11:00:00+01:00"), Ok(expected));
        assert_eq!(parse_str_or_millis("2025-11-27 10:00:00"), Ok(expected));
        assert_eq!(parse_str_or_millis("1764237600000"), Ok(expected));
        assert!(parse_str_or_millis("yesterday").is_err());
        assert_eq!(format_rfc3339(expected), "2025-11-27T10:00:00.000Z");
    }

    #[test]
    fn the_clock_never_goes_back_and_never_repeats() {
        let before = now_nanos();
        set_simulated_step(-3_600_000_000_000);
        let held: Vec<Nanos> = (0..1000).map(|_| now_nanos()).collect();
        set_simulated_step(0);
        assert!(held[0] > before, "a step back is not followed");
        assert!(held.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
        assert!(held[999] - before < 1_000_000_000, "it stands still while held");
    }

    #[test]
    fn milliseconds_convert_exactly() {
        for ms in [1_764_237_600_001_i64, 1_764_237_600_002, 1_764_237_603_333] {
            assert_eq!(millis_to_nanos(ms as f64), Some(ms * 1_000_000));
        }
        assert_eq!(millis_to_nanos(1.5), Some(1_500_000));
        assert_eq!(millis_to_nanos(f64::NAN), None);
    }
}
