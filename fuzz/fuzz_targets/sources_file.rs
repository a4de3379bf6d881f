//! The sources file of the scheduled pollers (TOML): any text is either sources or an error
//! naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_collector::sources::parse;
use velometry_fuzz::device::registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse("sources.toml", text, &registry()) {
        Ok(_) => {}
        Err(e) => assert!(e.starts_with("sources.toml: "), "{e}"),
    }
});
