//! A line-protocol parser for the ingest hot path.
//!
//! Written here rather than taken from `influxdb-line-protocol` because that crate's nom
//! parser was half of the collector's CPU time in the line-protocol benchmark (see
//! BENCHMARKS.md): this one scans bytes once, borrows everything it does not have to
//! unescape, and keeps the rules of InfluxDB 1.x (`models/points.go`). A differential test
//! checks it against the crate on generated lines.

use std::borrow::Cow;

use super::ByteSet;

/// One field value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `1.5`, `-2e3`, `7`: the value and its text as written.
    Float(f64, &'a str),
    /// `7i`
    Int(i64),
    /// `7u`
    UInt(u64),
    /// `t`, `true`, `F`, …
    Bool(bool),
    /// `"text"`, unescaped
    Str(Cow<'a, str>),
}

/// One parsed line, borrowing from the input where nothing had to be unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// Measurement name.
    pub measurement: Cow<'a, str>,
    /// Tags in the order written.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Fields in the order written.
    pub fields: Vec<(Cow<'a, str>, Value<'a>)>,
    /// The fields as written, from the first key to the end of the last value.
    pub fields_text: &'a str,
    /// Timestamp in the request's precision, if the line has one.
    pub timestamp: Option<i64>,
}

/// Why a line is not line protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No measurement name.
    #[error("missing measurement")]
    MissingMeasurement,
    /// A tag without `=value`, or with an empty key or value.
    #[error("missing tag key or value")]
    BadTag,
    /// Nothing after the series key.
    #[error("missing fields")]
    MissingFields,
    /// A field without `=`, or with an empty key or value.
    #[error("invalid field format")]
    BadField,
    /// A string value without its closing quote.
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    /// A value that is no number, boolean or string.
    #[error("invalid field value {0:?}")]
    BadValue(String),
    /// A timestamp that is not an integer, or text after it.
    #[error("invalid timestamp {0:?}")]
    BadTimestamp(String),
}

static MEASUREMENT_END: ByteSet = ByteSet::of(b", ");
static KEY_END: ByteSet = ByteSet::of(b",= ");
static TAG_VALUE_END: ByteSet = ByteSet::of(b", ");
static FIELD_VALUE_END: ByteSet = ByteSet::of(b", ");

/// Parses one line (without its newline).
///
/// # Errors
/// [`ParseError`] saying what is malformed.
pub fn parse_line(line: &str) -> Result<Line<'_>, ParseError> {
    let bytes = line.as_bytes();
    let (measurement, mut i) = scan(line, 0, &MEASUREMENT_END, b", ");
    if measurement.is_empty() {
        return Err(ParseError::MissingMeasurement);
    }
    let mut tags = Vec::new();
    while bytes.get(i) == Some(&b',') {
        let (key, eq) = scan(line, i + 1, &KEY_END, b",= ");
        if key.is_empty() || bytes.get(eq) != Some(&b'=') {
            return Err(ParseError::BadTag);
        }
        let (value, end) = scan(line, eq + 1, &TAG_VALUE_END, b",= ");
        if value.is_empty() {
            return Err(ParseError::BadTag);
        }
        tags.push((key, value));
        i = end;
    }
    i = skip_spaces(bytes, i);
    if i >= bytes.len() {
        return Err(ParseError::MissingFields);
    }
    let mut fields = Vec::with_capacity(4);
    let fields_start = i;
    loop {
        let (key, eq) = scan(line, i, &KEY_END, b",= ");
        if key.is_empty() || bytes.get(eq) != Some(&b'=') {
            return Err(ParseError::BadField);
        }
        let (value, end) = if bytes.get(eq + 1) == Some(&b'"') {
            string_value(line, eq + 2)?
        } else {
            let end = bytes[eq + 1..]
                .iter()
                .position(|&b| FIELD_VALUE_END.contains(b))
                .map_or(bytes.len(), |p| eq + 1 + p);
            (scalar(&line[eq + 1..end])?, end)
        };
        fields.push((key, value));
        i = end;
        if bytes.get(i) == Some(&b',') {
            i += 1;
        } else {
            break;
        }
    }
    let fields_text = &line[fields_start..i];
    i = skip_spaces(bytes, i);
    let timestamp = if i < bytes.len() {
        let end = bytes[i..].iter().position(|&b| b == b' ').map_or(bytes.len(), |p| i + p);
        let text = &line[i..end];
        if skip_spaces(bytes, end) < bytes.len() {
            return Err(ParseError::BadTimestamp(line[i..].to_owned()));
        }
        Some(text.parse::<i64>().map_err(|_| ParseError::BadTimestamp(text.to_owned()))?)
    } else {
        None
    };
    Ok(Line { measurement, tags, fields, fields_text, timestamp })
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
        i += 1;
    }
    i
}

/// Reads from `start` to the first unescaped byte of `end`; a backslash before one of
/// `escapable` is dropped, any other backslash is kept (as InfluxDB does).
fn scan<'a>(line: &'a str, start: usize, end: &ByteSet, escapable: &[u8]) -> (Cow<'a, str>, usize) {
    let bytes = line.as_bytes();
    let mut i = start;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => {
                escaped = true;
                i += 2;
            }
            b if end.contains(b) => break,
            _ => i += 1,
        }
    }
    let raw = &line[start.min(i)..i];
    if !escaped {
        return (Cow::Borrowed(raw), i);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if next.is_ascii() && escapable.contains(&(next as u8)) {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    (Cow::Owned(out), i)
}

/// A quoted string value starting after its opening quote. `\"` and `\\` are unescaped.
fn string_value(line: &str, start: usize) -> Result<(Value<'_>, usize), ParseError> {
    let bytes = line.as_bytes();
    let mut i = start;
    let mut escaped = false;
    loop {
        match bytes.get(i) {
            None => return Err(ParseError::UnbalancedQuotes),
            Some(b'\\') if i + 1 < bytes.len() => {
                escaped = true;
                i += 2;
            }
            Some(b'"') => break,
            Some(_) => i += 1,
        }
    }
    let raw = &line[start..i];
    let value = if escaped {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && matches!(chars.peek(), Some('"' | '\\')) {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
                continue;
            }
            out.push(c);
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    Ok((Value::Str(value), i + 1))
}

fn scalar(text: &str) -> Result<Value<'_>, ParseError> {
    let bad = || ParseError::BadValue(text.to_owned());
    let bytes = text.as_bytes();
    match bytes {
        [] => Err(ParseError::BadField),
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(Value::Bool(true)),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(Value::Bool(false)),
        [.., b'i'] => text[..text.len() - 1].parse().map(Value::Int).map_err(|_| bad()),
        [.., b'u'] => text[..text.len() - 1].parse().map(Value::UInt).map_err(|_| bad()),
        // Rust would also read "NaN" and "inf"; InfluxDB does not.
        [first, ..] if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') => {
            let value: f64 = text.parse().map_err(|_| bad())?;
            if value.is_finite() {
                Ok(Value::Float(value, text))
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests;
