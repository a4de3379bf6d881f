//! Tracks for `GET /v1/riders/{rider}/track`: a ride's GPS positions reduced to a vertex
//! budget while keeping the shape a map draws ([`simplify`]), answered as a GeoJSON Feature
//! that carries the time of every vertex ([`feature`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde_json::{json, Value};
use velometry_core::geo::METRES_PER_DEGREE;
use velometry_core::time::format_rfc3339;

/// Points nearer the line than this are on it. A millimetre is far below what GPS resolves,
/// and far above floating-point rounding (about a nanometre at the scale of a continent), so
/// a straight stretch collapses to its ends instead of being split on rounding noise.
const ON_THE_LINE_M: f64 = 1e-3;

/// A vertex of a track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vertex {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// Simplifies `track` (sorted by time) to at most `max_vertices` vertices (values < 2 treated
/// as 2), keeping both endpoints and the shape: Douglas–Peucker driven by a vertex budget.
///
/// Starting from the two endpoints, it repeatedly splits the segment of the simplified line
/// whose farthest intermediate point is the farthest of all, at that point, until the budget
/// is reached or every dropped point lies on the line (within a millimetre). Ties go to the
/// earliest point. Distances are in metres from a point to the segment (clamped to its ends),
/// in a local equirectangular projection around the segment's mean latitude. The result is a
/// subset of the input, in time order; a track that fits the budget is returned whole. A
/// larger budget keeps a superset of what a smaller one keeps, but the largest deviation of
/// the dropped points can still grow by a step, when a split exposes a U-turn that lay on
/// the coarser line.
///
/// We wrote this instead of using the `geo` crate because geo's `Simplify` (and `SimplifyVw`)
/// take a tolerance, not a vertex budget: meeting a budget would mean a binary search on the
/// tolerance, running RDP over the whole track some 30 times. Splitting in order of distance
/// with a max-heap reaches the budget in one pass. geo also measures in the plane of its
/// coordinates, where a degree of longitude counts as much as one of latitude.
///
/// Each split scans the points of one segment, so balanced splits cost O(n log k) for n
/// points and a budget of k; a track that peels off one point per split costs up to O(n·k).
pub fn simplify(track: &[Vertex], max_vertices: usize) -> Vec<Vertex> {
    kept_indices(track, max_vertices).into_iter().map(|i| track[i]).collect()
}

/// The GeoJSON Feature the track endpoint answers: a LineString of `[lon, lat]` positions,
/// with the rider and the time of each vertex as epoch milliseconds (`times`) and as RFC 3339
/// strings (`coordTimes`, the convention of togeojson and Mapbox).
///
/// A LineString needs at least two positions, so for zero or one vertex the geometry is
/// `null` (a valid GeoJSON Feature, RFC 7946 §3.2) while the properties are still filled.
pub fn feature(rider: &str, vertices: &[Vertex]) -> Value {
    let geometry = if vertices.len() >= 2 {
        let coordinates: Vec<[f64; 2]> = vertices.iter().map(|v| [v.lon, v.lat]).collect();
        json!({ "type": "LineString", "coordinates": coordinates })
    } else {
        Value::Null
    };
    // Euclidean division so times before 1970 round down, as `format_rfc3339` does.
    let times: Vec<i64> = vertices.iter().map(|v| v.time_ns.div_euclid(1_000_000)).collect();
    let coord_times: Vec<String> = vertices.iter().map(|v| format_rfc3339(v.time_ns)).collect();
    json!({
        "type": "Feature",
        "geometry": geometry,
        "properties": { "rider": rider, "times": times, "coordTimes": coord_times },
    })
}

/// The indices [`simplify`] keeps, ascending.
fn kept_indices(track: &[Vertex], max_vertices: usize) -> Vec<usize> {
    let budget = max_vertices.max(2);
    if track.len() <= budget {
        return (0..track.len()).collect();
    }
    let last = track.len() - 1;
    // budget < track.len() here, so this allocation is bounded by the input.
    let mut kept = Vec::with_capacity(budget);
    kept.extend([0, last]);
    let mut heap = BinaryHeap::with_capacity(budget);
    heap.extend(farthest(track, 0, last));
    while kept.len() < budget {
        let Some(split) = heap.pop() else { break };
        kept.push(split.at);
        heap.extend(farthest(track, split.start, split.at));
        heap.extend(farthest(track, split.at, split.end));
    }
    kept.sort_unstable();
    kept
}

/// A segment of the simplified line and the point it would be split at.
#[derive(Debug, Clone, Copy)]
struct Split {
    /// The distance of `at` from the segment, in metres.
    distance: f64,
    start: usize,
    at: usize,
    end: usize,
}

/// Farthest first; among equals, the earliest segment, so the result does not depend on the
/// heap's internal order.
impl Ord for Split {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance.total_cmp(&other.distance).then_with(|| other.start.cmp(&self.start))
    }
}

impl PartialOrd for Split {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Split {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Split {}

/// The first of the farthest points strictly between `start` and `end`, if it is off the line.
fn farthest(track: &[Vertex], start: usize, end: usize) -> Option<Split> {
    let segment = Segment::new(&track[start], &track[end]);
    let mut best: Option<Split> = None;
    let mut best_distance = ON_THE_LINE_M;
    for (at, p) in track.iter().enumerate().take(end).skip(start + 1) {
        let distance = segment.distance(p);
        if distance > best_distance {
            best_distance = distance;
            best = Some(Split { distance, start, at, end });
        }
    }
    best
}

/// A segment projected once, so that measuring each point it spans costs a few
/// multiplications and one square root. Coordinates are taken relative to the start, in
/// metres: x = Δlon·cos(lat_ref)·R, y = Δlat·R, lat_ref the segment's mean latitude.
#[derive(Debug, Clone, Copy)]
struct Segment {
    lat0: f64,
    lon0: f64,
    /// Metres per degree of longitude at the mean latitude.
    kx: f64,
    dx: f64,
    dy: f64,
    /// 1 / length², or 0 for a segment of zero length so that every point projects onto its
    /// start; a multiplication instead of a division and a branch per point.
    inverse_len2: f64,
}

impl Segment {
    fn new(a: &Vertex, b: &Vertex) -> Self {
        let kx = METRES_PER_DEGREE * ((a.lat + b.lat) / 2.0).to_radians().cos();
        let dx = (b.lon - a.lon) * kx;
        let dy = (b.lat - a.lat) * METRES_PER_DEGREE;
        let len2 = dx * dx + dy * dy;
        let inverse_len2 = if len2 > 0.0 { 1.0 / len2 } else { 0.0 };
        Self { lat0: a.lat, lon0: a.lon, kx, dx, dy, inverse_len2 }
    }

    /// The distance in metres from `p` to the nearest point of the segment; for a segment of
    /// zero length (a rider standing still), the distance to its one point.
    fn distance(&self, p: &Vertex) -> f64 {
        let px = (p.lon - self.lon0) * self.kx;
        let py = (p.lat - self.lat0) * METRES_PER_DEGREE;
        let t = ((px * self.dx + py * self.dy) * self.inverse_len2).clamp(0.0, 1.0);
        let (ex, ey) = (px - t * self.dx, py - t * self.dy);
        (ex * ex + ey * ey).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const T0: i64 = 1_764_237_600_000_000_000;

    fn track(positions: &[(f64, f64)]) -> Vec<Vertex> {
        positions
            .iter()
            .enumerate()
            .map(|(i, &(lat, lon))| Vertex { time_ns: T0 + i as i64 * 1_000_000_000, lat, lon })
            .collect()
    }

    /// The same greedy algorithm written plainly: every step measures every dropped point
    /// against its segment and splits at the first of the farthest.
    fn simplify_brute(track: &[Vertex], max_vertices: usize) -> Vec<Vertex> {
        let budget = max_vertices.max(2);
        if track.len() <= budget {
            return track.to_vec();
        }
        let mut kept = vec![0, track.len() - 1];
        while kept.len() < budget {
            let mut best: Option<(f64, usize)> = None;
            for pair in kept.windows(2) {
                let segment = Segment::new(&track[pair[0]], &track[pair[1]]);
                let (start, end) = (pair[0], pair[1]);
                for (i, p) in (start + 1..end).zip(&track[start + 1..end]) {
                    let d = segment.distance(p);
                    if d > ON_THE_LINE_M && best.is_none_or(|(b, _)| d > b) {
                        best = Some((d, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            kept.push(i);
            kept.sort_unstable();
        }
        kept.iter().map(|&i| track[i]).collect()
    }

    /// The farthest any dropped point lies from the simplified segment spanning it.
    fn max_deviation(track: &[Vertex], kept: &[usize]) -> f64 {
        kept.windows(2)
            .flat_map(|pair| {
                let segment = Segment::new(&track[pair[0]], &track[pair[1]]);
                (pair[0] + 1..pair[1]).map(move |i| segment.distance(&track[i]))
            })
            .fold(0.0, f64::max)
    }

    fn random_walk(rng: &mut StdRng, n: usize) -> Vec<Vertex> {
        let (mut lat, mut lon) = (rng.random_range(-60.0..60.0), rng.random_range(-170.0..170.0));
        let positions: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                lat += rng.random_range(-1e-3..1e-3);
                lon += rng.random_range(-1e-3..1e-3);
                (lat, lon)
            })
            .collect();
        track(&positions)
    }

    /// Standing still, straight runs and U-turns mixed into a walk.
    fn adversarial_walk(rng: &mut StdRng, n: usize) -> Vec<Vertex> {
        let (mut lat, mut lon) = (45.0, 6.0);
        let (mut dlat, mut dlon) = (1e-4, 0.0);
        let positions: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                match rng.random_range(0..10) {
                    0 => (dlat, dlon) = (-dlat, -dlon),
                    1 => (dlat, dlon) = (rng.random_range(-1e-4..1e-4), rng.random_range(-1e-4..1e-4)),
                    2 | 3 => return (lat, lon),
                    _ => {}
                }
                lat += dlat;
                lon += dlon;
                (lat, lon)
            })
            .collect();
        track(&positions)
    }

    fn straight_line(n: usize) -> Vec<Vertex> {
        track(&(0..n).map(|i| (45.0 + i as f64 * 1e-4, 6.0 + i as f64 * 2e-4)).collect::<Vec<_>>())
    }

    /// Along a meridian: out, back past the start, out again.
    fn back_and_forth() -> Vec<Vertex> {
        let lats = (0..20).chain((-5..20).rev()).chain(-5..10).map(|i| 45.0 + i as f64 * 1e-4);
        track(&lats.map(|lat| (lat, 6.0)).collect::<Vec<_>>())
    }

    /// Four sides of 10 points, counter-clockwise from the south-west corner and back to it.
    fn square_loop() -> Vec<Vertex> {
        let side = |i: usize| i as f64 * 1e-3;
        let mut positions = Vec::new();
        positions.extend((0..10).map(|i| (45.0, 6.0 + side(i))));
        positions.extend((0..10).map(|i| (45.0 + side(i), 6.01)));
        positions.extend((0..10).map(|i| (45.01, 6.01 - side(i))));
        positions.extend((0..10).map(|i| (45.01 - side(i), 6.0)));
        positions.push((45.0, 6.0));
        track(&positions)
    }

    fn fixed_cases() -> Vec<(&'static str, Vec<Vertex>)> {
        vec![
            ("empty", Vec::new()),
            ("one point", track(&[(45.0, 6.0)])),
            ("two points", track(&[(45.0, 6.0), (45.1, 6.1)])),
            ("three points", track(&[(45.0, 6.0), (45.05, 6.1), (45.1, 6.0)])),
            ("three identical points", track(&[(45.0, 6.0); 3])),
            ("identical points", track(&[(45.0, 6.0); 50])),
            ("straight line", straight_line(50)),
            ("back and forth", back_and_forth()),
            ("square loop", square_loop()),
        ]
    }

    fn is_subsequence(part: &[Vertex], whole: &[Vertex]) -> bool {
        let mut rest = whole.iter();
        part.iter().all(|p| rest.any(|w| w == p))
    }

    #[test]
    fn equals_the_brute_force_on_random_and_adversarial_tracks() {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..300 {
            let n = rng.random_range(0..400);
            let points =
                if round % 2 == 0 { random_walk(&mut rng, n) } else { adversarial_walk(&mut rng, n) };
            let budget = rng.random_range(0..n + 3);
            assert_eq!(
                simplify(&points, budget),
                simplify_brute(&points, budget),
                "round {round}, {n} points, {budget} vertices"
            );
        }
        for (name, points) in fixed_cases() {
            for budget in 0..points.len() + 2 {
                assert_eq!(
                    simplify(&points, budget),
                    simplify_brute(&points, budget),
                    "{name}, {budget} vertices"
                );
            }
        }
    }

    #[test]
    fn output_is_an_ordered_subset_with_both_endpoints_within_the_budget() {
        let mut rng = StdRng::seed_from_u64(8);
        let random = (0..100).map(|round| {
            let n = rng.random_range(0..300);
            let points =
                if round % 2 == 0 { random_walk(&mut rng, n) } else { adversarial_walk(&mut rng, n) };
            ("random", points)
        });
        for (name, points) in fixed_cases().into_iter().chain(random.collect::<Vec<_>>()) {
            for budget in 0..points.len() + 2 {
                let simplified = simplify(&points, budget);
                assert!(is_subsequence(&simplified, &points), "{name}, {budget}: not a subset in order");
                assert!(simplified.len() <= budget.max(2), "{name}, {budget}: {} vertices", simplified.len());
                assert_eq!(simplified.first(), points.first(), "{name}, {budget}");
                assert_eq!(simplified.last(), points.last(), "{name}, {budget}");
                if budget >= points.len() {
                    assert_eq!(simplified, points, "{name}, {budget}: the whole track fits");
                }
            }
        }
    }

    #[test]
    fn fills_the_budget_while_points_are_off_the_line() {
        let mut rng = StdRng::seed_from_u64(9);
        let points = random_walk(&mut rng, 5_000);
        for budget in [2, 3, 10, 100, 1_000, 4_999] {
            assert_eq!(simplify(&points, budget).len(), budget);
        }
    }

    #[test]
    fn a_straight_line_and_a_rider_standing_still_collapse_to_their_endpoints() {
        for points in [straight_line(1_000), track(&[(45.0, 6.0); 1_000])] {
            let simplified = simplify(&points, 100);
            assert_eq!(simplified, [points[0], points[999]]);
        }
    }

    #[test]
    fn keeps_the_corners_of_a_square_loop_with_five_vertices() {
        let points = square_loop();
        let simplified = simplify(&points, 5);
        let corners: Vec<(f64, f64)> = simplified.iter().map(|v| (v.lat, v.lon)).collect();
        assert_eq!(corners, [(45.0, 6.0), (45.0, 6.01), (45.01, 6.01), (45.01, 6.0), (45.0, 6.0)]);
        assert!(max_deviation(&points, &kept_indices(&points, 5)) < ON_THE_LINE_M);
    }

    /// What holds instead of "the deviation never grows": a larger budget keeps everything a
    /// smaller one kept (the splits are one sequence, cut at the budget), and once the budget
    /// no longer binds, every dropped point is on the line.
    #[test]
    fn a_larger_budget_keeps_a_superset_and_ends_on_the_line() {
        let mut rng = StdRng::seed_from_u64(10);
        for round in 0..40 {
            let points =
                if round % 2 == 0 { random_walk(&mut rng, 300) } else { adversarial_walk(&mut rng, 300) };
            let mut previous = kept_indices(&points, 2);
            for budget in 3..=301 {
                let kept = kept_indices(&points, budget);
                assert!(
                    previous.iter().all(|i| kept.binary_search(i).is_ok()),
                    "round {round}, {budget} vertices"
                );
                if kept.len() < budget {
                    assert!(
                        max_deviation(&points, &kept) <= ON_THE_LINE_M,
                        "round {round}, {budget} vertices"
                    );
                }
                previous = kept;
            }
        }
    }

    /// The deviation can grow with the budget: splitting at the farthest point can expose a
    /// U-turn that lay on the coarser line. Pinned so that nobody asserts monotonicity.
    #[test]
    fn the_deviation_can_grow_when_a_split_exposes_a_u_turn() {
        // East along the equator to 0.009°, back north-west to C, then east again to 0.01°.
        let points = track(&[(0.0, 0.0), (0.0, 0.009), (0.001, 0.005), (0.0, 0.01)]);
        let coarse = max_deviation(&points, &kept_indices(&points, 2));
        let finer = max_deviation(&points, &kept_indices(&points, 3));
        assert_eq!(kept_indices(&points, 3), [0, 2, 3]);
        assert!((coarse - 111.195).abs() < 0.01, "{coarse}");
        assert!(finer > 4.0 * coarse, "{finer}");
    }

    #[test]
    fn distances_are_metres_to_the_segment_in_a_local_projection() {
        let at = |lat, lon| Vertex { time_ns: T0, lat, lon };
        // A thousandth of a degree of latitude, 111.195 m, north of a segment on the equator.
        let equator = Segment::new(&at(0.0, 0.0), &at(0.0, 0.01));
        assert!((equator.distance(&at(0.001, 0.005)) - 111.195_08).abs() < 1e-3);
        // Past the end the distance is to the end: east-west 0.001° at 60°N is half as long.
        let at_60 = Segment::new(&at(60.0, 0.0), &at(60.0, 0.01));
        assert!((at_60.distance(&at(60.0, 0.011)) - 55.597_54).abs() < 1e-3);
        assert!((at_60.distance(&at(60.0, -0.001)) - 55.597_54).abs() < 1e-3);
        // A segment of zero length measures the distance to its point.
        let still = Segment::new(&at(45.0, 6.0), &at(45.0, 6.0));
        assert!((still.distance(&at(45.001, 6.0)) - 111.195_08).abs() < 1e-3);
        assert_eq!(still.distance(&at(45.0, 6.0)), 0.0);
    }

    #[test]
    fn the_feature_is_a_geojson_line_string_with_times() {
        let points = track(&[(45.0, 6.0), (45.5, 6.25), (46.0, 6.5)]);
        let feature = feature("anna", &points);
        assert_eq!(
            feature,
            json!({
                "type": "Feature",
                "geometry": { "type": "LineString", "coordinates": [[6.0, 45.0], [6.25, 45.5], [6.5, 46.0]] },
                "properties": {
                    "rider": "anna",
                    "times": [1_764_237_600_000_i64, 1_764_237_601_000_i64, 1_764_237_602_000_i64],
                    "coordTimes": ["2025-11-27T10:00:00.000Z", "2025-11-27T10:00:01.000Z", "2025-11-27T10:00:02.000Z"],
                },
            })
        );
    }

    #[test]
    fn times_keep_milliseconds_and_round_down_before_1970() {
        let points = [
            Vertex { time_ns: T0 + 123_456_789, lat: 45.0, lon: 6.0 },
            Vertex { time_ns: -1, lat: 45.0, lon: 6.0 },
        ];
        let properties = &feature("anna", &points)["properties"];
        assert_eq!(properties["times"], json!([1_764_237_600_123_i64, -1]));
        assert_eq!(properties["coordTimes"], json!(["2025-11-27T10:00:00.123Z", "1969-12-31T23:59:59.999Z"]));
    }

    #[test]
    fn fewer_than_two_vertices_give_a_null_geometry_and_the_properties() {
        let empty = feature("anna", &[]);
        assert_eq!(empty["type"], "Feature");
        assert_eq!(empty["geometry"], Value::Null);
        assert_eq!(empty["properties"], json!({ "rider": "anna", "times": [], "coordTimes": [] }));
        let one = feature("anna", &track(&[(45.0, 6.0)]));
        assert_eq!(one["geometry"], Value::Null);
        assert_eq!(one["properties"]["times"], json!([1_764_237_600_000_i64]));
        assert_eq!(one["properties"]["coordTimes"], json!(["2025-11-27T10:00:00.000Z"]));
    }
}
