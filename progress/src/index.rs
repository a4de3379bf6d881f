//! The course prepared for matching: every segment in Earth-centred Cartesian coordinates
//! (metres), the distance along the course at its ends, and an R*-tree over the segments.
//!
//! Why Cartesian: a course of 6,800 km spans too many degrees for one flat projection, and
//! a projection per region would need seams. Between points a few hundred metres apart, the
//! straight chord through the Earth and the great circle differ by far less than GPS noise
//! (a millimetre at 500 m), so point-to-segment distances in three dimensions are distances
//! on the ground, with no projection at all.
//!
//! Two ways to find the segments near a fix: a **window** — the segments whose distance
//! along the course lies in a range (the reach of a rider from their last match), scanned in
//! order, a handful for a fix every few seconds — and the **R*-tree** (`rstar`), for the
//! first fix of a rider, re-acquisition, and windows too long to scan.

use rstar::primitives::{GeomWithData, Line};
use rstar::{RTree, AABB};
use velometry_core::course::Course;
use velometry_core::geo::EARTH_RADIUS_M;

/// A point in Earth-centred coordinates, metres.
pub type Xyz = [f64; 3];

/// Earth-centred coordinates of a position on the sphere of the mean Earth radius.
pub fn xyz(lat: f64, lon: f64) -> Xyz {
    let (phi, lambda) = (lat.to_radians(), lon.to_radians());
    let (sp, cp) = phi.sin_cos();
    let (sl, cl) = lambda.sin_cos();
    [EARTH_RADIUS_M * cp * cl, EARTH_RADIUS_M * cp * sl, EARTH_RADIUS_M * sp]
}

/// The unit vector on the ground at `(lat, lon)` pointing to `heading_deg` (clockwise from
/// north).
pub fn heading_vector(lat: f64, lon: f64, heading_deg: f64) -> Xyz {
    let (phi, lambda) = (lat.to_radians(), lon.to_radians());
    let (sp, cp) = phi.sin_cos();
    let (sl, cl) = lambda.sin_cos();
    let (sh, ch) = heading_deg.to_radians().sin_cos();
    let north = [-sp * cl, -sp * sl, cp];
    let east = [-sl, cl, 0.0];
    [ch * north[0] + sh * east[0], ch * north[1] + sh * east[1], ch * north[2] + sh * east[2]]
}

pub(crate) fn sub(a: Xyz, b: Xyz) -> Xyz {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot(a: Xyz, b: Xyz) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// One segment, between course points `i` and `i + 1`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    a: Xyz,
    dir: Xyz,
    /// 1 / |dir|², or 0 for a degenerate segment.
    inv_len2: f64,
    /// Distance along the course at `a` and at the segment's end.
    d0: f64,
    d1: f64,
}

/// Where a fix projects onto one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The segment's index (between course points `segment` and `segment + 1`).
    pub segment: usize,
    /// Distance along the course of the projection, metres.
    pub along_m: f64,
    /// Distance from the fix to the projection, metres.
    pub error_m: f64,
    /// The segment's direction (not normalised).
    pub dir: Xyz,
}

/// A course ready for matching.
#[derive(Debug)]
pub struct CourseIndex {
    segments: Vec<Segment>,
    /// Distance along the course of each segment's start, for the window's binary search.
    starts: Vec<f64>,
    tree: RTree<GeomWithData<Line<Xyz>, usize>>,
    length_m: f64,
}

impl CourseIndex {
    /// Indexes `course`.
    pub fn new(course: &Course) -> CourseIndex {
        let points = course.points();
        let xyzs: Vec<Xyz> = points.iter().map(|p| xyz(p.lat, p.lon)).collect();
        let segments: Vec<Segment> = xyzs
            .windows(2)
            .zip(points.windows(2))
            .map(|(x, p)| {
                let dir = sub(x[1], x[0]);
                let len2 = dot(dir, dir);
                let inv_len2 = if len2 > 0.0 { 1.0 / len2 } else { 0.0 };
                Segment { a: x[0], dir, inv_len2, d0: p[0].distance_m, d1: p[1].distance_m }
            })
            .collect();
        let starts = segments.iter().map(|s| s.d0).collect();
        let lines =
            xyzs.windows(2).enumerate().map(|(i, x)| GeomWithData::new(Line::new(x[0], x[1]), i)).collect();
        CourseIndex { segments, starts, tree: RTree::bulk_load(lines), length_m: course.length_m() }
    }

    /// The course's length, metres.
    pub fn length_m(&self) -> f64 {
        self.length_m
    }

    fn project(&self, i: usize, p: Xyz) -> Candidate {
        let s = &self.segments[i];
        let t = (dot(sub(p, s.a), s.dir) * s.inv_len2).clamp(0.0, 1.0);
        let q = [s.a[0] + t * s.dir[0], s.a[1] + t * s.dir[1], s.a[2] + t * s.dir[2]];
        let e = sub(p, q);
        Candidate { segment: i, along_m: s.d0 + t * (s.d1 - s.d0), error_m: dot(e, e).sqrt(), dir: s.dir }
    }

    /// The range of segments that cover `[lo_m, hi_m]` along the course.
    fn segment_range(&self, lo_m: f64, hi_m: f64) -> std::ops::Range<usize> {
        let first = self.starts.partition_point(|&d| d <= lo_m).saturating_sub(1);
        let end = self.starts.partition_point(|&d| d <= hi_m).max(first + 1);
        first..end.min(self.segments.len())
    }

    /// How many segments the window `[lo_m, hi_m]` spans.
    pub fn window_len(&self, lo_m: f64, hi_m: f64) -> usize {
        self.segment_range(lo_m, hi_m).len()
    }

    /// Calls `f` with the projection of `p` onto every segment of the window
    /// `[lo_m, hi_m]`, in order along the course.
    pub fn scan_window(&self, p: Xyz, lo_m: f64, hi_m: f64, mut f: impl FnMut(Candidate)) {
        for i in self.segment_range(lo_m, hi_m) {
            f(self.project(i, p));
        }
    }

    /// Calls `f` with the projection of `p` onto every segment that passes within
    /// `radius_m` of it, anywhere on the course (the R*-tree's answer, in no order).
    pub fn near(&self, p: Xyz, radius_m: f64, mut f: impl FnMut(Candidate)) {
        let envelope = AABB::from_corners(
            [p[0] - radius_m, p[1] - radius_m, p[2] - radius_m],
            [p[0] + radius_m, p[1] + radius_m, p[2] + radius_m],
        );
        for line in self.tree.locate_in_envelope_intersecting(envelope) {
            let c = self.project(line.data, p);
            if c.error_m <= radius_m {
                f(c);
            }
        }
    }

    /// The projection of `p` onto the nearest segment of the whole course.
    pub fn nearest(&self, p: Xyz) -> Option<Candidate> {
        self.tree.nearest_neighbor(p).map(|line| self.project(line.data, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use velometry_core::geo::{haversine_m, offset};

    fn straight() -> Course {
        let (lat, lon) = offset(45.0, 7.0, 0.0, 1_000.0);
        let (lat2, lon2) = offset(45.0, 7.0, 0.0, 2_000.0);
        Course::new([(45.0, 7.0, None), (lat, lon, None), (lat2, lon2, None)]).expect("course")
    }

    #[test]
    fn a_fix_beside_the_road_projects_onto_it() {
        let course = straight();
        let index = CourseIndex::new(&course);
        let (lat, lon) = offset(45.0, 7.0, 30.0, 1_500.0);
        let p = xyz(lat, lon);
        let mut seen = Vec::new();
        index.scan_window(p, 1_200.0, 1_800.0, |c| seen.push(c));
        assert_eq!(seen.len(), 1, "one segment covers 1.2–1.8 km");
        assert!((seen[0].along_m - 1_500.0).abs() < 1.0, "{:?}", seen[0]);
        assert!((seen[0].error_m - 30.0).abs() < 0.5);
        let mut near = Vec::new();
        index.near(p, 100.0, |c| near.push(c.segment));
        assert_eq!(near, vec![1]);
        assert_eq!(index.nearest(p).map(|c| c.segment), Some(1));
        assert_eq!(index.window_len(-500.0, 5_000.0), 2);
    }

    #[test]
    fn chords_are_ground_distances_at_fix_scale() {
        let (lat, lon) = offset(45.0, 7.0, 300.0, 400.0);
        let chord = sub(xyz(45.0, 7.0), xyz(lat, lon));
        assert!((dot(chord, chord).sqrt() - haversine_m(45.0, 7.0, lat, lon)).abs() < 0.01);
        let v = heading_vector(45.0, 7.0, 90.0);
        let east = sub(xyz(45.0, 7.001), xyz(45.0, 7.0));
        assert!(dot(v, east) / dot(east, east).sqrt() > 0.999);
    }
}
