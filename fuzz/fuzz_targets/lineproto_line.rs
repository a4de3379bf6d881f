//! The line-protocol parser (`velometry_core::lineproto::parse`, InfluxDB 1.x's rules) on any
//! line: it never panics, and what it reads has a measurement, at least one field, and tags
//! and fields whose keys are not empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_core::lineproto::lines;
use velometry_core::lineproto::parse::parse_line;

fuzz_target!(|data: &[u8]| {
    let Some(raw) = lines(data).next() else { return };
    let Ok(line) = std::str::from_utf8(raw) else { return };
    if let Ok(parsed) = parse_line(line) {
        assert!(!parsed.measurement.is_empty(), "{line:?}");
        assert!(!parsed.fields.is_empty(), "{line:?}");
        assert!(parsed.tags.iter().all(|t| !t.key().is_empty() && !t.value().is_empty()), "{line:?}");
    }
});
