//! Time ranges as every route takes them (`from`, `to`), parsed once at the edge into a
//! [`TimeRange`] that lies within [`EARLIEST`, `LATEST`].
//!
//! The bounds are what the service's arithmetic holds: times are `i64` nanoseconds, and
//! answering a range computes its span, bucket widths rounded up to whole minutes or
//! hours, ranges widened to whole seconds and windows a few hours past either end. A range
//! of 1800–2100 spans more nanoseconds than an `i64` holds, and a `to` near 2262 overflows
//! when widened; both used to give wrong answers (every raw point, or none). From 1970 to
//! 2200 spans 79 % of the `i64` range, which leaves room for all of that, and holds every
//! reading the collector stores (1990 to now).

use std::time::Duration;

use axum::http::HeaderValue;
use velometry_core::time::{format_rfc3339, millis_to_nanos, now_nanos, parse_rfc3339, Nanos};

/// The earliest time a range may start at: 1970-01-01T00:00:00Z.
pub const EARLIEST: Nanos = 0;
/// The latest time a range may end at (exclusive): 2200-01-01T00:00:00Z.
pub const LATEST: Nanos = 7_258_118_400 * 1_000_000_000;

/// A half-open time range `[from, to)` in nanoseconds, with `EARLIEST <= from < to <= LATEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    from: Nanos,
    to: Nanos,
}

/// Why `from` and `to` do not make a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A value that is no time at all.
    #[error(
        "{name}={value:?} is not a time: give RFC 3339 (2026-11-27T10:00:00Z) or epoch milliseconds, {}",
        limits()
    )]
    NotATime {
        /// The parameter.
        name: &'static str,
        /// What was given.
        value: String,
    },
    /// A time outside the bounds.
    #[error("{name}={value:?} is out of range: {}", limits())]
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// What was given.
        value: String,
    },
    /// `from` not before `to`.
    #[error("from ({}) must be before to ({})", format_rfc3339(*from), format_rfc3339(*to))]
    Empty {
        /// The start.
        from: Nanos,
        /// The end.
        to: Nanos,
    },
}

/// The bounds, as every refusal names them.
fn limits() -> String {
    format!(
        "from {} (epoch ms {}) to {} (epoch ms {})",
        format_rfc3339(EARLIEST),
        EARLIEST / 1_000_000,
        format_rfc3339(LATEST),
        LATEST / 1_000_000
    )
}

impl TimeRange {
    /// The range `[from, to)`.
    ///
    /// # Errors
    /// [`RangeError::OutOfRange`] outside the bounds, [`RangeError::Empty`] when `from` is
    /// not before `to`.
    pub fn new(from: Nanos, to: Nanos) -> Result<TimeRange, RangeError> {
        let out = |name: &'static str, t: Nanos| RangeError::OutOfRange { name, value: format_rfc3339(t) };
        if !(EARLIEST..LATEST).contains(&from) {
            return Err(out("from", from));
        }
        if !(EARLIEST..=LATEST).contains(&to) {
            return Err(out("to", to));
        }
        if from >= to {
            return Err(RangeError::Empty { from, to });
        }
        Ok(TimeRange { from, to })
    }

    /// The range a request gives with `from` and `to` (RFC 3339 or epoch milliseconds); `to`
    /// defaults to now and `from` to `default_span` before `to` (not before [`EARLIEST`]).
    ///
    /// # Errors
    /// A value that is no time, one out of bounds, or `from` not before `to`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        default_span: Duration,
    ) -> Result<TimeRange, RangeError> {
        let to = to.map(|v| parse_time("to", v, EARLIEST..=LATEST)).transpose()?.unwrap_or_else(now_nanos);
        let span = i64::try_from(default_span.as_nanos()).unwrap_or(i64::MAX);
        let from = match from {
            Some(v) => parse_time("from", v, EARLIEST..=LATEST - 1)?,
            None => to.saturating_sub(span).max(EARLIEST),
        };
        TimeRange::new(from, to)
    }

    /// Inclusive start (ns).
    pub fn from(&self) -> Nanos {
        self.from
    }

    /// Exclusive end (ns).
    pub fn to(&self) -> Nanos {
        self.to
    }

    /// `Cache-Control` for an answer about this range: ranges that ended more than ten
    /// minutes ago change only when late readings arrive, so caches may keep them a while.
    pub fn cache_control(&self, public: bool) -> HeaderValue {
        let settled = self.to < now_nanos() - 600_000_000_000;
        HeaderValue::from_static(match (settled, public) {
            (true, true) => "public, max-age=300",
            (true, false) => "private, max-age=300",
            (false, _) => "no-cache",
        })
    }
}

/// An instant a request names (`at`): RFC 3339 or epoch milliseconds, within the bounds.
///
/// # Errors
/// A value that is no time, or one out of bounds.
pub fn parse_instant(name: &'static str, value: &str) -> Result<Nanos, RangeError> {
    parse_time(name, value, EARLIEST..=LATEST)
}

/// A time parameter: epoch milliseconds written as a JSON number (`1764237600000`,
/// `1764237600000.5`), or RFC 3339 (`2026-11-27T10:00:00Z`; without an offset it is UTC, a
/// space may stand for the `T`), within `bounds`.
fn parse_time(
    name: &'static str,
    value: &str,
    bounds: std::ops::RangeInclusive<Nanos>,
) -> Result<Nanos, RangeError> {
    let not_a_time = || RangeError::NotATime { name, value: value.to_owned() };
    let out_of_range = || RangeError::OutOfRange { name, value: value.to_owned() };
    let ns = if looks_numeric(value) {
        match json_number(value) {
            Some(ms) => {
                let (lo, hi) = (*bounds.start() as f64 / 1e6, *bounds.end() as f64 / 1e6);
                if !(lo..=hi).contains(&ms) {
                    return Err(out_of_range());
                }
                millis_to_nanos(ms).ok_or_else(out_of_range)?
            }
            None => parse_rfc3339(value).map_err(|_| not_a_time())?,
        }
    } else {
        parse_rfc3339(value).map_err(|_| not_a_time())?
    };
    if bounds.contains(&ns) {
        Ok(ns)
    } else {
        Err(out_of_range())
    }
}

fn looks_numeric(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// `value` if it is a JSON number, exactly as written (no sign but `-`, no surrounding
/// space): the one numeric syntax the API reads, as its OpenAPI document says.
pub(crate) fn json_number(value: &str) -> Option<f64> {
    if !looks_numeric(value) || value.ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    serde_json::from_str::<f64>(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn parse(from: &str, to: &str) -> Result<TimeRange, RangeError> {
        TimeRange::parse(Some(from), Some(to), DAY)
    }

    #[test]
    fn the_bounds_are_1970_and_2200() {
        assert_eq!(format_rfc3339(EARLIEST), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(LATEST), "2200-01-01T00:00:00.000Z");
        let widest = parse("1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z").expect("the widest range");
        assert_eq!((widest.from(), widest.to()), (EARLIEST, LATEST));
        assert_eq!(parse("0", "7258118400000"), Ok(widest));
        // What the arithmetic needs: the span, plus a few days of rounding, fits an i64.
        assert!((LATEST - EARLIEST).checked_add(100 * DAY.as_nanos() as i64).is_some());
    }

    #[test]
    fn times_outside_the_bounds_are_refused_naming_them() {
        for (from, to) in [
            ("1800-01-01T00:00:00Z", "2100-01-01T00:00:00Z"),
            ("-1", "1000"),
            ("1969-12-31T23:59:59.999Z", "2000-01-01T00:00:00Z"),
            ("2000-01-01T00:00:00Z", "2200-01-01T00:00:00.001Z"),
            ("2000-01-01T00:00:00Z", "2262-04-11T00:00:00Z"),
            ("2000-01-01T00:00:00Z", "9223372036854"),
            ("2000-01-01T00:00:00Z", "1e300"),
        ] {
            let e = parse(from, to).expect_err(from).to_string();
            assert!(e.contains("out of range"), "{from}..{to}: {e}");
            assert!(
                e.contains("from 1970-01-01T00:00:00.000Z (epoch ms 0) to 2200-01-01T00:00:00.000Z (epoch ms 7258118400000)"),
                "{e}"
            );
        }
        let beyond_chrono =
            parse("2000-01-01T00:00:00Z", "2300-01-01T00:00:00Z").expect_err("2300").to_string();
        assert!(
            beyond_chrono.contains("not a time") && beyond_chrono.contains("2200-01-01"),
            "{beyond_chrono}"
        );
    }

    #[test]
    fn both_forms_are_read_and_nothing_else() {
        let t = 1_764_237_600_000_000_000;
        for value in
            ["2025-11-27T10:00:00Z", "2025-11-27T11:00:00+01:00", "2025-11-27 10:00:00", "1764237600000"]
        {
            assert_eq!(parse_time("to", value, EARLIEST..=LATEST), Ok(t), "{value}");
        }
        assert_eq!(parse_time("to", "1764237600000.5", EARLIEST..=LATEST), Ok(t + 500_000));
        for value in [
            "",
            "yesterday",
            "+1764237600000",
            " 1764237600000",
            "0x10",
            "NaN",
            "inf",
            "2020-02-30T00:00:00Z",
        ] {
            assert!(
                matches!(parse_time("to", value, EARLIEST..=LATEST), Err(RangeError::NotATime { .. })),
                "{value:?}"
            );
        }
    }

    #[test]
    fn defaults_stay_within_the_bounds() {
        let r = TimeRange::parse(None, Some("3600000"), DAY).expect("an hour after the epoch");
        assert_eq!((r.from(), r.to()), (EARLIEST, 3_600_000_000_000));
        let r = TimeRange::parse(None, None, DAY).expect("the last day");
        assert_eq!(r.to() - r.from(), DAY.as_nanos() as i64);
        assert!(matches!(parse("5", "5"), Err(RangeError::Empty { .. })));
    }
}
