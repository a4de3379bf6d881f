//! Events drawn for followers: the course as a line to a budget, and its elevation profile.
//! Pure: the handlers in [`crate::api::events`] hand the event here. Standings are ranked in
//! [`velometry_core::event::standings`], shared with the stream hub.

use velometry_core::event::Event;

use crate::downsample::{m4_of, windows, Point};
use crate::track::{simplify, Vertex};

#[cfg(test)]
mod tests;

/// The course as at most `max_points` positions, `(lon, lat, distance_m)`, simplified as
/// tracks are (the endpoints kept, the shape as close as the budget allows).
pub fn course_line(event: &Event, max_points: usize) -> Vec<(f64, f64, f64)> {
    let points = event.course.points();
    let vertices: Vec<Vertex> = points
        .iter()
        .enumerate()
        .map(|(i, p)| Vertex { time_ns: i as i64, lat: p.lat, lon: p.lon })
        .collect();
    simplify(&vertices, max_points)
        .into_iter()
        .filter_map(|v| {
            let p = points.get(usize::try_from(v.time_ns).ok()?)?;
            Some((p.lon, p.lat, p.distance_m))
        })
        .collect()
}

/// The course's elevation against distance, `(distance_m, ele)`, at most `max_points`
/// points: per stretch of course the first, lowest, highest and last point (M4 over
/// distance), so every summit and valley of the full profile is drawn. Empty when the
/// course file has no elevation.
pub fn profile(event: &Event, max_points: usize) -> Vec<(f64, f64)> {
    // Millimetres: distances as the integers M4 buckets, exact for 9,000 million km.
    let points: Vec<Point> = event
        .course
        .points()
        .iter()
        .filter_map(|p| Some(((p.distance_m * 1_000.0).round() as i64, p.ele?)))
        .collect();
    let reduced = if points.len() <= max_points {
        points
    } else {
        let (first, last) = (points[0].0, points[points.len() - 1].0);
        let buckets = (max_points / 4).max(1) as i64;
        let width = ((last - first) / buckets + 1).max(1);
        m4_of(&windows(&points, first, width))
    };
    reduced.into_iter().map(|(mm, ele)| (mm as f64 / 1_000.0, ele)).collect()
}
