//! A whole `/write` body through the collector's line-protocol path (cut into lines, parsed
//! with InfluxDB's rules, checked as InfluxDB checks when it stores, known measurements
//! validated, encoded for the log): it never panics, counts every line as good or bad,
//! everything it would log parses back (one good line each, its time fixed), and within the
//! body each field of a measurement keeps one type.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use velometry_collector::field_types::FieldTypes;
use velometry_collector::ingest::lineproto::{parse, Request};
use velometry_collector::ingest::Ages;
use velometry_core::lineproto::lines;
use velometry_core::lineproto::parse::parse_line;
use velometry_fuzz::{Tagged, NOW};

fuzz_target!(|data: &[u8]| {
    let Some((&precision, body)) = data.split_first() else { return };
    let multiplier =
        [1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000][usize::from(precision) % 6];
    let dir = tempfile::tempdir().expect("tempdir");
    let types = FieldTypes::open(dir.path().join("field-types.jsonl"), 0, precision & 0x80 != 0);
    let tagged = Tagged::new();
    let ages = Ages { live_oldest: Some(NOW - 600_000_000_000), late_before: NOW - 300_000_000_000 };
    let request = Request { multiplier, now: NOW, origin: tagged.origin("lineproto"), ages };
    let parsed = parse(body, request, &mut types.checker());
    let mut logged = 0;
    let mut kinds = HashMap::new();
    for raw in lines(&parsed.lines).filter(|l| !l.is_empty()) {
        logged += 1;
        let line = std::str::from_utf8(raw).expect("the log gets UTF-8");
        let back = parse_line(line).unwrap_or_else(|e| panic!("logged {line:?} does not parse: {e}"));
        assert!(back.timestamp.is_some(), "every logged line has its time fixed: {line:?}");
        for field in &back.fields {
            let kind = field.value.field_type();
            let seen = *kinds.entry((back.measurement.to_string(), field.key.to_string())).or_insert(kind);
            assert_eq!(seen, kind, "two types for one field in one body: {line:?}");
        }
    }
    assert_eq!(logged, parsed.count, "one logged line per good line");
    assert_eq!(parsed.bad > 0, parsed.first_error.is_some());
});
