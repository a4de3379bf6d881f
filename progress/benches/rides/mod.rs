//! What the progress benchmarks share: simulated rides on generated courses.

use velometry_collector::simulate::course::{ride, Ride, RideOptions};
use velometry_core::course::Course;
use velometry_core::time::Nanos;
use velometry_progress::{Fix, Input};

/// A second, in nanoseconds.
pub const S: Nanos = 1_000_000_000;
/// 2026-07-01T14:00:00Z: morning in California, where the winding courses start.
pub const START: Nanos = 1_782_914_400 * S;

/// A simulated ride of `course` with a fix every `every_s`.
pub fn simulated(course: &Course, seed: u64, every_s: u32) -> Ride {
    let mut options = RideOptions::new(seed, START);
    options.fix_every_s = every_s;
    ride(course, &options)
}

/// The engine's inputs for a ride.
pub fn inputs(ride: &Ride) -> Vec<Input> {
    ride.fixes
        .iter()
        .map(|f| Input::Fix(Fix::new(f.time, f.lat, f.lon, Some(f.speed), Some(f.heading)).expect("a fix")))
        .collect()
}
