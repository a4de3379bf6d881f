//! `POST /v1/readings` bodies: any JSON value through the reading parser never panics, and
//! every reading it accepts encodes to a line that parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use velometry_collector::ingest::json::parse_reading;
use velometry_fuzz::{check_reading, Tagged, NOW};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let tagged = Tagged::new();
    for item in &items {
        if let Ok(reading) = parse_reading(item, NOW) {
            check_reading(&reading, &tagged);
        }
    }
});
