//! OwnTracks bodies (`POST /v1/owntracks`): one message or an array, encrypted or not. Any
//! JSON never panics the parser, every reading it gives is valid, and every message it
//! cannot store is dead-lettered with its reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use velometry_collector::ingest::owntracks::parse;
use velometry_fuzz::device::{check_fixes, key, registry};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let registry = registry();
    check_fixes(&parse(&value, key(&registry)));
    check_fixes(&parse(&value, None));
});
