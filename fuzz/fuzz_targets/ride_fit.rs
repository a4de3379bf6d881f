//! `collector import` of a FIT file, gzipped or not: any bytes never panic the reader, and
//! every reading it gives is valid and sorted by time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_fuzz::ride::check_file;

fuzz_target!(|data: &[u8]| check_file("ride.fit", data));
