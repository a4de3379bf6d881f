//! Encode → parse gives the same reading (property-based, proptest): what the collector
//! writes to its log and to InfluxDB reads back as what it took in.
//!
//! - a line a client sent, re-encoded with the collector's tags ([`encode_line`]), parses
//!   to the same measurement, the client's tags with the collector's in place of any
//!   reserved ones, the same fields (types and values, floats bit for bit, `-0` included,
//!   strings with their quotes, backslashes and newlines) and the collector's time;
//! - a reading of a known measurement ([`encode`], the JSON and device protocols' path)
//!   parses to the same fields, bit for bit, and time.

use std::collections::BTreeMap;

use proptest::prelude::*;
use velometry_core::ids::{DeviceId, RiderId};
use velometry_core::lineproto::parse::{parse_line, Line, Value};
use velometry_core::lineproto::{encode, encode_line, Origin, OriginTags};
use velometry_core::reading::{Metric, Reading};

const TIME: i64 = 1_795_773_600_123_456_789;

fn origin<'a>(rider: &'a RiderId, device: &'a DeviceId) -> Origin<'a> {
    Origin { rider, device, source: "lineproto" }
}

/// A name (measurement, tag or field key, tag value) as a client writes it: letters, digits,
/// UTF-8, and the bytes line protocol escapes, escaped.
fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => proptest::char::range('a', 'z').prop_map(String::from),
            1 => proptest::char::range('0', '9').prop_map(String::from),
            1 => Just("é".to_owned()),
            1 => Just("_".to_owned()),
            1 => Just("\\ ".to_owned()),
            1 => Just("\\,".to_owned()),
            1 => Just("\\=".to_owned()),
            1 => Just("\"".to_owned()),
        ],
        1..8,
    )
    .prop_map(|parts| parts.concat())
}

/// A field value as written, of every type.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v}")),
        any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v:e}")),
        Just("-0".to_owned()),
        Just("+1.5".to_owned()),
        any::<i64>().prop_map(|v| format!("{v}i")),
        any::<u32>().prop_map(|v| format!("{v}u")),
        prop_oneof![Just("t"), Just("true"), Just("F"), Just("false")].prop_map(str::to_owned),
        proptest::collection::vec(
            prop_oneof![
                4 => "[a-z ,=]".prop_map(String::from),
                1 => Just("\\\"".to_owned()),
                1 => Just("\\\\".to_owned()),
                1 => Just("\n".to_owned()),
                1 => Just("é".to_owned()),
            ],
            0..10
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat())),
    ]
}

/// A line: measurement, tags (sometimes a reserved one), fields, maybe a timestamp.
fn line() -> impl Strategy<Value = String> {
    (
        name(),
        proptest::collection::vec((prop_oneof![4 => name(), 1 => Just("rider".to_owned())], name()), 0..4),
        proptest::collection::vec((name(), value()), 1..5),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(|(measurement, tags, fields, timestamp)| {
            let mut line = measurement;
            for (k, v) in tags {
                line.push_str(&format!(",{k}={v}"));
            }
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line.push(' ');
            line.push_str(&fields.join(","));
            if let Some(t) = timestamp {
                line.push_str(&format!(" {t}"));
            }
            line
        })
}

/// A field's value in a form that compares floats by their bits.
fn comparable(value: &Value<'_>) -> String {
    match value {
        Value::Float(v, _) => format!("float {:#x}", v.to_bits()),
        other => format!("{other:?}"),
    }
}

fn tags(line: &Line<'_>) -> BTreeMap<String, String> {
    line.tags.iter().map(|t| (t.key().into_owned(), t.value().into_owned())).collect()
}

fn fields(line: &Line<'_>) -> Vec<(String, String)> {
    line.fields
        .iter()
        .filter(|f| f.key != "time")
        .map(|f| (f.key.to_string(), comparable(&f.value)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn a_client_line_re_encoded_reads_back_the_same(text in line()) {
        // A line InfluxDB would refuse is refused at ingest; only the others are logged.
        let Ok(sent) = parse_line(&text) else { return Ok(()) };
        prop_assume!(sent.fields.iter().any(|f| f.key != "time"));
        let (rider, device) = (RiderId::parse("alice").expect("id"), DeviceId::parse("phone").expect("id"));
        let mut out = Vec::new();
        encode_line(&sent, &OriginTags::new(origin(&rider, &device)), TIME, &mut out);
        let written = String::from_utf8(out).expect("UTF-8");
        let back = parse_line(written.strip_suffix('\n').expect("a newline at the end"))
            .map_err(|e| TestCaseError::fail(format!("{written:?} does not parse: {e}")))?;
        prop_assert_eq!(&back.measurement, &sent.measurement, "{}", written);
        let mut expected = tags(&sent);
        expected.extend([("device", "phone"), ("rider", "alice"), ("source", "lineproto")]
            .map(|(k, v)| (k.to_owned(), v.to_owned())));
        prop_assert_eq!(tags(&back), expected, "{}", written);
        prop_assert_eq!(fields(&back), fields(&sent), "{}", written);
        prop_assert_eq!(back.timestamp, Some(TIME));
    }

    #[test]
    fn a_known_reading_encoded_reads_back_the_same(
        metric in proptest::sample::select(Metric::ALL),
        picks in proptest::collection::vec((any::<bool>(), 0.0..=1.0f64, any::<bool>()), 8),
    ) {
        // Every required field, and each other one when picked, anywhere in its range; the
        // ends and -0 included.
        let values: Vec<(&str, f64)> = metric
            .fields()
            .iter()
            .zip(&picks)
            .filter(|(spec, (keep, _, _))| spec.required || *keep)
            .map(|(spec, (_, at, end))| {
                let value = match (*at, *end) {
                    (at, true) if at < 0.5 => spec.min,
                    (_, true) => spec.max,
                    (at, false) => spec.min + (spec.max - spec.min) * at,
                };
                (spec.name, if value == 0.0 && *end { -0.0 } else { value })
            })
            .collect();
        prop_assume!(!values.is_empty());
        let reading = Reading::known(metric, TIME, TIME, values.clone()).expect("in range");
        let (rider, device) = (RiderId::parse("alice").expect("id"), DeviceId::parse("phone").expect("id"));
        let mut out = Vec::new();
        encode(&reading, Origin { rider: &rider, device: &device, source: "json" }, &mut out);
        let written = String::from_utf8(out).expect("UTF-8");
        let back = parse_line(written.trim_end()).map_err(|e| TestCaseError::fail(format!("{written:?}: {e}")))?;
        prop_assert_eq!(back.measurement.as_ref(), metric.name());
        let got: Vec<(String, u64)> = back
            .fields
            .iter()
            .map(|f| match f.value {
                Value::Float(v, _) => Ok((f.key.to_string(), v.to_bits())),
                ref other => Err(TestCaseError::fail(format!("{other:?} is not a float: {written}"))),
            })
            .collect::<Result<_, _>>()?;
        let want: Vec<(String, u64)> = values.iter().map(|(k, v)| ((*k).to_owned(), v.to_bits())).collect();
        prop_assert_eq!(got, want, "{}", written);
        prop_assert_eq!(back.timestamp, Some(TIME));
    }
}
