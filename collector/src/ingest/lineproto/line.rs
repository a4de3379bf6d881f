//! One line of a `/write` body: read with InfluxDB's rules, checked as InfluxDB checks it
//! when it stores it and as velometry checks every reading, and encoded for the log.

use velometry_core::lineproto::parse::{parse_line_with, Line, Options, Value, MAX_KEY_LENGTH};
use velometry_core::lineproto::{
    encode_known, encode_line, encode_verbatim, FieldRef, OriginTags, RESERVED_TAGS,
};
use velometry_core::reading::{
    check_device_writable, check_time, is_reserved, validate_known, Metric, Reading, ReadingError,
};
use velometry_core::time::Nanos;

use super::{Parsed, Request};
use crate::field_types::Checker;

/// What every line of a request shares.
pub(super) struct Context<'a> {
    pub request: Request<'a>,
    /// The time of lines without one: the request's clock, cut to its precision.
    pub now: Nanos,
    /// The origin's tags, encoded.
    pub origin_tags: &'a OriginTags,
}

/// The most fields a known measurement has.
const MAX_FIELDS: usize = 8;

/// Reads, checks and appends one line to `out`; the reason it is refused otherwise.
pub(super) fn encode(
    text: &str,
    cx: &Context<'_>,
    types: &mut Checker,
    out: &mut Parsed,
) -> Result<(), String> {
    let options = Options { unsigned: types.unsigned(), multiplier: cx.request.multiplier };
    let line = parse_line_with(text, options).map_err(|e| e.to_string())?;
    let time = line.timestamp.unwrap_or(cx.now);
    check_series(&line, cx)?;
    if types.questdb() {
        crate::sink::questdb::check_line(&line)?;
    }
    match Metric::from_name(&line.measurement) {
        Some(metric) => known(metric, &line, time, cx, types, out),
        None => other(&line, time, cx, types, out),
    }
}

/// What InfluxDB refuses of the series when it stores a line: a tag named `time`, and a
/// key longer than it keeps, which the collector's own tags make longer than the client's.
fn check_series(line: &Line<'_>, cx: &Context<'_>) -> Result<(), String> {
    // As written: no escape turns another key into `time`.
    if line.tags.iter().any(|t| t.raw_key() == "time") {
        return Err(format!(
            "invalid tag key: input tag \"time\" on measurement \"{}\" is invalid",
            line.measurement
        ));
    }
    let client_tags: usize =
        line.tags.iter().filter(|t| !RESERVED_TAGS.contains(&t.raw_key())).map(|t| 1 + t.raw().len()).sum();
    let key = line.raw_measurement.len() + client_tags + cx.origin_tags.as_bytes().len();
    // As InfluxDB checks it: the key, then the key with each field's, in order.
    let too_long = std::iter::once(key)
        .chain(line.fields.iter().map(|f| key + 4 + f.raw_key.len()))
        .find(|size| *size > MAX_KEY_LENGTH);
    if let Some(size) = too_long {
        return Err(format!(
            "max key length exceeded: {size} > {MAX_KEY_LENGTH} (with the rider, device and source tags the collector adds)"
        ));
    }
    Ok(())
}

/// A line of a measurement velometry has no schema for: passed through as written, once
/// InfluxDB would take it.
fn other(
    line: &Line<'_>,
    time: Nanos,
    cx: &Context<'_>,
    types: &mut Checker,
    out: &mut Parsed,
) -> Result<(), String> {
    if is_reserved(&line.measurement) {
        return Err(ReadingError::Reserved(line.measurement.to_string()).to_string());
    }
    check_time(time, cx.request.now).map_err(|e| e.to_string())?;
    if line.fields.iter().all(|f| f.key == "time") {
        return Err(format!(
            "invalid field name: input field \"time\" on measurement \"{}\" is invalid",
            line.measurement
        ));
    }
    let before = out.lines.len();
    encode_line(line, cx.origin_tags, time, &mut out.lines);
    one_line(&mut out.lines, before)?;
    // Last: a line refused for another reason claims no field type.
    types.line(&line.measurement, &line.fields).map_err(|conflict| {
        out.lines.truncate(before);
        conflict.to_string()
    })
}

/// Refuses (and takes back) the line just written from `before` when it holds a newline
/// that the log would cut where the client's line was read on. InfluxDB opens a string at
/// a quote only once it has seen a space, so a line that began with spaces can hold a
/// newline between quotes in its series key; written without those spaces, that newline
/// would end it.
fn one_line(lines: &mut Vec<u8>, before: usize) -> Result<(), String> {
    let written = &lines[before..lines.len().saturating_sub(1)];
    if memchr::memchr(b'\n', written).is_none()
        || velometry_core::lineproto::lines(&lines[before..]).count() == 1
    {
        return Ok(());
    }
    lines.truncate(before);
    Err("a newline in the measurement or a tag, between quotes after leading spaces, which velometry cannot write back".into())
}

/// A line of a known measurement: every field a number in range, written as a float.
fn known(
    metric: Metric,
    line: &Line<'_>,
    time: Nanos,
    cx: &Context<'_>,
    types: &Checker,
    out: &mut Parsed,
) -> Result<(), String> {
    check_device_writable(metric).map_err(|e| e.to_string())?;
    if line.fields.len() > MAX_FIELDS {
        return Err(format!("{metric} has at most {} fields", metric.fields().len()));
    }
    let mut numbers = [("", 0.0); MAX_FIELDS];
    // Each float's text, when it can be copied to the output as it is.
    let mut texts = [None; MAX_FIELDS];
    for ((slot, text), field) in numbers.iter_mut().zip(texts.iter_mut()).zip(&line.fields) {
        let number = match &field.value {
            Value::Float(v, written) => {
                *text = plain_float(written);
                *v
            }
            Value::Int(v) => *v as f64,
            Value::UInt(v) => *v as f64,
            Value::Str(_) | Value::Bool(_) => {
                return Err(ReadingError::NotANumber { metric, field: field.key.to_string() }.to_string())
            }
        };
        *slot = (field.key.as_ref(), number);
    }
    let numbers = &numbers[..line.fields.len()];
    validate_known(metric, time, cx.request.now, numbers).map_err(|e| e.to_string())?;
    if types.known_blocked(metric) {
        for (name, _) in numbers {
            if let Some(index) = metric.fields().iter().position(|spec| spec.name == *name) {
                types.known(metric, index).map_err(|e| e.to_string())?;
            }
        }
    }
    if line.tags.is_empty() && texts[..numbers.len()].iter().all(Option::is_some) {
        // Known field names need no escaping and every value is copied as written: the
        // fields go out as the client wrote them.
        encode_verbatim(metric.name(), cx.origin_tags.as_bytes(), line.fields_text, time, &mut out.lines);
    } else {
        let fields = numbers
            .iter()
            .zip(texts)
            .map(|((k, v), text)| (*k, text.map_or(FieldRef::Float(*v), FieldRef::FloatText)));
        let before = out.lines.len();
        encode_known(metric.name(), &line.tags, cx.origin_tags, fields, time, &mut out.lines);
        one_line(&mut out.lines, before)?;
    }
    if time < cx.request.ages.late_before {
        out.late.note(metric, time);
    }
    if metric.is_live() && cx.request.ages.live_oldest.is_some_and(|oldest| time >= oldest) {
        let reading = Reading::known(metric, time, cx.request.now, numbers.iter().copied());
        out.live.push(reading.map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// A float's text if InfluxDB reads it exactly as we did: digits, an optional leading
/// minus, a point and an exponent (no `+`, no leading point, no `i`/`u` suffix), at most 32
/// characters. Copying it saves formatting the value again (a third of the cost of a GPS
/// line).
pub(super) fn plain_float(text: &str) -> Option<&str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let ok = text.len() <= 32
        && digits.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    ok.then_some(text)
}
