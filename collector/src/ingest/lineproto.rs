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
use velometry_core::lineproto::{encode_parts, encode_verbatim, origin_tags, FieldRef, Origin};
use velometry_core::reading::{validate_known, FieldValue, Metric, Reading, ReadingError};
use velometry_core::time::{now_nanos, Nanos};

use super::{read_body, Ages, LateSpans};
use crate::auth::token_from;
use crate::error::ApiError;
use crate::metrics as m;
use crate::state::AppState;

const PROTOCOL: &str = "lineproto";

/// Query parameters of `/write` (v1) and `/api/v2/write` (v2).
#[derive(Debug, Deserialize)]
pub struct WriteParams {
    precision: Option<String>,
    p: Option<String>,
    /// `import` or `replay`, for velometry's own tools; `lineproto` otherwise.
    source: Option<String>,
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
    let now = now_nanos();
    let source = match params.source.as_deref() {
        None => PROTOCOL,
        Some("import") => "import",
        Some("replay") => "replay",
        Some(other) => {
            return Err(ApiError::BadRequest(format!("source={other:?} is not one of import, replay")))
        }
    };
    let origin = Origin { rider: &identity.rider, device: &identity.device, source };
    let parsed = parse(text, multiplier, now, origin, state.ingest.ages(now));
    state
        .ingest
        .commit_lines(PROTOCOL, &identity, parsed.lines, parsed.count, &parsed.live, &parsed.late)
        .await?;
    match parsed.first_error {
        None => Ok(StatusCode::NO_CONTENT),
        Some(first) => {
            m::rejected(PROTOCOL, "invalid", parsed.bad);
            let others = match parsed.bad {
                1 => String::new(),
                n => format!(" (and {} other errors)", n - 1),
            };
            let message = if parsed.count == 0 {
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

/// The valid lines of a body, encoded for the log, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid lines, normalised and tagged with their origin.
    pub lines: Vec<u8>,
    /// How many lines `lines` holds.
    pub count: usize,
    /// The gps and heart_rate readings among them recent enough to publish live.
    pub live: Vec<Reading>,
    /// The spans of readings late for the rollups.
    pub late: LateSpans,
    /// Number of bad lines.
    pub bad: usize,
    /// The first bad line and why.
    pub first_error: Option<String>,
}

/// Parses, validates and encodes every line; a bad line does not stop the others.
///
/// This is the ingest hot path (bulk imports, Telegraf), so lines of known measurements
/// are checked and re-encoded straight from the parsed text, without building a
/// [`Reading`] for each (only those that will be published live).
pub fn parse(text: &str, multiplier: i64, now: Nanos, origin: Origin<'_>, ages: Ages) -> Parsed {
    let mut parsed = Parsed { lines: Vec::with_capacity(text.len() + text.len() / 2), ..Parsed::default() };
    let tags = origin_tags(origin);
    let origin = (origin, tags.as_slice());
    for (number, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match encode_line(line, multiplier, now, origin, ages, &mut parsed) {
            Ok(()) => parsed.count += 1,
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

/// The most fields a known measurement has.
const MAX_FIELDS: usize = 8;

/// Encodes one line for the log, tagged with `origin` (whose tags, encoded, are `.1`).
fn encode_line(
    line: &str,
    multiplier: i64,
    now: Nanos,
    (origin, tags): (Origin<'_>, &[u8]),
    ages: Ages,
    out: &mut Parsed,
) -> Result<(), String> {
    let parsed = parse_lp(line).map_err(|e| e.to_string())?;
    let time = match parsed.timestamp {
        Some(t) => t.checked_mul(multiplier).ok_or_else(|| format!("timestamp {t} is out of range"))?,
        None => now,
    };
    let Some(metric) = Metric::from_name(&parsed.measurement) else {
        let reading = other_reading(parsed.measurement.into_owned(), parsed.fields, time, now)?;
        encode_parts(
            reading.measurement().name(),
            &parsed.tags,
            origin,
            fields_of(&reading),
            time,
            &mut out.lines,
        );
        return Ok(());
    };
    let mut numbers = [("", 0.0); MAX_FIELDS];
    // Each float's text, when it can be copied to the output as it is.
    let mut texts = [None; MAX_FIELDS];
    if parsed.fields.len() > MAX_FIELDS {
        return Err(format!("{metric} has at most {} fields", metric.fields().len()));
    }
    for ((slot, text), (key, value)) in numbers.iter_mut().zip(texts.iter_mut()).zip(&parsed.fields) {
        let number = match value {
            LpValue::Float(v, written) => {
                *text = plain_float(written);
                *v
            }
            LpValue::Int(v) => *v as f64,
            LpValue::UInt(v) => *v as f64,
            LpValue::Str(_) | LpValue::Bool(_) => {
                return Err(ReadingError::NotANumber { metric, field: key.to_string() }.to_string())
            }
        };
        *slot = (key.as_ref(), number);
    }
    let numbers = &numbers[..parsed.fields.len()];
    validate_known(metric, time, now, numbers).map_err(|e| e.to_string())?;
    if parsed.tags.is_empty() && texts[..numbers.len()].iter().all(Option::is_some) {
        // Known field names need no escaping and every value is copied as written: the
        // fields go out as the client wrote them.
        encode_verbatim(metric.name(), tags, parsed.fields_text, time, &mut out.lines);
    } else {
        let fields = numbers
            .iter()
            .zip(texts)
            .map(|((k, v), text)| (*k, text.map_or(FieldRef::Float(*v), FieldRef::FloatText)));
        encode_parts(metric.name(), &parsed.tags, origin, fields, time, &mut out.lines);
    }
    if time < ages.late_before {
        out.late.note(metric, time);
    }
    if metric.is_live() && ages.live_oldest.is_some_and(|oldest| time >= oldest) {
        out.live.push(Reading::known(metric, time, now, numbers.iter().copied()).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// A float's text if InfluxDB reads it exactly as we did: digits, an optional leading
/// minus, a point and an exponent (no `+`, no leading point, no `i`/`u` suffix), at most 32
/// characters. Copying it saves formatting the value again (a third of the cost of a GPS
/// line).
fn plain_float(text: &str) -> Option<&str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let ok = text.len() <= 32
        && digits.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    ok.then_some(text)
}

fn other_reading(
    measurement: String,
    fields: Vec<(std::borrow::Cow<'_, str>, LpValue<'_>)>,
    time: Nanos,
    now: Nanos,
) -> Result<Reading, String> {
    let fields = fields
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                LpValue::Float(v, _) => FieldValue::Float(v),
                LpValue::Int(v) => FieldValue::Int(v),
                LpValue::UInt(v) => FieldValue::UInt(v),
                LpValue::Str(s) => FieldValue::Str(s.into_owned()),
                LpValue::Bool(b) => FieldValue::Bool(b),
            };
            (k.into_owned(), value)
        })
        .collect();
    Reading::other(measurement, time, now, fields).map_err(|e| e.to_string())
}

fn fields_of(reading: &Reading) -> impl Iterator<Item = (&str, FieldRef<'_>)> {
    reading.fields().map(|(k, v)| (k, FieldRef::from(v)))
}

#[cfg(test)]
mod tests {
    use velometry_core::ids::{DeviceId, RiderId};

    use super::*;

    const NOW: Nanos = 1_764_237_600_000_000_000;

    fn run(text: &str, multiplier: i64, live_oldest: Option<Nanos>) -> Parsed {
        let ages = Ages { live_oldest, late_before: NOW - 300_000_000_000 };
        let rider = RiderId::parse("alice").expect("valid");
        let device = DeviceId::parse("edge").expect("valid");
        parse(text, multiplier, NOW, Origin { rider: &rider, device: &device, source: "lineproto" }, ages)
    }

    #[test]
    fn normalises_known_fields_and_keeps_unknown_measurements() {
        let text =
            "heart_rate,rider=bob bpm=142i 1764237600\n# a comment\n\ncpu,host=a usage=1i,ok=t 1764237600\n";
        let parsed = run(text, 1_000_000_000, None);
        assert_eq!(parsed.bad, 0, "{:?}", parsed.first_error);
        assert_eq!(parsed.count, 2);
        assert_eq!(
            String::from_utf8(parsed.lines).expect("utf8"),
            "heart_rate,device=edge,rider=alice,source=lineproto bpm=142 1764237600000000000\n\
             cpu,device=edge,host=a,rider=alice,source=lineproto usage=1i,ok=true 1764237600000000000\n"
        );
    }

    #[test]
    fn keeps_good_lines_and_reports_the_first_bad_one() {
        let text = "gps lat=95,lon=7 1764237600\nheart_rate bpm=120 1764237600\nnot line protocol\n";
        let parsed = run(text, 1_000_000_000, None);
        assert_eq!((parsed.count, parsed.bad), (1, 2));
        let first = parsed.first_error.expect("an error");
        assert!(
            first.starts_with(
                "unable to parse 'gps lat=95,lon=7 1764237600' (line 1): lat 95 is out of range"
            ),
            "{first}"
        );
    }

    #[test]
    fn floats_are_copied_as_written_when_influxdb_reads_them_the_same() {
        let parsed = run(&format!("gps lat=45.100,lon=7.6e0,alt=+12.5,speed=.5 {NOW}"), 1, None);
        assert_eq!(
            String::from_utf8(parsed.lines).expect("utf8"),
            format!("gps,device=edge,rider=alice,source=lineproto lat=45.100,lon=7.6e0,alt=12.5,speed=0.5 {NOW}\n")
        );
        assert_eq!(plain_float("1e5"), Some("1e5"));
        assert_eq!(plain_float("+1"), None);
        assert_eq!(plain_float(".5"), None);
    }

    #[test]
    fn fields_copied_as_written_give_the_line_encoding_each_part_gives() {
        let rider = RiderId::parse("alice").expect("valid");
        let device = DeviceId::parse("edge").expect("valid");
        let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
        for line in [
            format!("gps lat=45.1,lon=-7.6e0,alt=250,speed=8.25,heading=359.9,accuracy=3 {NOW}"),
            format!("heart_rate bpm=142 {NOW}"),
            format!("power watts=250.5  {NOW}"),
            format!("temperature celsius=-3.5E-1 {NOW}"),
        ] {
            let copied = run(&line, 1, None);
            assert_eq!(copied.bad, 0, "{line}: {:?}", copied.first_error);
            let parts = parse_lp(&line).expect("line protocol");
            let mut encoded = Vec::new();
            let fields = parts.fields.iter().map(|(key, value)| match value {
                LpValue::Float(_, text) => (key.as_ref(), FieldRef::FloatText(text)),
                other => panic!("{other:?}"),
            });
            encode_parts(&parts.measurement, &parts.tags, origin, fields, NOW, &mut encoded);
            assert_eq!(String::from_utf8(copied.lines), String::from_utf8(encoded), "{line}");
        }
    }

    #[test]
    fn a_missing_timestamp_is_fixed_at_ingest() {
        let parsed = run("power watts=250.5", 1, None);
        assert_eq!(
            String::from_utf8(parsed.lines).expect("utf8"),
            format!("power,device=edge,rider=alice,source=lineproto watts=250.5 {NOW}\n")
        );
    }

    #[test]
    fn string_fields_of_known_measurements_are_refused() {
        let parsed = run("heart_rate bpm=\"high\"", 1, None);
        assert_eq!(
            parsed.first_error.as_deref(),
            Some("unable to parse 'heart_rate bpm=\"high\"' (line 1): field \"bpm\" of heart_rate must be a number")
        );
    }

    #[test]
    fn only_recent_gps_and_heart_rate_are_kept_for_live() {
        let text =
            format!("gps lat=1,lon=2 {NOW}\npower watts=100 {NOW}\nheart_rate bpm=90 {}\n", NOW - 1000);
        let parsed = run(&text, 1, Some(NOW - 10));
        assert_eq!(parsed.count, 3);
        assert_eq!(parsed.live.len(), 1);
        assert_eq!(parsed.live[0].float("lat"), Some(1.0));
        assert!(run(&text, 1, None).live.is_empty(), "no NATS, nothing kept");
    }

    #[test]
    fn late_readings_are_noted_per_measurement_and_reserved_names_refused() {
        let hour = 3_600_000_000_000;
        let text = format!(
            "heart_rate bpm=90 {}\nheart_rate bpm=91 {}\nheart_rate bpm=92 {NOW}\npower watts=1 {}\ncpu x=1 {}\nheart_rate_1m bpm_count=1i {NOW}\n",
            NOW - 5 * hour,
            NOW - 2 * hour,
            NOW - hour,
            NOW - hour
        );
        let parsed = run(&text, 1, None);
        assert_eq!(parsed.count, 5);
        let mut expected = LateSpans::default();
        expected.note(Metric::HeartRate, NOW - 5 * hour);
        expected.note(Metric::HeartRate, NOW - 2 * hour);
        expected.note(Metric::Power, NOW - hour);
        assert_eq!(parsed.late, expected, "the on-time reading and unknown measurements are not late");
        assert_eq!(parsed.bad, 1);
        assert!(parsed.first_error.unwrap_or_default().contains("reserved"));
    }
}
