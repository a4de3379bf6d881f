//! Course files for tests and examples, written as route planners write them (GPX, with the
//! `gpx` crate) from points made by the project's own code: never a file copied from
//! elsewhere.

use std::path::Path;

use crate::course::files::{to_gpx, Waypoint};
use crate::course::Course;
use crate::geo::offset;

/// The GPX of a course through `points` (`(lat, lon, elevation)`, in riding order) with
/// `waypoints` (`(name, lat, lon)`).
///
/// # Panics
/// When the points make no course (fewer than two distinct positions, or one out of range):
/// a test's own mistake.
pub fn course_gpx(name: &str, points: &[(f64, f64, Option<f64>)], waypoints: &[(&str, f64, f64)]) -> String {
    let course = Course::new(points.iter().copied()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let waypoints: Vec<Waypoint> = waypoints
        .iter()
        .map(|(n, lat, lon)| Waypoint { name: (*n).to_owned(), lat: *lat, lon: *lon })
        .collect();
    let bytes = to_gpx(name, &course, &waypoints).unwrap_or_else(|e| panic!("{name}: {e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: the GPX writer wrote no UTF-8: {e}"))
}

/// Writes [`course_gpx`] to `path`.
///
/// # Errors
/// When the file cannot be written.
pub fn write_course_gpx(
    path: &Path,
    name: &str,
    points: &[(f64, f64, Option<f64>)],
    waypoints: &[(&str, f64, f64)],
) -> super::Result<()> {
    std::fs::write(path, course_gpx(name, points, waypoints)).map_err(|e| format!("{}: {e}", path.display()))
}

/// The example course of `deploy/events/` (docs/events.md): a 60 km loop from a town in the
/// Piedmont foothills, up 900 m to a pass at km 10, down and round the plain back to the
/// same square, one point every 100 m, with three waypoints (a control on the climb, the
/// pass, a control at km 40). Made here, so the example never holds a file of unknown origin.
pub fn example_course_gpx() -> String {
    let (lat0, lon0) = (45.0703, 7.6869);
    let mut points = Vec::new();
    // A loop of 60 km: a circle of radius 60 / 2π km, ridden clockwise from its west side.
    let radius = 60_000.0 / std::f64::consts::TAU;
    let steps = 600;
    for i in 0..=steps {
        let angle = std::f64::consts::TAU * f64::from(i) / f64::from(steps);
        let north = radius * angle.sin();
        let east = radius * (1.0 - angle.cos());
        let (lat, lon) = offset(lat0, lon0, north, east);
        // Up to the pass at km 10 and down by km 20, then flat.
        let x = f64::from(i) / 200.0;
        let climb = if x < 1.0 { (std::f64::consts::PI * x).sin() } else { 0.0 };
        let ele = 240.0 + 900.0 * climb.powi(2);
        // Rounded as planners write them: a centimetre of position, a decimetre of height.
        let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
        points.push((round(lat, 7), round(lon, 7), Some(round(ele, 1))));
    }
    let waypoint = |i: usize, name| (name, points[i].0, points[i].1);
    let waypoints = [waypoint(60, "CP1 Valley"), waypoint(100, "Pass"), waypoint(400, "CP2 Lake")];
    course_gpx("Velometry example loop", &points, &waypoints)
}
