//! A whole `/write` body through the collector's line-protocol path (parse, validate,
//! normalise known measurements, encode for the log): it never panics, counts every line as
//! good or bad, and everything it would log parses back, one good line each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_collector::ingest::lineproto::parse;
use velometry_collector::ingest::Ages;
use velometry_core::lineproto::parse::parse_line;
use velometry_fuzz::{Tagged, NOW};

fuzz_target!(|data: &[u8]| {
    let Some((&precision, body)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(body) else { return };
    let multiplier =
        [1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000][usize::from(precision) % 6];
    let tagged = Tagged::new();
    let ages = Ages { live_oldest: Some(NOW - 600_000_000_000), late_before: NOW - 300_000_000_000 };
    let parsed = parse(text, multiplier, NOW, tagged.origin("lineproto"), ages);
    let logged = std::str::from_utf8(&parsed.lines).expect("the log gets UTF-8");
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), parsed.count, "one logged line per good line");
    for line in lines {
        let back = parse_line(line).unwrap_or_else(|e| panic!("logged {line:?} does not parse: {e}"));
        assert!(back.timestamp.is_some(), "every logged line has its time fixed: {line:?}");
    }
    assert_eq!(parsed.bad > 0, parsed.first_error.is_some());
});
