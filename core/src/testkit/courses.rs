//! Courses for tests, benchmarks and examples, made by the project's own code: never a file
//! copied from elsewhere.
//!
//! Generated courses are each built to trap a naive matcher: an out-and-back (the same road
//! both ways), a loop whose finish is its start, a figure-eight that crosses itself, a
//! course that comes back on a parallel road 200 m away, and winding courses of any length
//! (the TransAm-scale one has 100,000+ points). Every course has a hilly elevation profile,
//! so that speeds and ETAs depend on gradient. The same arguments give the same course.
//! Course files are written from points as route planners write them (GPX, with the `gpx`
//! crate).

use std::f64::consts::{PI, TAU};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::course::files::{to_gpx, Waypoint};
use crate::course::Course;
use crate::geo::offset;

/// Where the generated courses start: the Alps' foothills, far from the antimeridian and
/// the poles.
const ORIGIN: (f64, f64) = (45.0, 7.0);

/// Metres between consecutive points of a generated course, as a route planner exports them.
const STEP_M: f64 = 60.0;

/// Elevation along a course: a few long waves, so gradients stay within what roads have
/// (under 8 %).
fn elevation(rng: &mut StdRng) -> impl Fn(f64) -> f64 {
    let waves: Vec<(f64, f64, f64)> = (0..4)
        .map(|k| {
            let wavelength = rng.random_range(8_000.0..60_000.0) * (1.0 + f64::from(k));
            // Amplitude × 2π / wavelength is the steepest gradient of the wave: at most 2 %
            // each, so at most 8 % together.
            let amplitude = rng.random_range(0.3..1.0) * 0.02 * wavelength / TAU;
            (wavelength, amplitude, rng.random_range(0.0..TAU))
        })
        .collect();
    move |d: f64| 400.0 + waves.iter().map(|(w, a, p)| a * (TAU * d / w + p).sin()).sum::<f64>()
}

/// Builds a course from local `(north, east)` metres around [`ORIGIN`], with elevations
/// from `profile` by the distance along the polyline.
fn from_local(points: &[(f64, f64)], profile: impl Fn(f64) -> f64) -> Course {
    let mut along = 0.0;
    let mut out = Vec::with_capacity(points.len());
    for (i, &(n, e)) in points.iter().enumerate() {
        if i > 0 {
            let (pn, pe) = points[i - 1];
            along += ((n - pn).powi(2) + (e - pe).powi(2)).sqrt();
        }
        let (lat, lon) = offset(ORIGIN.0, ORIGIN.1, n, e);
        out.push((lat, lon, Some(profile(along))));
    }
    // The generators give at least two distinct points, all on the plane near ORIGIN.
    Course::new(out).expect("a generated course is a course")
}

/// Points every [`STEP_M`] along a parametric curve `f(u)`, `u` in `[0, 1]`.
fn sample(f: impl Fn(f64) -> (f64, f64), approx_len_m: f64) -> Vec<(f64, f64)> {
    let n = (approx_len_m / STEP_M).ceil().max(2.0) as usize;
    (0..=n).map(|i| f(i as f64 / n as f64)).collect()
}

/// A road 40 km east with gentle bends, a turn, and the same road back: 80 km, start and
/// finish at the same place, every point of the way out also on the way back.
pub fn out_and_back(seed: u64) -> Course {
    let mut rng = StdRng::seed_from_u64(seed);
    let bend = rng.random_range(300.0..900.0);
    let out = sample(|u| (bend * (u * 5.0 * PI).sin(), 40_000.0 * u), 40_000.0);
    let mut points = out.clone();
    points.extend(out.iter().rev().skip(1));
    from_local(&points, elevation(&mut rng))
}

/// A loop of about 60 km whose last point is its first.
pub fn loop_course(seed: u64) -> Course {
    let mut rng = StdRng::seed_from_u64(seed);
    let wobble = rng.random_range(0.03..0.1);
    let r = 60_000.0 / TAU;
    let points = sample(
        |u| {
            let a = TAU * u;
            let rr = r * (1.0 + wobble * (3.0 * a).sin());
            // Starts at (0, 0): the circle's centre sits one radius north.
            (r - rr * a.cos(), rr * a.sin())
        },
        60_000.0,
    );
    from_local(&points, elevation(&mut rng))
}

/// A figure-eight of about 75 km (two lobes of 12 km across) that crosses itself at its
/// start, halfway, and back at the start again.
pub fn figure_eight(seed: u64) -> Course {
    let mut rng = StdRng::seed_from_u64(seed);
    let a = 12_000.0;
    // Gerono's lemniscate: crosses at the origin at u = 0, 1/2 and 1.
    let points = sample(
        |u| {
            let t = TAU * u;
            (a * (2.0 * t).sin() / 2.0, a * t.sin())
        },
        75_000.0,
    );
    from_local(&points, elevation(&mut rng))
}

/// 30 km east on one road, a 200 m connector north, and 30 km back west on a parallel road
/// 200 m from the first: a fix on either road is 200 m from the other.
pub fn parallel_roads(seed: u64) -> Course {
    let mut rng = StdRng::seed_from_u64(seed);
    let length = 30_000.0;
    let mut points = sample(|u| (0.0, length * u), length);
    points.extend(sample(|u| (200.0 * u, length), 200.0).into_iter().skip(1));
    points.extend(sample(|u| (200.0, length * (1.0 - u)), length).into_iter().skip(1));
    from_local(&points, elevation(&mut rng))
}

/// A winding road of `length_m` heading broadly east, a point every 60 m: 6,800 km gives a
/// TransAm-scale course of 113,000 points. The bends keep it from crossing itself.
pub fn winding(seed: u64, length_m: f64) -> Course {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = (length_m / STEP_M).ceil() as usize;
    let mut points = Vec::with_capacity(n + 1);
    let (mut north, mut east, mut heading) = (0.0_f64, 0.0_f64, 0.0_f64);
    points.push((north, east));
    for _ in 0..n {
        // Heading in radians from east, wandering, pulled back toward east so the road
        // never turns on itself.
        heading += rng.random_range(-0.08..0.08) - 0.02 * heading;
        heading = heading.clamp(-1.2, 1.2);
        north += STEP_M * heading.sin();
        east += STEP_M * heading.cos();
        points.push((north, east));
    }
    // Over thousands of kilometres the tangent plane at ORIGIN is far from the sphere; lay
    // the road out step by step instead, each step on the plane at the point before.
    let profile = elevation(&mut rng);
    let mut out = Vec::with_capacity(points.len());
    let (mut lat, mut lon) = (38.0, -122.0);
    let mut along = 0.0;
    for (i, &(n, e)) in points.iter().enumerate() {
        if i > 0 {
            let (pn, pe) = points[i - 1];
            (lat, lon) = offset(lat, lon, n - pn, e - pe);
            along += ((n - pn).powi(2) + (e - pe).powi(2)).sqrt();
        }
        out.push((lat, lon, Some(profile(along))));
    }
    Course::new(out).expect("a generated course is a course")
}

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
    let radius = 60_000.0 / TAU;
    let steps = 600;
    for i in 0..=steps {
        let angle = TAU * f64::from(i) / f64::from(steps);
        let north = radius * angle.sin();
        let east = radius * (1.0 - angle.cos());
        let (lat, lon) = offset(lat0, lon0, north, east);
        // Up to the pass at km 10 and down by km 20, then flat.
        let x = f64::from(i) / 200.0;
        let climb = if x < 1.0 { (PI * x).sin() } else { 0.0 };
        let ele = 240.0 + 900.0 * climb.powi(2);
        // Rounded as planners write them: a centimetre of position, a decimetre of height.
        let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
        points.push((round(lat, 7), round(lon, 7), Some(round(ele, 1))));
    }
    let waypoint = |i: usize, name| (name, points[i].0, points[i].1);
    let waypoints = [waypoint(60, "CP1 Valley"), waypoint(100, "Pass"), waypoint(400, "CP2 Lake")];
    course_gpx("Velometry example loop", &points, &waypoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::haversine_m;

    #[test]
    fn each_course_has_its_trap() {
        let ob = out_and_back(1);
        let (first, last) = (ob.points()[0], *ob.points().last().expect("points"));
        assert!((ob.length_m() - 80_000.0).abs() < 3_000.0, "{}", ob.length_m());
        assert!(haversine_m(first.lat, first.lon, last.lat, last.lon) < 1.0);

        let lp = loop_course(1);
        let (first, last) = (lp.points()[0], *lp.points().last().expect("points"));
        assert!(haversine_m(first.lat, first.lon, last.lat, last.lon) < 1.0);

        let eight = figure_eight(1);
        let (a, b, _) = eight.position_at(0.0);
        let (c, d, _) = eight.position_at(eight.length_m() / 2.0);
        assert!(haversine_m(a, b, c, d) < 30.0, "crosses itself halfway");

        let par = parallel_roads(1);
        let (a, b, _) = par.position_at(10_000.0);
        let (c, d, _) = par.position_at(par.length_m() - 10_000.0);
        assert!((haversine_m(a, b, c, d) - 200.0).abs() < 5.0);

        let long = winding(1, 6_800_000.0);
        assert!(long.points().len() > 100_000 && (long.length_m() - 6_800_000.0).abs() < 1_000.0);
        for c in [&ob, &lp, &eight, &par, &long] {
            let steepest = c
                .points()
                .windows(2)
                .map(|w| {
                    (w[1].ele.unwrap_or(0.0) - w[0].ele.unwrap_or(0.0)).abs()
                        / (w[1].distance_m - w[0].distance_m)
                })
                .fold(0.0, f64::max);
            assert!(steepest < 0.09, "{steepest}");
        }
    }
}
