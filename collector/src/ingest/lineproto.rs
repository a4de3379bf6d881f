//! InfluxDB line protocol at `POST /write` and `POST /api/v2/write`, answered the way
//! InfluxDB answers, so Telegraf and every Influx client library can point here.
//!
//! Partial writes work as in InfluxDB 1.x: the good lines are kept and the answer is 400
//! `partial write: <first error> dropped=<bad lines>`. The `db`, `rp`, `org` and `bucket`
//! parameters are accepted and ignored: the collector writes where it is configured to.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use velometry_core::lineproto::parse::{parse_line as parse_lp, Value as LpValue};
use velometry_core::reading::{FieldValue, Metric, Reading, ReadingError};
use velometry_core::time::{now_nanos, Nanos};

use super::read_body;
use crate::app::AppState;
use crate::auth::token_from;
use crate::error::ApiError;
use crate::metrics as m;

const PROTOCOL: &str = "lineproto";

/// Query parameters of `/write` (v1) and `/api/v2/write` (v2).
#[derive(Debug, Deserialize)]
pub struct WriteParams {
    precision: Option<String>,
    p: Option<String>,
}

/// `POST /write` and `POST /api/v2/write`.
///
/// # Errors
/// 401 without a known token, 400 with InfluxDB's message for bad lines, 413 past the limit.
pub async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<WriteParams>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let identity = state.auth.device(token_from(&headers, params.p.as_deref()).as_deref())?;
    let multiplier = precision(params.precision.as_deref())?;
    let body = read_body(&headers, body, state.limits).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not UTF-8 line protocol: {e}")))?;
    let parsed = parse(text, multiplier, now_nanos());
    state.ingest.commit(PROTOCOL, &identity, &parsed.readings).await?;
    match parsed.first_error {
        None => Ok(StatusCode::NO_CONTENT),
        Some(first) => {
            m::rejected(PROTOCOL, "invalid", parsed.bad);
            let others = match parsed.bad {
                1 => String::new(),
                n => format!(" (and {} other errors)", n - 1),
            };
            let message = if parsed.readings.is_empty() {
                format!("{first}{others}")
            } else {
                format!("partial write: {first}{others} dropped={}", parsed.bad)
            };
            Err(ApiError::LineProtocol { message })
        }
    }
}

/// Nanoseconds per unit of the `precision` parameter (v1 and v2 spellings).
fn precision(value: Option<&str>) -> Result<i64, ApiError> {
    Ok(match value.unwrap_or("ns") {
        "" | "n" | "ns" => 1,
        "u" | "us" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid precision {other:?}: expected ns, us, ms, s, m or h"
            )))
        }
    })
}

/// The readings of a body, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid readings.
    pub readings: Vec<Reading>,
    /// Number of bad lines.
    pub bad: usize,
    /// The first bad line and why.
    pub first_error: Option<String>,
}

/// Parses every line; a bad line does not stop the others.
pub fn parse(text: &str, multiplier: i64, now: Nanos) -> Parsed {
    let mut parsed = Parsed { readings: Vec::with_capacity(text.len() / 64), ..Parsed::default() };
    for (number, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(line, multiplier, now) {
            Ok(reading) => parsed.readings.push(reading),
            Err(reason) => {
                parsed.bad += 1;
                if parsed.first_error.is_none() {
                    let shown: String = line.chars().take(200).collect();
                    parsed.first_error =
                        Some(format!("unable to parse '{shown}' (line {}): {reason}", number + 1));
                }
            }
        }
    }
    parsed
}

fn parse_line(line: &str, multiplier: i64, now: Nanos) -> Result<Reading, String> {
    let parsed = parse_lp(line).map_err(|e| e.to_string())?;
    let time = match parsed.timestamp {
        Some(t) => t.checked_mul(multiplier).ok_or_else(|| format!("timestamp {t} is out of range"))?,
        None => now,
    };
    let reading = match Metric::from_name(&parsed.measurement) {
        Some(metric) => {
            let mut fields = Vec::with_capacity(parsed.fields.len());
            for (key, value) in &parsed.fields {
                let number = match value {
                    LpValue::Float(v) => *v,
                    LpValue::Int(v) => *v as f64,
                    LpValue::UInt(v) => *v as f64,
                    LpValue::Str(_) | LpValue::Bool(_) => {
                        return Err(ReadingError::NotANumber { metric, field: key.to_string() }.to_string())
                    }
                };
                fields.push((key.as_ref(), number));
            }
            Reading::known(metric, time, now, fields)
        }
        None => {
            let fields = parsed
                .fields
                .into_iter()
                .map(|(k, v)| {
                    let value = match v {
                        LpValue::Float(v) => FieldValue::Float(v),
                        LpValue::Int(v) => FieldValue::Int(v),
                        LpValue::UInt(v) => FieldValue::UInt(v),
                        LpValue::Str(s) => FieldValue::Str(s.into_owned()),
                        LpValue::Bool(b) => FieldValue::Bool(b),
                    };
                    (k.into_owned(), value)
                })
                .collect();
            Reading::other(parsed.measurement.into_owned(), time, now, fields)
        }
    };
    let reading = reading.map_err(|e| e.to_string())?;
    Ok(if parsed.tags.is_empty() {
        reading
    } else {
        reading.with_tags(parsed.tags.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Nanos = 1_764_237_600_000_000_000;

    #[test]
    fn normalises_known_fields_and_keeps_unknown_measurements() {
        let text = "heart_rate bpm=142i 1764237600\n# a comment\n\ncpu,host=a usage=1i,ok=t 1764237600\n";
        let parsed = parse(text, 1_000_000_000, NOW);
        assert_eq!(parsed.bad, 0, "{:?}", parsed.first_error);
        assert_eq!(parsed.readings.len(), 2);
        assert_eq!(parsed.readings[0].float("bpm"), Some(142.0));
        assert_eq!(parsed.readings[0].time(), NOW);
        let cpu: Vec<_> = parsed.readings[1].fields().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        assert_eq!(cpu, vec![("usage".into(), FieldValue::Int(1)), ("ok".into(), FieldValue::Bool(true))]);
        assert_eq!(parsed.readings[1].tags(), &[("host".to_owned(), "a".to_owned())]);
    }

    #[test]
    fn keeps_good_lines_and_reports_the_first_bad_one() {
        let text = "gps lat=95,lon=7 1764237600\nheart_rate bpm=120 1764237600\nnot line protocol\n";
        let parsed = parse(text, 1_000_000_000, NOW);
        assert_eq!(parsed.readings.len(), 1);
        assert_eq!(parsed.bad, 2);
        let first = parsed.first_error.expect("an error");
        assert!(
            first.starts_with(
                "unable to parse 'gps lat=95,lon=7 1764237600' (line 1): lat 95 is out of range"
            ),
            "{first}"
        );
    }

    #[test]
    fn a_missing_timestamp_is_fixed_at_ingest() {
        let parsed = parse("power watts=250", 1, NOW);
        assert_eq!(parsed.readings[0].time(), NOW);
    }

    #[test]
    fn string_fields_of_known_measurements_are_refused() {
        let parsed = parse("heart_rate bpm=\"high\"", 1, NOW);
        assert_eq!(parsed.first_error.as_deref(), Some("unable to parse 'heart_rate bpm=\"high\"' (line 1): field \"bpm\" of heart_rate must be a number"));
    }
}
