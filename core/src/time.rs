//! Timestamps as clients send them: RFC 3339 strings or epoch numbers.

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

/// The current time in nanoseconds since the epoch.
pub fn now_nanos() -> Nanos {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
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
    fn milliseconds_convert_exactly() {
        for ms in [1_764_237_600_001_i64, 1_764_237_600_002, 1_764_237_603_333] {
            assert_eq!(millis_to_nanos(ms as f64), Some(ms * 1_000_000));
        }
        assert_eq!(millis_to_nanos(1.5), Some(1_500_000));
        assert_eq!(millis_to_nanos(f64::NAN), None);
    }
}
