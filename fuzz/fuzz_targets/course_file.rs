//! The course file of an event (GPX, TCX or FIT, gzipped or not), as the riders file's
//! events read it: any bytes never panic the reader, and a course it gives has at least two
//! points, in range, with the distance along it never going back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_core::course::files::read_bytes;

fuzz_target!(|data: &[u8]| {
    let gz = if data.starts_with(&[0x1f, 0x8b]) { ".gz" } else { "" };
    for format in ["gpx", "tcx", "fit"] {
        let Ok(file) = read_bytes(&format!("course.{format}{gz}"), data) else { continue };
        let points = file.course.points();
        assert!(points.len() >= 2, "a course of {} points", points.len());
        assert!(points.windows(2).all(|w| w[0].distance_m <= w[1].distance_m), "distance went back");
        assert!(file.course.length_m().is_finite());
        for p in points.iter().map(|p| (p.lat, p.lon)).chain(file.waypoints.iter().map(|w| (w.lat, w.lon))) {
            assert!((-90.0..=90.0).contains(&p.0) && (-180.0..=180.0).contains(&p.1), "{p:?}");
        }
    }
});
