use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use velometry_core::ids::{DeviceId, RiderId};
use velometry_core::lineproto::parse::{parse_line, parse_line_with, FieldType, Options, Value};
use velometry_core::lineproto::{encode_known, lines, FieldRef, OriginTags};
use velometry_core::reading::Metric;

use super::line::plain_float;
use super::*;
use crate::field_types::{FieldTypes, TypeSet};

const NOW: Nanos = 1_764_237_600_000_000_000;

fn ids() -> (RiderId, DeviceId) {
    (RiderId::parse("alice").expect("valid"), DeviceId::parse("edge").expect("valid"))
}

fn run_with(types: &FieldTypes, text: &str, multiplier: i64, live_oldest: Option<Nanos>) -> Parsed {
    let ages = Ages { live_oldest, late_before: NOW - 300_000_000_000 };
    let (rider, device) = ids();
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    let request = Request { multiplier, now: NOW, origin, ages };
    types.check(|checker| parse(text.as_bytes(), request, checker)).0
}

fn run(text: &str, multiplier: i64, live_oldest: Option<Nanos>) -> Parsed {
    run_with(&FieldTypes::in_memory(), text, multiplier, live_oldest)
}

fn output(parsed: &Parsed) -> String {
    String::from_utf8(parsed.lines.clone()).expect("utf8")
}

/// The reason the first bad line was refused.
fn reason(parsed: &Parsed) -> &str {
    let first = parsed.first_error.as_deref().unwrap_or_default();
    first.split_once("): ").map_or(first, |(_, reason)| reason)
}

#[test]
fn normalises_known_fields_and_keeps_unknown_measurements() {
    let text =
        "heart_rate,rider=bob bpm=142i 1764237600\n# a comment\n\ncpu,host=a usage=1i,ok=t 1764237600\n";
    let parsed = run(text, 1_000_000_000, None);
    assert_eq!(parsed.bad, 0, "{:?}", parsed.first_error);
    assert_eq!(parsed.count, 2);
    assert_eq!(
        output(&parsed),
        "heart_rate,device=edge,rider=alice,source=lineproto bpm=142 1764237600000000000\n\
         cpu,device=edge,host=a,rider=alice,source=lineproto usage=1i,ok=t 1764237600000000000\n"
    );
}

#[test]
fn keeps_good_lines_and_reports_the_first_bad_one() {
    let text = "gps lat=95,lon=7 1764237600\nheart_rate bpm=120 1764237600\nnot line protocol\n";
    let parsed = run(text, 1_000_000_000, None);
    assert_eq!((parsed.count, parsed.bad), (1, 2));
    let first = parsed.first_error.expect("an error");
    assert!(
        first.starts_with("unable to parse 'gps lat=95,lon=7 1764237600' (line 1): lat 95 is out of range"),
        "{first}"
    );
}

#[test]
fn floats_are_copied_as_written_when_influxdb_reads_them_the_same() {
    let parsed = run(&format!("gps lat=45.100,lon=7.6e0,alt=+12.5,speed=.5 {NOW}"), 1, None);
    assert_eq!(
        output(&parsed),
        format!(
            "gps,device=edge,rider=alice,source=lineproto lat=45.100,lon=7.6e0,alt=12.5,speed=0.5 {NOW}\n"
        )
    );
    assert_eq!(plain_float("1e5"), Some("1e5"));
    assert_eq!(plain_float("+1"), None);
    assert_eq!(plain_float(".5"), None);
}

#[test]
fn fields_copied_as_written_give_the_line_encoding_each_part_gives() {
    let (rider, device) = ids();
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    for line in [
        format!("gps lat=45.1,lon=-7.6e0,alt=250,speed=8.25,heading=359.9,accuracy=3 {NOW}"),
        format!("heart_rate bpm=142 {NOW}"),
        format!("power watts=250.5  {NOW}"),
        format!("temperature celsius=-3.5E-1 {NOW}"),
    ] {
        let copied = run(&line, 1, None);
        assert_eq!(copied.bad, 0, "{line}: {:?}", copied.first_error);
        let parts = parse_line(&line).expect("line protocol");
        let mut encoded = Vec::new();
        let fields = parts.fields.iter().map(|f| match &f.value {
            Value::Float(_, text) => (f.key.as_ref(), FieldRef::FloatText(text)),
            other => panic!("{other:?}"),
        });
        encode_known(&parts.measurement, &parts.tags, &OriginTags::new(origin), fields, NOW, &mut encoded);
        assert_eq!(String::from_utf8(copied.lines), String::from_utf8(encoded), "{line}");
    }
}

#[test]
fn a_missing_timestamp_is_fixed_at_ingest_cut_to_the_precision() {
    let parsed = run("power watts=250.5", 1, None);
    assert_eq!(
        output(&parsed),
        format!("power,device=edge,rider=alice,source=lineproto watts=250.5 {NOW}\n")
    );
    let now = NOW + 123_456_789;
    let (rider, device) = ids();
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    let ages = Ages { live_oldest: None, late_before: 0 };
    let request = Request { multiplier: 1_000_000_000, now, origin, ages };
    let parsed = parse(b"power watts=1", request, &mut FieldTypes::in_memory().checker());
    assert!(
        output(&parsed).ends_with(&format!(" {NOW}\n")),
        "as InfluxDB, cut to the second: {}",
        output(&parsed)
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
fn event_status_is_no_device_s_to_write() {
    let parsed = run("event_status event=1,state=0", 1, None);
    assert_eq!(parsed.count, 0);
    assert_eq!(
        reason(&parsed),
        "event_status is recorded by an event's organisers (`collector event scratch`), not with a device token"
    );
}

#[test]
fn only_recent_live_metrics_are_kept_for_live() {
    let text = format!(
        "gps lat=1,lon=2 {NOW}\npower watts=100 {NOW}\ntemperature celsius=20 {NOW}\nheart_rate bpm=90 {}\n",
        NOW - 1000
    );
    let parsed = run(&text, 1, Some(NOW - 10));
    assert_eq!(parsed.count, 4);
    // The fresh gps and power; not the temperature (never live), nor the old heart rate.
    assert_eq!(parsed.live.len(), 2);
    assert_eq!(parsed.live[0].float("lat"), Some(1.0));
    assert_eq!(parsed.live[1].float("watts"), Some(100.0));
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

#[test]
fn what_influxdb_refuses_when_it_stores_is_refused_here_with_its_reason() {
    let refused = |line: &str| {
        let parsed = run(&format!("{line}\nok f=1 {NOW}"), 1, None);
        assert_eq!((parsed.count, parsed.bad), (1, 1), "{line}: {:?}", parsed.first_error);
        reason(&parsed).to_owned()
    };
    assert_eq!(
        refused(&format!("m,time=a f=1 {NOW}")),
        "invalid tag key: input tag \"time\" on measurement \"m\" is invalid"
    );
    assert_eq!(
        refused(&format!("m time=1 {NOW}")),
        "invalid field name: input field \"time\" on measurement \"m\" is invalid"
    );
    assert_eq!(refused(&format!("m,t=a,t=b f=1 {NOW}")), "duplicate tags");
    assert_eq!(refused(&format!("m,t=\\\\ f=1 {NOW}")), "invalid tag format");
    assert_eq!(
        refused(&format!("m f=1u {NOW}")),
        "invalid number",
        "InfluxDB 1.x, or a version not yet known"
    );
    assert_eq!(
        refused(&format!("m f=1i,f=2.5 {NOW}")),
        "field type conflict: input field \"f\" on measurement \"m\" is type float, already exists as type integer"
    );
    let long = "m".repeat(MAX_KEY - 40);
    assert!(
        refused(&format!("{long} f=1 {NOW}")).starts_with("max key length exceeded: 65536 > 65535"),
        "the collector's tags count"
    );
    assert!(parse_line(&format!("{long} f=1 {NOW}")).is_ok(), "though InfluxDB would take the client's line");
}

const MAX_KEY: usize = velometry_core::lineproto::parse::MAX_KEY_LENGTH;

#[test]
fn field_types_hold_across_lines_requests_and_the_database() {
    let types = FieldTypes::in_memory();
    let first = run_with(&types, &format!("m f=1i {NOW}\nm f=2.5 {}\nm g=t {NOW}", NOW + 1), 1, None);
    assert_eq!((first.count, first.bad), (2, 1));
    assert_eq!(reason(&first), "field type conflict: input field \"f\" on measurement \"m\" is type float, already exists as type integer");
    let second = run_with(&types, &format!("m g=1 {NOW}"), 1, None);
    assert_eq!(reason(&second), "field type conflict: input field \"g\" on measurement \"m\" is type float, already exists as type boolean");

    // What the database holds wins; a measurement it does not list is forgotten once stored.
    let answer = HashMap::from([
        ("m".to_owned(), HashMap::from([("f".to_owned(), TypeSet::of(FieldType::String))])),
        ("heart_rate".to_owned(), HashMap::from([("bpm".to_owned(), TypeSet::of(FieldType::Integer))])),
    ]);
    types.refreshed(answer, u64::MAX, Some("2.7.1".into()));
    assert_eq!(types.of("m"), [("f".to_owned(), TypeSet::of(FieldType::String))]);
    let third = run_with(&types, &format!("m f=\"x\",u=1u {NOW}\nheart_rate bpm=60 {NOW}"), 1, None);
    assert_eq!((third.count, third.bad), (1, 1), "unsigned integers on InfluxDB 2: {:?}", third.first_error);
    assert_eq!(reason(&third), "field type conflict: input field \"bpm\" on measurement \"heart_rate\" is type float, already exists as type integer");
}

#[test]
fn a_field_twice_with_two_types_creates_the_first_as_influxdb_does() {
    let types = FieldTypes::in_memory();
    let parsed = run_with(&types, &format!("m a=1,f=1i,f=2.5,z=t {NOW}"), 1, None);
    assert_eq!(parsed.bad, 1);
    assert_eq!(
        types.of("m"),
        [("a".to_owned(), TypeSet::of(FieldType::Float)), ("f".to_owned(), TypeSet::of(FieldType::Integer))]
    );
}

#[test]
fn lines_influxdb_stores_and_the_collector_used_to_refuse() {
    let body = format!("  m,t=a f=1 {NOW}\nm s=\"line1\nline2\" {NOW}\nm g=-0,h=-0.0 {NOW}\nm f=2\r\n");
    let parsed = run(&body, 1, None);
    assert_eq!(parsed.bad, 0, "{:?}", parsed.first_error);
    assert_eq!(
        output(&parsed),
        format!(
            "m,device=edge,rider=alice,source=lineproto,t=a f=1 {NOW}\n\
             m,device=edge,rider=alice,source=lineproto s=\"line1\nline2\" {NOW}\n\
             m,device=edge,rider=alice,source=lineproto g=-0,h=-0.0 {NOW}\n\
             m,device=edge,rider=alice,source=lineproto f=2 {NOW}\n"
        )
    );
    let mut bad = b"m f=1\nm s=\"\xff\"\nm g=2".to_vec();
    bad.extend_from_slice(b"\n");
    let (rider, device) = ids();
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    let request =
        Request { multiplier: 1, now: NOW, origin, ages: Ages { live_oldest: None, late_before: 0 } };
    let parsed = parse(&bad, request, &mut FieldTypes::in_memory().checker());
    assert_eq!((parsed.count, parsed.bad), (2, 1), "a line that is not UTF-8 costs only itself");
    assert!(reason(&parsed).starts_with("invalid UTF-8 at byte 5"), "{:?}", parsed.first_error);
}

#[test]
fn time_fields_are_dropped_and_leniencies_rewritten() {
    let parsed = run(&format!("m time=1,f=+2i,g=t +{NOW}"), 1, None);
    assert_eq!(output(&parsed), format!("m,device=edge,rider=alice,source=lineproto f=2i,g=t {NOW}\n"));
}

/// A line of random tokens, mostly of the bytes line protocol gives a meaning to.
fn random_line(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "a", "b", "m", "t", "f", "é", "0", "1", "9", "-", "+", ".", "e", "i", "u", " ", ",", "=", "\"", "\\",
        "\t", "time", "rider", "true", "\\\\", "\\,", "\\ ", "\\=", "\\\"", "\n",
    ];
    let token = |rng: &mut StdRng, len: usize| -> String {
        (0..rng.random_range(1..=len)).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
    };
    let value = |rng: &mut StdRng| -> String {
        match rng.random_range(0..6) {
            0 => format!("{}", rng.random_range(-1e6..1e6_f64)),
            1 => format!("{}i", rng.random_range(-1000..1000)),
            2 => ["t", "FALSE", "True"][rng.random_range(0..3)].to_owned(),
            3 => format!("\"{}\"", token(rng, 6)),
            4 => format!("{}u", rng.random_range(0..1000)),
            _ => token(rng, 3),
        }
    };
    let mut line = token(rng, 4);
    for _ in 0..rng.random_range(0..3) {
        line.push(',');
        line.push_str(&token(rng, 3));
        line.push('=');
        line.push_str(&token(rng, 3));
    }
    line.push(' ');
    for i in 0..rng.random_range(1..4) {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&token(rng, 3));
        line.push('=');
        line.push_str(&value(rng));
    }
    if rng.random_bool(0.7) {
        line.push_str(&format!(" {}", NOW + rng.random_range(-1000..1000)));
    }
    line
}

/// Every line the collector takes, InfluxDB reads back from the log as the client's line:
/// the same measurement, tags (with the origin's), fields (without `time`) and time.
#[test]
fn every_line_taken_reads_back_the_same_from_the_log() {
    let mut rng = StdRng::seed_from_u64(14);
    let (mut taken, mut total) = (0, 0);
    for _ in 0..30_000 {
        let line = random_line(&mut rng);
        if lines(line.as_bytes()).count() != 1 {
            continue;
        }
        let parsed = run(&line, 1, None);
        if parsed.count != 1 || parsed.bad != 0 {
            continue;
        }
        total += 1;
        let body = output(&parsed);
        let written: Vec<&[u8]> = lines(body.as_bytes()).filter(|l| !l.is_empty()).collect();
        assert_eq!(written.len(), 1, "{line:?} became {body:?}");
        let text = std::str::from_utf8(written[0]).expect("utf8");
        let back = parse_line(text)
            .unwrap_or_else(|e| panic!("{line:?} was written as {text:?}, which InfluxDB refuses: {e}"));
        let sent = parse_line_with(&line, Options { unsigned: false, multiplier: 1 }).expect("taken");
        assert_eq!(back.measurement, sent.measurement, "{line:?} → {text:?}");
        assert_eq!(back.raw_measurement, sent.raw_measurement, "{line:?} → {text:?}");
        let mut tags: Vec<(String, String)> = sent
            .tags
            .iter()
            .filter(|t| !RESERVED.contains(&t.raw_key()))
            .map(|t| (t.key().into_owned(), t.value().into_owned()))
            .chain(
                RESERVED
                    .iter()
                    .zip(["edge", "alice", "lineproto"])
                    .map(|(k, v)| ((*k).to_owned(), v.to_owned())),
            )
            .collect();
        tags.sort();
        let mut back_tags: Vec<(String, String)> =
            back.tags.iter().map(|t| (t.key().into_owned(), t.value().into_owned())).collect();
        back_tags.sort();
        assert_eq!(back_tags, tags, "{line:?} → {text:?}");
        let fields = |l: &velometry_core::lineproto::parse::Line<'_>| -> Vec<(String, String)> {
            l.fields
                .iter()
                .filter(|f| f.key != "time")
                .map(|f| {
                    let value = match &f.value {
                        Value::Float(v, _) => format!("float {:x}", v.to_bits()),
                        other => format!("{other:?}"),
                    };
                    (f.key.to_string(), value)
                })
                .collect()
        };
        if Metric::from_name(&sent.measurement).is_none() {
            assert_eq!(fields(&back), fields(&sent), "{line:?} → {text:?}");
        }
        assert_eq!(back.timestamp, Some(sent.timestamp.unwrap_or(NOW)), "{line:?} → {text:?}");
        taken += 1;
    }
    assert!(taken > 1_000, "the generator made too few lines the collector takes: {taken} of {total}");
}

const RESERVED: [&str; 3] = ["device", "rider", "source"];

#[test]
fn with_questdb_as_a_second_sink_its_names_and_integers_are_checked_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let types = FieldTypes::open(dir.path().join("field-types.jsonl"), 0, true);
    types.refreshed(HashMap::new(), 0, Some("2.7.1".into()));
    let body =
        format!("m,a.b=1 f=1 {NOW}\nm f-g=1 {NOW}\nm u=18446744073709551615u {NOW}\nm ok=1,u=1u {NOW}");
    let parsed = run_with(&types, &body, 1, None);
    assert_eq!((parsed.count, parsed.bad), (1, 3), "{:?}", parsed.first_error);
    assert!(
        reason(&parsed).starts_with("QuestDB, the second sink, refuses it: "),
        "{:?}",
        parsed.first_error
    );
}
