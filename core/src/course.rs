//! A course: the planned route of a ride or an event, as a polyline with the distance along
//! it at every point. Reading course files is [`files`]; the events that use them live in
//! the riders file; matching fixes to a course lives with the progress service. This is
//! what all of them share.

use crate::geo::haversine_m;

pub mod files;

/// One point of a course.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoursePoint {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Elevation, metres, when the course file gives one.
    pub ele: Option<f64>,
    /// Distance along the course from its start, metres.
    pub distance_m: f64,
}

/// A course: at least two distinct points, in riding order.
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    points: Vec<CoursePoint>,
}

/// Why points do not make a course.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CourseError {
    /// Fewer than two distinct points.
    #[error("a course needs at least two distinct points, this one has {0}")]
    TooShort(usize),
    /// A coordinate outside its range, or not a number.
    #[error("point {index} is not a position: lat {lat}, lon {lon}")]
    BadPoint {
        /// Its index among the points given.
        index: usize,
        /// Its latitude.
        lat: f64,
        /// Its longitude.
        lon: f64,
    },
}

impl Course {
    /// The course through `points` (`(lat, lon, elevation)`, in riding order). Points
    /// repeating the one before are dropped; the distance along the course is the sum of
    /// the great-circle distances between consecutive points.
    ///
    /// # Errors
    /// [`CourseError`] for a point that is no position, or fewer than two distinct points.
    pub fn new(points: impl IntoIterator<Item = (f64, f64, Option<f64>)>) -> Result<Course, CourseError> {
        let mut out: Vec<CoursePoint> = Vec::new();
        for (index, (lat, lon, ele)) in points.into_iter().enumerate() {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(CourseError::BadPoint { index, lat, lon });
            }
            let ele = ele.filter(|e| e.is_finite());
            let distance_m = match out.last() {
                Some(last) if last.lat == lat && last.lon == lon => continue,
                Some(last) => last.distance_m + haversine_m(last.lat, last.lon, lat, lon),
                None => 0.0,
            };
            out.push(CoursePoint { lat, lon, ele, distance_m });
        }
        if out.len() < 2 {
            return Err(CourseError::TooShort(out.len()));
        }
        Ok(Course { points: out })
    }

    /// The points, in riding order.
    pub fn points(&self) -> &[CoursePoint] {
        &self.points
    }

    /// The length of the course, metres.
    pub fn length_m(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.distance_m)
    }

    /// The position (`lat`, `lon`, elevation) at `distance_m` along the course, interpolated
    /// between the points around it; the ends beyond the course.
    pub fn position_at(&self, distance_m: f64) -> (f64, f64, Option<f64>) {
        let i = self.points.partition_point(|p| p.distance_m <= distance_m);
        match (i.checked_sub(1).and_then(|j| self.points.get(j)), self.points.get(i)) {
            (Some(a), Some(b)) => {
                let f = (distance_m - a.distance_m) / (b.distance_m - a.distance_m);
                let lerp = |x: f64, y: f64| x + (y - x) * f;
                let ele = match (a.ele, b.ele) {
                    (Some(x), Some(y)) => Some(lerp(x, y)),
                    (x, y) => x.or(y),
                };
                (lerp(a.lat, b.lat), lerp(a.lon, b.lon), ele)
            }
            (Some(last), None) => (last.lat, last.lon, last.ele),
            (None, Some(first)) => (first.lat, first.lon, first.ele),
            (None, None) => (0.0, 0.0, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::offset;

    #[test]
    fn distances_add_up_and_repeated_points_go() {
        let (lat, lon) = offset(45.0, 7.0, 1_000.0, 0.0);
        let course = Course::new([(45.0, 7.0, Some(100.0)), (45.0, 7.0, None), (lat, lon, Some(200.0))])
            .expect("a course");
        assert_eq!(course.points().len(), 2);
        assert!((course.length_m() - 1_000.0).abs() < 0.01);
        let half = course.length_m() / 2.0;
        let (mid_lat, _, ele) = course.position_at(half);
        assert!((mid_lat - (45.0 + lat) / 2.0).abs() < 1e-9);
        assert!(ele.is_some_and(|e| (e - 150.0).abs() < 1e-9), "{ele:?}");
        assert_eq!(course.position_at(-5.0).0, 45.0);
        assert_eq!(course.position_at(5_000.0).0, lat);
    }

    #[test]
    fn too_few_points_or_no_position_is_said() {
        assert_eq!(Course::new([(45.0, 7.0, None), (45.0, 7.0, None)]), Err(CourseError::TooShort(1)));
        assert!(matches!(
            Course::new([(45.0, 7.0, None), (95.0, 7.0, None)]),
            Err(CourseError::BadPoint { index: 1, .. })
        ));
    }
}
