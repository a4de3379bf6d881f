//! The shared Garmin rides (`$VELOMETRY_RIDES/fit`, read in place by the collector's import
//! reader) replayed against a course made from the same fixes: progress is the ride's own
//! distance.
//!
//! The tolerance: the course drops repeated points, so the course's distance at a fix and
//! the sum of the steps between fixes are the same sum; what remains is matching, which
//! projects each fix onto the segments around it: under 5 m at the median and 25 m at the
//! 99th percentile, and under 100 m at worst, where a stopped device's jitter made the
//! recording (and so the course) double back on itself by tens of metres and a fix matches
//! the nearer strand of the knot. Against the device's own distance (wheel
//! sensor or its smoothed GPS) the final figure agrees within 3 %, the gap between two ways
//! of measuring one ride.

use velometry_collector::import::files;
use velometry_core::course::Course;
use velometry_core::geo::haversine_m;
use velometry_core::reading::Metric;
use velometry_core::testkit;
use velometry_core::time::now_nanos;
use velometry_progress::{Config, Engine, Fix, Input, Plan, RiderState};

use crate::helpers::{median, quantile};

#[test]
fn garmin_rides_progress_is_their_own_distance() {
    let Some(dir) = testkit::rides("fit") else { return };
    let mut tried = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("the rides folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "fit"))
        .collect();
    paths.sort();
    for path in paths {
        let file = files::read(&path, now_nanos()).expect("a ride file");
        let fixes: Vec<Fix> = file.readings.iter().filter_map(Fix::from_reading).collect();
        if fixes.len() < 100 {
            // An indoor ride or a few seconds: nothing to follow.
            continue;
        }
        tried += 1;
        let course = Course::new(fixes.iter().map(|f| (f.lat, f.lon, None))).expect("a course");
        let length = course.length_m();
        let plan = Plan::new(course, Vec::new()).expect("a plan");
        let config = Config::default();
        let engine = Engine::new(&plan, &config);
        let inputs: Vec<Input> = fixes.iter().copied().map(Input::Fix).collect();
        let (state, outputs) = engine.replay(RiderState::default(), &inputs).expect("in order");
        // The ride's own distance at each fix: the steps between fixes, summed.
        let mut own = 0.0;
        let mut errors = Vec::new();
        let mut previous: Option<&Fix> = None;
        for (fix, out) in fixes.iter().zip(&outputs) {
            if let Some(p) = previous {
                own += haversine_m(p.lat, p.lon, fix.lat, fix.lon);
            }
            previous = Some(fix);
            if let Some(progress) = out.progress {
                errors.push((progress.current_m - own).abs());
            }
        }
        let (m, p99) = (median(errors.clone()), quantile(errors.clone(), 0.99));
        let worst = errors.iter().copied().fold(0.0, f64::max);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let device = file
            .readings
            .iter()
            .filter(|r| r.metric() == Metric::Distance)
            .filter_map(|r| r.float("meters"))
            .fold(0.0, f64::max);
        println!(
            "{name}: {} fixes, {length:.0} m; error median {m:.1} m, p99 {p99:.1} m, worst {worst:.1} m; \
             device says {device:.0} m",
            fixes.len()
        );
        assert!(m < 5.0 && p99 < 25.0 && worst < 100.0, "{name}: median {m} m, p99 {p99} m, worst {worst} m");
        // Finished once within `finish_m` (50 m) of the end, where progress stops.
        assert!(state.finished().is_some(), "{name}: finished");
        assert!(
            length - state.progress_m() < config.finish_m + 25.0,
            "{name}: {} of {length} m",
            state.progress_m()
        );
        if device > 0.0 {
            assert!((length - device).abs() / device < 0.03, "{name}: {length} m, the device {device} m");
        }
    }
    assert!(tried > 0, "no ride with positions in {}", dir.display());
}
