//! OsmAnd / Traccar Client fixes (`/v1/osmand`): query or form parameters, or Traccar's
//! JSON. Any input never panics the parser, every reading it gives is valid, and a fix it
//! cannot store is dead-lettered with its reason. The first byte picks the variant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_collector::ingest::osmand::{from_json, from_params};
use velometry_fuzz::device::check_fixes;

fuzz_target!(|data: &[u8]| {
    let Some((&variant, rest)) = data.split_first() else { return };
    let (_, fixes) = if variant % 2 == 0 {
        let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(rest) else { return };
        from_params(&params)
    } else {
        let Ok(value) = serde_json::from_slice(rest) else { return };
        from_json(&value)
    };
    if let Ok(fixes) = fixes {
        check_fixes(&fixes);
    }
});
