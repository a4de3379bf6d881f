//! Line-protocol encoding of readings, the one format every InfluxDB version accepts.
//!
//! Every line carries the `rider`, `device` and `source` tags of the request it came in,
//! and an explicit nanosecond timestamp fixed at ingest, so that writing the same line twice
//! overwrites one point instead of adding a second.

pub mod parse;

use crate::ids::{DeviceId, RiderId};
use crate::reading::{FieldValue, Reading};

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

impl<'a> From<&'a FieldValue> for FieldRef<'a> {
    fn from(value: &'a FieldValue) -> Self {
        match value {
            FieldValue::Float(v) => FieldRef::Float(*v),
            FieldValue::Int(v) => FieldRef::Int(*v),
            FieldValue::UInt(v) => FieldRef::UInt(*v),
            FieldValue::Bool(v) => FieldRef::Bool(*v),
            FieldValue::Str(v) => FieldRef::Str(v),
        }
    }
}

/// Appends one reading as a line (with its trailing newline) to `out`.
pub fn encode(reading: &Reading, origin: Origin<'_>, out: &mut Vec<u8>) {
    encode_parts(
        reading.measurement().name(),
        reading.tags(),
        origin,
        reading.fields().map(|(k, v)| (k, FieldRef::from(v))),
        reading.time(),
        out,
    );
}

/// Appends one line from its parts: the client's tags (the reserved ones are dropped and
/// replaced by the origin's), fields, and the timestamp in nanoseconds. For callers that
/// have validated the parts without building a [`Reading`] (the line-protocol hot path).
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
        match value {
            FieldRef::Float(v) => {
                // Whole numbers (heart rates, watts) are written as integers without the
                // `i` suffix, which line protocol reads as a float; the rest through ryu,
                // several times faster than `{v}` and as exact.
                if v.fract() == 0.0 && v.abs() < 1e15 {
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
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
    out.push(b'\n');
}

/// The origin's tags as they follow the measurement of a line without tags of its own
/// (`,device=…,rider=…,source=…`), for [`encode_verbatim`]: written once per request.
pub fn origin_tags(origin: Origin<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_tag("device", origin.device.as_str(), &mut out);
    write_tag("rider", origin.rider.as_str(), &mut out);
    write_tag("source", origin.source, &mut out);
    out
}

/// Appends a line whose measurement and fields are copied as written, after the
/// [`origin_tags`]: for a line the caller has checked needs no escaping and no
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

// The bytes escaped with a backslash in each part of a line, and the newline, which would
// end the line and which InfluxDB cannot store in a tag either: it becomes a space.
/// In a measurement name.
static MEASUREMENT: ByteSet = ByteSet::of(b", \n");
/// In tag keys and values and field keys.
static KEY: ByteSet = ByteSet::of(b", =\n");
/// In a string field value (between its quotes).
static STRING: ByteSet = ByteSet::of(b"\"\\\n");

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
        let reading = Reading::known(Metric::HeartRate, t, t, [("bpm", 142.0)])
            .expect("valid")
            .with_tags([("host name".to_owned(), "a,b=c".to_owned())]);
        let mut out = Vec::new();
        encode(&reading, Origin { rider: &rider, device: &device, source: "json" }, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "heart_rate,device=edge530,host\\ name=a\\,b\\=c,rider=alice,source=json bpm=142 1764237600000000000\n"
        );
    }

    #[test]
    fn encodes_every_field_type() {
        let rider = RiderId::parse("a").expect("valid");
        let device = DeviceId::parse("d").expect("valid");
        let fields = vec![
            ("f".to_owned(), FieldValue::Float(1.5)),
            ("i".to_owned(), FieldValue::Int(-2)),
            ("b".to_owned(), FieldValue::Bool(true)),
            ("s".to_owned(), FieldValue::Str("say \"hi\"".to_owned())),
        ];
        let t = 1_000_000_000_000_000_000;
        let reading = Reading::other("my meas".into(), t, t, fields).expect("valid");
        let mut out = Vec::new();
        encode(&reading, Origin { rider: &rider, device: &device, source: "lineproto" }, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "my\\ meas,device=d,rider=a,source=lineproto f=1.5,i=-2i,b=true,s=\"say \\\"hi\\\"\" 1000000000000000000\n"
        );
    }
}
