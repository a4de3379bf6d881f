//! Events: a course ridden by entrants from a start, past checkpoints, as the riders file
//! declares them (`[[event]]`, docs/events.md). Everything here is checked once, when the
//! riders file is read: a checkpoint is a distance along the course, a start and a cut-off
//! are instants, and every entrant is a rider of the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::course::files::Waypoint;
use crate::course::Course;
use crate::geo::METRES_PER_DEGREE;
use crate::ids::{EventId, RiderId};
use crate::time::Nanos;

pub mod ride;
pub mod standings;
pub mod status;
pub mod withdrawn;

/// How far from the course a checkpoint given by position (or a waypoint) may lie: a
/// control at a hotel or a shop just off the route is common; further than this is a
/// mistake in the file.
pub const MAX_CHECKPOINT_OFF_COURSE_M: f64 = 1_000.0;

/// An event, valid: its course read, its checkpoints placed along it in riding order, a
/// start for every entrant.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its id.
    pub id: EventId,
    /// Its display name (the id when none is given).
    pub name: String,
    /// Whether anyone may see the event (its course, checkpoints and standings); a private
    /// one is seen by the viewers that list it.
    pub public: bool,
    /// The course file, as resolved against the riders file's folder.
    pub course_file: PathBuf,
    /// The course. Shared, so that a service can keep it past a reload of the riders file.
    pub course: Arc<Course>,
    /// The course file's waypoints, in file order.
    pub waypoints: Vec<Waypoint>,
    /// The checkpoints, in riding order (strictly increasing distance). The finish is not
    /// one of them unless the file lists it: it is the end of the course.
    pub checkpoints: Vec<Checkpoint>,
    /// The cut-off at the finish, if any.
    pub finish_cutoff: Option<Cutoff>,
    /// The entrants, in file order.
    pub entrants: Vec<Entrant>,
}

/// A rider entered in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrant {
    /// The rider.
    pub rider: RiderId,
    /// Their start: the event's mass start, or their own.
    pub start: Nanos,
}

/// A checkpoint (control) of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its name, unique within the event.
    pub name: String,
    /// Distance along the course, metres.
    pub distance_m: f64,
    /// Latitude of the course at that distance, degrees.
    pub lat: f64,
    /// Longitude of the course at that distance, degrees.
    pub lon: f64,
    /// How far the place given (a position or a waypoint) is from the course, metres; zero
    /// for a checkpoint given by distance.
    pub off_course_m: f64,
    /// When riders must have reached it, if there is a limit.
    pub cutoff: Option<Cutoff>,
}

/// A cut-off: a time of day for everyone, or a time after each rider's own start (as
/// brevets set them, with riders starting in waves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutoff {
    /// An instant.
    At(Nanos),
    /// A duration after the rider's start.
    AfterStart(Duration),
}

impl Cutoff {
    /// The instant it falls at for a rider who started at `start`.
    pub fn for_start(&self, start: Nanos) -> Nanos {
        match *self {
            Cutoff::At(t) => t,
            Cutoff::AfterStart(d) => start.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        }
    }
}

impl Event {
    /// The entrant `rider`, if they ride this event.
    pub fn entrant(&self, rider: &RiderId) -> Option<&Entrant> {
        self.entrants.iter().find(|e| e.rider == *rider)
    }

    /// The length of the course, metres: where the finish is.
    pub fn length_m(&self) -> f64 {
        self.course.length_m()
    }

    /// The finish's index among the checkpoint outcomes (the `checkpoint` tag of the
    /// `checkpoint` measurement): one past the last checkpoint.
    pub fn finish_index(&self) -> usize {
        self.checkpoints.len()
    }
}

/// Where a place meets the course.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// Distance along the course, metres.
    pub distance_m: f64,
    /// How far the place is from the course there, metres.
    pub off_course_m: f64,
}

/// Places `(lat, lon)` on the course: at the first pass of the course near it (within
/// `within_m`) after `after_m` along the course, where that pass comes closest. A pass is a
/// stretch of the course that stays within `within_m` of the place; so on an out-and-back,
/// a loop or a course that crosses itself, a place met twice is placed where it is met after
/// `after_m` (the previous checkpoint), not where it is nearest overall. A pass that comes
/// closest right at `after_m` has the place behind it, and the next pass is taken.
///
/// # Errors
/// The distance from the place to the nearest point of the course after `after_m`, when no
/// pass comes within `within_m`.
pub fn place(course: &Course, lat: f64, lon: f64, after_m: f64, within_m: f64) -> Result<Placed, f64> {
    // Closer than this to `after_m` is "at `after_m`".
    const AT_M: f64 = 0.5;
    let mut pass: Option<Placed> = None;
    let mut nearest = f64::INFINITY;
    for pair in course.points().windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.distance_m <= after_m {
            continue;
        }
        // A plane tangent at `a`: exact enough over one course segment.
        let scale = METRES_PER_DEGREE * a.lat.to_radians().cos();
        let (bx, by) = ((b.lon - a.lon) * scale, (b.lat - a.lat) * METRES_PER_DEGREE);
        let (px, py) = ((lon - a.lon) * scale, (lat - a.lat) * METRES_PER_DEGREE);
        let length = b.distance_m - a.distance_m;
        let from = ((after_m - a.distance_m) / length).clamp(0.0, 1.0);
        let along = bx * bx + by * by;
        let t = if along > 0.0 { ((px * bx + py * by) / along).clamp(from, 1.0) } else { from };
        let off = (px - t * bx).hypot(py - t * by);
        nearest = nearest.min(off);
        if off <= within_m {
            if pass.is_none_or(|p| off < p.off_course_m) {
                pass = Some(Placed { distance_m: a.distance_m + t * length, off_course_m: off });
            }
        } else if let Some(found) = pass.take() {
            if found.distance_m > after_m + AT_M {
                return Ok(found);
            }
        }
    }
    pass.filter(|p| p.distance_m > after_m + AT_M).ok_or(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::offset;

    /// An out-and-back: 10 km north, then back south 200 m east of the way out.
    fn out_and_back() -> Course {
        let mut points = Vec::new();
        for i in 0..=100 {
            let (lat, lon) = offset(45.0, 7.0, i as f64 * 100.0, 0.0);
            points.push((lat, lon, None));
        }
        for i in (0..=100).rev() {
            let (lat, lon) = offset(45.0, 7.0, i as f64 * 100.0, 200.0);
            points.push((lat, lon, None));
        }
        Course::new(points).expect("a course")
    }

    #[test]
    fn a_place_met_twice_is_placed_on_the_pass_after_the_previous_checkpoint() {
        let course = out_and_back();
        let (lat, lon) = offset(45.0, 7.0, 3_000.0, 100.0);
        let out = place(&course, lat, lon, 0.0, 1_000.0).expect("near the course");
        assert!((out.distance_m - 3_000.0).abs() < 1.0, "{out:?}");
        assert!((out.off_course_m - 100.0).abs() < 0.5, "{out:?}");
        let back = place(&course, lat, lon, 10_000.0, 1_000.0).expect("near the course");
        let want = 10_000.0 + 200.0 + 7_000.0;
        assert!((back.distance_m - want).abs() < 1.0, "{back:?} is not at {want}");
        let (far_lat, far_lon) = offset(45.0, 7.0, 3_000.0, 5_000.0);
        let nearest = place(&course, far_lat, far_lon, 0.0, 1_000.0).unwrap_err();
        assert!((nearest - 4_800.0).abs() < 5.0, "{nearest}");
    }

    #[test]
    fn a_place_behind_the_previous_checkpoint_is_placed_on_a_later_pass() {
        let course = out_and_back();
        let (lat, lon) = offset(45.0, 7.0, 2_000.0, 0.0);
        let placed = place(&course, lat, lon, 2_500.0, 1_000.0).expect("met on the way back");
        assert!((placed.distance_m - 18_200.0).abs() < 1.0, "{placed:?}");
        let ahead = place(&course, lat, lon, 1_800.0, 1_000.0).expect("just ahead");
        assert!((ahead.distance_m - 2_000.0).abs() < 1.0, "{ahead:?}");
    }

    #[test]
    fn cutoffs_fall_at_an_instant_or_after_each_start() {
        assert_eq!(Cutoff::At(5).for_start(100), 5);
        assert_eq!(Cutoff::AfterStart(Duration::from_secs(2)).for_start(100), 2_000_000_100);
    }
}
