//! The line-protocol scanner (`velometry_core::lineproto::parse`) on any text: it never
//! panics, and what it reads has a measurement, at least one field, and keys that are not
//! empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_core::lineproto::parse::parse_line;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(line) = text.lines().next() else { return };
    if let Ok(parsed) = parse_line(line) {
        assert!(!parsed.measurement.is_empty(), "{line:?}");
        assert!(!parsed.fields.is_empty(), "{line:?}");
        assert!(parsed.tags.iter().all(|(k, v)| !k.is_empty() && !v.is_empty()), "{line:?}");
        assert!(parsed.fields.iter().all(|(k, _)| !k.is_empty()), "{line:?}");
    }
});
