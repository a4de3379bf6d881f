//! The riders file (TOML) every service reads: any text is either a registry or an error
//! that says what is wrong; a registry's every rider and device token can be looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_core::riders::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Registry::parse(text) {
        Ok(registry) => {
            for rider in registry.riders() {
                assert!(registry.rider(&rider.id).is_some());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
