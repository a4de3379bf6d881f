//! A line-protocol parser for the ingest hot path, with InfluxDB 1.x's rules.
//!
//! Written here rather than taken from `influxdb-line-protocol` for two reasons. That crate's
//! nom parser was half of the collector's CPU time in the line-protocol benchmark (see
//! BENCHMARKS.md): this one scans bytes, borrows everything it does not have to unescape,
//! and allocates only the tag and field lists. And the crate follows InfluxDB 3's grammar,
//! where the collector must accept exactly what InfluxDB 1.x and 2.x store and read it as
//! they do: this parser ports their scanners (`models/points.go`, see [`scan`]), with their
//! error messages, so that a line is refused at ingest with the reason InfluxDB would give
//! rather than acknowledged and refused by the sink. Its one leniency: a `+` before a number
//! or a timestamp, which InfluxDB refuses and the collector writes without.

mod scan;

use std::borrow::Cow;
use std::fmt;

pub use scan::MAX_KEY_LENGTH;

/// One field value as InfluxDB reads it.
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

impl Value<'_> {
    /// The type InfluxDB gives the field.
    pub fn field_type(&self) -> FieldType {
        match self {
            Value::Float(..) => FieldType::Float,
            Value::Int(_) => FieldType::Integer,
            Value::UInt(_) => FieldType::Unsigned,
            Value::Bool(_) => FieldType::Boolean,
            Value::Str(_) => FieldType::String,
        }
    }
}

/// A field's type in InfluxDB, fixed by the first value written (per shard in 1.x and 2.x,
/// per table in 3.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldType {
    /// `float`
    Float,
    /// `integer`
    Integer,
    /// `unsigned` (InfluxDB 2 and later)
    Unsigned,
    /// `boolean`
    Boolean,
    /// `string`
    String,
}

impl FieldType {
    /// Every type.
    pub const ALL: [FieldType; 5] =
        [FieldType::Float, FieldType::Integer, FieldType::Unsigned, FieldType::Boolean, FieldType::String];

    /// The name InfluxDB uses (`SHOW FIELD KEYS`, its error messages).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
        }
    }

    /// The type of an InfluxDB name, as `SHOW FIELD KEYS` gives it.
    pub fn from_name(name: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tag as written (`key=value`, escapes and all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    raw: &'a str,
    eq: usize,
}

impl<'a> Tag<'a> {
    /// `key=value` as written: InfluxDB keys a series by this text, so it is copied to the
    /// sink as it is.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The key as written.
    pub fn raw_key(&self) -> &'a str {
        &self.raw[..self.eq]
    }

    /// The key as InfluxDB shows it (`\,`, `\ ` and `\=` unescaped).
    pub fn key(&self) -> Cow<'a, str> {
        unescape(self.raw_key(), tag_code)
    }

    /// The value as InfluxDB shows it.
    pub fn value(&self) -> Cow<'a, str> {
        unescape(&self.raw[self.eq + 1..], tag_code)
    }
}

/// One field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<'a> {
    /// The key as written.
    pub raw_key: &'a str,
    /// The key as InfluxDB shows it (`\,`, `\"`, `\ ` and `\=` unescaped).
    pub key: Cow<'a, str>,
    /// `key=value` as written.
    pub raw: &'a str,
    /// The value.
    pub value: Value<'a>,
    /// Whether InfluxDB reads `raw` back as this field wherever it is copied: not after a
    /// `+` the collector let through, nor for a last value ending in a backslash (which
    /// would escape the space before the timestamp the collector adds).
    pub verbatim: bool,
}

/// One parsed line, borrowing from the input where nothing had to be unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// Measurement name as InfluxDB shows it (`\,`, `\"`, `\ ` and `\=` unescaped).
    pub measurement: Cow<'a, str>,
    /// Measurement name as written.
    pub raw_measurement: &'a str,
    /// Tags in the order written.
    pub tags: Vec<Tag<'a>>,
    /// Fields in the order written.
    pub fields: Vec<Field<'a>>,
    /// The fields as written, from the first key to the end of the last value.
    pub fields_text: &'a str,
    /// Whether `fields_text` may be copied as it is: every field is verbatim and none is
    /// named `time` (which InfluxDB drops).
    pub fields_verbatim: bool,
    /// The timestamp in nanoseconds, if the line has one.
    pub timestamp: Option<i64>,
}

/// How to read lines.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Whether `1u` is a number: InfluxDB 2 and later have unsigned integers, 1.x does not.
    pub unsigned: bool,
    /// Nanoseconds per unit of the timestamps (the request's precision).
    pub multiplier: i64,
}

impl Default for Options {
    /// Unsigned integers allowed, nanosecond timestamps: lines the collector wrote itself.
    fn default() -> Options {
        Options { unsigned: true, multiplier: 1 }
    }
}

/// Why InfluxDB refuses a line: its own message for each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing before the first comma or space.
    #[error("missing measurement")]
    MissingMeasurement,
    /// Nothing after the measurement and tags.
    #[error("missing fields")]
    MissingFields,
    /// A comma not followed by a tag key.
    #[error("missing tag key")]
    MissingTagKey,
    /// A tag key without `=value`.
    #[error("missing tag value")]
    MissingTagValue,
    /// A bare `=` in a tag value.
    #[error("invalid tag format")]
    InvalidTagFormat,
    /// Two tags with the same key.
    #[error("duplicate tags")]
    DuplicateTags,
    /// A series key longer than InfluxDB stores.
    #[error("max key length exceeded: {0} > {MAX_KEY_LENGTH}")]
    MaxKeyLength(usize),
    /// `=` without a key before it.
    #[error("missing field key")]
    MissingFieldKey,
    /// `=` without a value after it.
    #[error("missing field value")]
    MissingFieldValue,
    /// A value that starts like a number and is not one (and `1u` in InfluxDB 1.x).
    #[error("invalid number")]
    InvalidNumber,
    /// A value that is no number, string or boolean.
    #[error("invalid boolean")]
    InvalidBoolean,
    /// A float out of range or malformed in its exponent.
    #[error("invalid float")]
    InvalidFloat,
    /// An integer outside the 64-bit range.
    #[error("unable to parse integer {0}: strconv.ParseInt: parsing {0:?}: value out of range")]
    IntegerOutOfRange(String),
    /// An unsigned integer outside the 64-bit range.
    #[error("unable to parse unsigned {0}: strconv.ParseUint: parsing {0:?}: value out of range")]
    UnsignedOutOfRange(String),
    /// A string value without its closing quote.
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    /// Keys and values that do not pair up.
    #[error("invalid field format")]
    InvalidFieldFormat,
    /// A field key whose `=` is escaped.
    #[error("invalid value: field-key={0}")]
    InvalidFieldKey(String),
    /// A timestamp with something other than digits.
    #[error("bad timestamp")]
    BadTimestamp,
    /// A timestamp that is a lone sign.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    TimestampSyntax(String),
    /// A timestamp outside the 64-bit range.
    #[error("strconv.ParseInt: parsing {0:?}: value out of range")]
    TimestampOutOfRange(String),
    /// A time InfluxDB cannot store, in its precision.
    #[error("time outside range -9223372036854775806 - 9223372036854775806")]
    TimeOutOfRange,
    /// Text after the timestamp.
    #[error("point is invalid")]
    InvalidPoint,
    /// A string value followed by text whose last character InfluxDB would cut in half
    /// (it stores what lies between the first and the last byte): refused by the collector.
    #[error("text after a string value's closing quote ends in a character that would be cut in half")]
    BrokenString,
}

/// The nanosecond range InfluxDB stores (`models.MinNanoTime`, `MaxNanoTime`).
const TIME_RANGE: std::ops::RangeInclusive<i64> = (i64::MIN + 2)..=(i64::MAX - 1);

/// Parses one line (without its newline) with the [`Options::default`].
///
/// # Errors
/// [`ParseError`] with InfluxDB's message.
pub fn parse_line(line: &str) -> Result<Line<'_>, ParseError> {
    parse_line_with(line, Options::default())
}

/// Parses one line (without its newline), as InfluxDB's `parsePoint` does.
///
/// # Errors
/// [`ParseError`] with InfluxDB's message.
pub fn parse_line_with(line: &str, options: Options) -> Result<Line<'_>, ParseError> {
    let b = line.as_bytes();
    let start = scan::skip_whitespace(b, 0);
    let mut raw_tags = Vec::new();
    let (measurement_end, key_end) = scan::scan_key(line, start, &mut raw_tags)?;
    let key_len = key_end - start;
    if key_len > MAX_KEY_LENGTH {
        return Err(ParseError::MaxKeyLength(key_len));
    }
    let fields_start = scan::skip_whitespace(b, key_end);
    let (fields_end, scanned) = scan::scan_fields(b, fields_start, options.unsigned)?;
    let fields_text = &line[fields_start..fields_end];
    let fields = fields_of(fields_text, key_len, &scanned, fields_start)?;
    let (ts_start, ts_end) = scan::scan_time(b, fields_end, true)?;
    let timestamp = if ts_start == ts_end {
        None
    } else {
        let text = &line[ts_start..ts_end];
        let ts: i64 = text.parse().map_err(|e: std::num::ParseIntError| match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                ParseError::TimestampOutOfRange(text.to_owned())
            }
            _ => ParseError::TimestampSyntax(text.to_owned()),
        })?;
        let nanos = ts
            .checked_mul(options.multiplier)
            .filter(|t| TIME_RANGE.contains(t))
            .ok_or(ParseError::TimeOutOfRange)?;
        if b[ts_end..].iter().any(|&c| c != b' ') {
            return Err(ParseError::InvalidPoint);
        }
        Some(nanos)
    };
    let fields_verbatim = fields.iter().all(|f| f.verbatim && f.key != "time");
    Ok(Line {
        measurement: unescape(&line[start..measurement_end], name_code),
        raw_measurement: &line[start..measurement_end],
        tags: raw_tags.into_iter().map(|(raw, eq)| Tag { raw, eq }).collect(),
        fields,
        fields_text,
        fields_verbatim,
        timestamp,
    })
}

/// The fields of validated fields text, cut as InfluxDB's `walkFields` cuts them (or where
/// the first pass saw they are, when that is the same). Indices in `scanned` are in the
/// line, whose fields start at `offset`.
fn fields_of<'a>(
    text: &'a str,
    key_len: usize,
    scanned: &scan::Scanned,
    offset: usize,
) -> Result<Vec<Field<'a>>, ParseError> {
    let b = text.as_bytes();
    let plus = &scanned.plus;
    let mut fields = Vec::with_capacity(4);
    let mut at = 0;
    let mut lenient_values = 0;
    let mut cut = 0;
    while at < b.len() {
        let (eq, end) = match scanned.cuts {
            Some((cuts, n)) if cut < n => (cuts[cut].0 - offset, cuts[cut].1 - offset),
            _ => scan::next_field(b, at)?,
        };
        cut += 1;
        let raw_key = &text[at..eq];
        let size = key_len + 4 + raw_key.len();
        if size > MAX_KEY_LENGTH {
            return Err(ParseError::MaxKeyLength(size));
        }
        let raw_value = &text[eq + 1..end];
        let lets_plus = plus.contains(&(offset + eq + 1));
        let (value, lenient) = value_of(raw_value, lets_plus)?;
        lenient_values += usize::from(lenient);
        fields.push(Field {
            raw_key,
            key: unescape(raw_key, name_code),
            raw: &text[at..end],
            value,
            verbatim: !lenient && !raw_value.ends_with('\\'),
        });
        at = end + 1;
    }
    // A `+` the first pass let through where the second sees no value (after an escaped
    // `=`) would be refused by InfluxDB as it meets it: so here.
    if lenient_values != plus.len() {
        return Err(ParseError::InvalidBoolean);
    }
    Ok(fields)
}

/// A value as InfluxDB's field iterator types and reads it: by its first byte, then its
/// last. Returns whether a `+` was let through.
fn value_of(raw: &str, plus: bool) -> Result<(Value<'_>, bool), ParseError> {
    let b = raw.as_bytes();
    let Some(&first) = b.first() else {
        // The scanners refuse an empty value before it gets here.
        return Err(ParseError::InvalidFieldFormat);
    };
    if first == b'"' {
        // InfluxDB takes what lies between the first and the last byte, whatever the last is.
        let inner = raw.get(1..raw.len().saturating_sub(1).max(1)).ok_or(ParseError::BrokenString)?;
        return Ok((Value::Str(unescape(inner, |c| matches!(c, b'\\' | b'"'))), false));
    }
    let lenient = plus && first == b'+';
    if lenient || matches!(first, b'0'..=b'9' | b'-' | b'.' | b'n' | b'N' | b'i' | b'I' | b'u') {
        let value = match b[b.len() - 1] {
            b'i' => raw[..raw.len() - 1].parse().ok().map(Value::Int),
            b'u' => raw[..raw.len() - 1].parse().ok().map(Value::UInt),
            _ => raw.parse().ok().filter(|v: &f64| v.is_finite()).map(|v| Value::Float(v, raw)),
        };
        return value.map(|v| (v, lenient)).ok_or(ParseError::InvalidNumber);
    }
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => Ok((Value::Bool(true), false)),
        "f" | "F" | "false" | "False" | "FALSE" => Ok((Value::Bool(false), false)),
        _ => Err(ParseError::InvalidBoolean),
    }
}

/// What a backslash escapes in a measurement or field name (`escape.Unescape`).
fn name_code(c: u8) -> bool {
    matches!(c, b',' | b'"' | b' ' | b'=')
}

/// What a backslash escapes in a tag key or value (`unescapeTag`).
fn tag_code(c: u8) -> bool {
    matches!(c, b',' | b' ' | b'=')
}

/// `raw` with the backslash dropped before each byte `code` says it escapes, left to
/// right, as InfluxDB unescapes names, tags and strings.
fn unescape(raw: &str, code: impl Fn(u8) -> bool) -> Cow<'_, str> {
    let b = raw.as_bytes();
    // Names are short: a plain loop finds the backslash sooner than memchr sets up.
    let found = if b.len() < 32 { b.iter().position(|&c| c == b'\\') } else { memchr::memchr(b'\\', b) };
    let Some(first) = found else {
        return Cow::Borrowed(raw);
    };
    let mut out = String::with_capacity(raw.len());
    let (mut copied, mut i) = (0, first);
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1).is_some_and(|&c| code(c)) {
            out.push_str(&raw[copied..i]);
            copied = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push_str(&raw[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
