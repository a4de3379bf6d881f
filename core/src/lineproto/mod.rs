//! Line-protocol encoding of readings, the one format every InfluxDB version accepts.
//!
//! Every line carries the `rider`, `device` and `source` tags of the request it came in,
//! and an explicit nanosecond timestamp fixed at ingest, so that writing the same line twice
//! overwrites one point instead of adding a second.

mod lines;
pub mod parse;

pub use lines::{lines, Lines};

use crate::ids::{DeviceId, RiderId};
use crate::reading::Reading;
use parse::{Line, Tag, Value};

/// Tags set from the authenticated request, never from the payload.
pub const RESERVED_TAGS: [&str; 3] = ["device", "rider", "source"];

/// Where a reading came from: the authenticated device and the protocol or poller.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The rider the token belongs to.
    pub rider: &'a RiderId,
    /// The device the token belongs to.
    pub device: &'a DeviceId,
    /// The protocol or poller name (`lineproto`, `json`, `osmand`, …).
    pub source: &'a str,
}

/// A field value to encode, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef<'a> {
    /// A float.
    Float(f64),
    /// A float as the client wrote it, already checked to be one InfluxDB reads the same
    /// way: copied as it is, with no formatting.
    FloatText(&'a str),
    /// A signed integer (`i`).
    Int(i64),
    /// An unsigned integer (`u`).
    UInt(u64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'a str),
}

/// Appends one reading as a line (with its trailing newline) to `out`.
pub fn encode(reading: &Reading, origin: Origin<'_>, out: &mut Vec<u8>) {
    let no_tags: &[(&str, &str)] = &[];
    encode_parts(
        reading.metric().name(),
        no_tags,
        origin,
        reading.fields().map(|(k, v)| (k, FieldRef::Float(v))),
        reading.time(),
        out,
    );
}

/// Appends one line from its parts: tags as their values (escaped here; the reserved ones
/// are dropped and replaced by the origin's), fields, and the timestamp in nanoseconds.
pub fn encode_parts<'f, K: AsRef<str>, V: AsRef<str>>(
    measurement: &str,
    tags: &[(K, V)],
    origin: Origin<'_>,
    fields: impl Iterator<Item = (&'f str, FieldRef<'f>)>,
    time: i64,
    out: &mut Vec<u8>,
) {
    escape(measurement, &MEASUREMENT, out);
    let origin_tags =
        [("device", origin.device.as_str()), ("rider", origin.rider.as_str()), ("source", origin.source)];
    if tags.is_empty() {
        // The common case, already in key order: no sorting, no allocation.
        for (key, value) in origin_tags {
            write_tag(key, value, out);
        }
    } else {
        let mut all: Vec<(&str, &str)> = tags
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .filter(|(k, _)| !RESERVED_TAGS.contains(k))
            .chain(origin_tags)
            .collect();
        // InfluxDB indexes fastest when tags arrive sorted by key.
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, value) in all {
            write_tag(key, value, out);
        }
    }
    for (i, (name, value)) in fields.enumerate() {
        out.push(if i == 0 { b' ' } else { b',' });
        escape(name, &KEY, out);
        out.push(b'=');
        write_value(value, out);
    }
    finish(time, out);
}

/// The origin's tags encoded once per request (`,device=…,rider=…,source=…`, as they follow
/// the measurement of a line without tags of its own), for every line of the request:
/// encoding them for each line again was a twentieth of line-protocol ingest.
#[derive(Debug, Clone)]
pub struct OriginTags {
    bytes: Vec<u8>,
    /// Where each of the three ends in `bytes`.
    ends: [usize; 3],
}

impl OriginTags {
    /// The tags of `origin`.
    pub fn new(origin: Origin<'_>) -> OriginTags {
        let mut bytes = Vec::with_capacity(64);
        let mut ends = [0; 3];
        let tags =
            [("device", origin.device.as_str()), ("rider", origin.rider.as_str()), ("source", origin.source)];
        for ((key, value), end) in tags.into_iter().zip(&mut ends) {
            write_tag(key, value, &mut bytes);
            *end = bytes.len();
        }
        OriginTags { bytes, ends }
    }

    /// The three, encoded, in key order.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Each tag's key and its encoding (`,key=value`).
    fn each(&self) -> [(&'static str, &[u8]); 3] {
        let [device, rider, source] = self.ends;
        [
            ("device", &self.bytes[..device]),
            ("rider", &self.bytes[device..rider]),
            ("source", &self.bytes[rider..source]),
        ]
    }
}

/// Appends a line whose measurement and fields are copied as written, after the
/// [`OriginTags`]: for a line the caller has checked needs no escaping and no
/// normalising (the line-protocol hot path's known measurements with plain float fields),
/// where encoding each part again was a fifth of the collector's CPU.
pub fn encode_verbatim(measurement: &str, origin_tags: &[u8], fields: &str, time: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(measurement.as_bytes());
    out.extend_from_slice(origin_tags);
    out.push(b' ');
    out.extend_from_slice(fields.as_bytes());
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
    out.push(b'\n');
}

/// Appends a parsed line so that InfluxDB reads it back as it would have read the client's:
/// the measurement and the client's tags copied as written (InfluxDB keys a series by their
/// text, escapes and all), the origin's tags merged in; the fields as written, or, where
/// that text would not read back the same (a `+` let through, a last value ending in a
/// backslash) or holds a `time` field (which InfluxDB drops), written field by field
/// without `time`; and `time` in nanoseconds. The caller has refused lines with no field
/// but `time`.
pub fn encode_line(line: &Line<'_>, origin: &OriginTags, time: i64, out: &mut Vec<u8>) {
    write_series(line.raw_measurement, &line.tags, origin, out);
    out.push(b' ');
    if line.fields.first().is_some_and(|f| f.raw_key.is_empty()) {
        // InfluxDB stores a first field without a key when whitespace other than a space
        // comes before its `=` (` \t=1`); after a bare space it is a missing field key.
        out.push(b'\t');
    }
    if line.fields_verbatim {
        out.extend_from_slice(line.fields_text.as_bytes());
    } else {
        let mut first = true;
        for field in line.fields.iter().filter(|f| f.key != "time") {
            if !first {
                out.push(b',');
            }
            first = false;
            if field.verbatim {
                out.extend_from_slice(field.raw.as_bytes());
            } else {
                out.extend_from_slice(field.raw_key.as_bytes());
                out.push(b'=');
                write_value(FieldRef::from(&field.value), out);
            }
        }
    }
    finish(time, out);
}

/// Appends a line of a known measurement with the client's tags as written: for lines
/// whose fields are normalised (their names need no escaping).
pub fn encode_known<'f>(
    measurement: &str,
    tags: &[Tag<'_>],
    origin: &OriginTags,
    fields: impl Iterator<Item = (&'f str, FieldRef<'f>)>,
    time: i64,
    out: &mut Vec<u8>,
) {
    write_series(measurement, tags, origin, out);
    for (i, (name, value)) in fields.enumerate() {
        out.push(if i == 0 { b' ' } else { b',' });
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        write_value(value, out);
    }
    finish(time, out);
}

/// The measurement as written and the tags, the client's (as written, without the
/// reserved ones) merged with the origin's, in InfluxDB's order: by key as written.
fn write_series(measurement: &str, tags: &[Tag<'_>], origin: &OriginTags, out: &mut Vec<u8>) {
    out.extend_from_slice(measurement.as_bytes());
    if tags.is_empty() {
        // The common case, already in key order: no sorting, no allocation.
        out.extend_from_slice(origin.as_bytes());
        return;
    }
    // (key as written, the client's tag as written or the origin's, encoded)
    let mut all: Vec<(&str, Result<&str, &[u8]>)> = tags
        .iter()
        .filter(|t| !RESERVED_TAGS.contains(&t.raw_key()))
        .map(|t| (t.raw_key(), Ok(t.raw())))
        .chain(origin.each().into_iter().map(|(k, encoded)| (k, Err(encoded))))
        .collect();
    all.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (_, tag) in all {
        match tag {
            Ok(raw) => {
                out.push(b',');
                out.extend_from_slice(raw.as_bytes());
            }
            Err(encoded) => out.extend_from_slice(encoded),
        }
    }
}

fn finish(time: i64, out: &mut Vec<u8>) {
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
    out.push(b'\n');
}

impl<'a> From<&'a Value<'a>> for FieldRef<'a> {
    fn from(value: &'a Value<'a>) -> Self {
        match value {
            Value::Float(v, _) => FieldRef::Float(*v),
            Value::Int(v) => FieldRef::Int(*v),
            Value::UInt(v) => FieldRef::UInt(*v),
            Value::Bool(v) => FieldRef::Bool(*v),
            Value::Str(v) => FieldRef::Str(v),
        }
    }
}

fn write_value(value: FieldRef<'_>, out: &mut Vec<u8>) {
    match value {
        FieldRef::Float(v) => {
            // Whole numbers (heart rates, watts) are written as integers without the `i`
            // suffix, which line protocol reads as a float; the rest (and -0, which InfluxDB
            // keeps) through ryu, several times faster than `{v}` and as exact.
            if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
                out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
            } else {
                out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
            }
        }
        FieldRef::FloatText(text) => out.extend_from_slice(text.as_bytes()),
        FieldRef::Int(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            out.push(b'i');
        }
        FieldRef::UInt(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            out.push(b'u');
        }
        FieldRef::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        FieldRef::Str(s) => {
            out.push(b'"');
            escape(s, &STRING, out);
            out.push(b'"');
        }
    }
}

fn write_tag(key: &str, value: &str, out: &mut Vec<u8>) {
    out.push(b',');
    escape(key, &KEY, out);
    out.push(b'=');
    escape(value, &KEY, out);
}

/// A set of bytes as a table: one lookup per byte, where searching a list of them is a
/// loop (escaping was 12 % of the collector's CPU with the search).
pub(crate) struct ByteSet([bool; 256]);

impl ByteSet {
    /// The set of `bytes`.
    pub(crate) const fn of(bytes: &[u8]) -> ByteSet {
        let mut table = [false; 256];
        let mut i = 0;
        while i < bytes.len() {
            table[bytes[i] as usize] = true;
            i += 1;
        }
        ByteSet(table)
    }

    /// Whether `b` is in the set.
    #[inline]
    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b)]
    }
}

// The bytes escaped with a backslash in each part of a line, and, outside strings, the
// newline, which would end the line: it becomes a space. A string keeps its newlines:
// InfluxDB reads a line on past a newline between quotes (see `lines`).
/// In a measurement name.
static MEASUREMENT: ByteSet = ByteSet::of(b", \n");
/// In tag keys and values and field keys.
static KEY: ByteSet = ByteSet::of(b", =\n");
/// In a string field value (between its quotes).
static STRING: ByteSet = ByteSet::of(b"\"\\");

fn escape(s: &str, special: &ByteSet, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    let mut copied = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if special.contains(b) {
            out.extend_from_slice(&bytes[copied..i]);
            if b == b'\n' {
                out.push(b' ');
            } else {
                out.extend_from_slice(&[b'\\', b]);
            }
            copied = i + 1;
        }
    }
    out.extend_from_slice(&bytes[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Metric;

    #[test]
    fn encodes_tags_sorted_and_escaped() {
        let rider = RiderId::parse("alice").expect("valid");
        let device = DeviceId::parse("edge530").expect("valid");
        let t = 1_764_237_600_000_000_000;
        let mut out = Vec::new();
        let tags = [("host name", "a,b=c"), ("rider", "mallory")];
        let fields = [("bpm", FieldRef::Float(142.0))].into_iter();
        encode_parts(
            "heart_rate",
            &tags,
            Origin { rider: &rider, device: &device, source: "json" },
            fields,
            t,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "heart_rate,device=edge530,host\\ name=a\\,b\\=c,rider=alice,source=json bpm=142 1764237600000000000\n",
            "escaped, sorted, and the rider from the token, never from the payload"
        );
    }

    #[test]
    fn encodes_every_field_type() {
        let rider = RiderId::parse("a").expect("valid");
        let device = DeviceId::parse("d").expect("valid");
        let fields = [
            ("f", FieldRef::Float(1.5)),
            ("i", FieldRef::Int(-2)),
            ("b", FieldRef::Bool(true)),
            ("s", FieldRef::Str("say \"hi\"")),
        ];
        let t = 1_000_000_000_000_000_000;
        let mut out = Vec::new();
        let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
        encode_parts("my meas", &[] as &[(&str, &str)], origin, fields.into_iter(), t, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "my\\ meas,device=d,rider=a,source=lineproto f=1.5,i=-2i,b=true,s=\"say \\\"hi\\\"\" 1000000000000000000\n"
        );
    }

    #[test]
    fn encodes_a_known_reading() {
        let rider = RiderId::parse("alice").expect("valid");
        let device = DeviceId::parse("edge530").expect("valid");
        let t = 1_764_237_600_000_000_000;
        let reading = Reading::known(Metric::Gps, t, t, [("lat", 45.1), ("lon", -0.0)]).expect("valid");
        let mut out = Vec::new();
        encode(&reading, Origin { rider: &rider, device: &device, source: "json" }, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "gps,device=edge530,rider=alice,source=json lat=45.1,lon=-0.0 1764237600000000000\n"
        );
    }
}
