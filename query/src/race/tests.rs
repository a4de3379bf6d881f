use std::sync::Arc;

use velometry_core::course::Course;
use velometry_core::event::{Checkpoint, Event};
use velometry_core::ids::EventId;

use super::*;

/// A straight course of 100 km due north, a checkpoint at 40 km.
fn event() -> Event {
    let points = (0..=100).map(|i| (45.0 + f64::from(i) * 0.009, 7.0, Some(f64::from(i % 7) * 10.0)));
    let course = Course::new(points).expect("a course");
    Event {
        id: EventId::parse("race").expect("id"),
        name: "Race".into(),
        public: true,
        course_file: "course.gpx".into(),
        course: Arc::new(course),
        waypoints: Vec::new(),
        checkpoints: vec![Checkpoint {
            name: "CP1".into(),
            distance_m: 40_000.0,
            lat: 45.36,
            lon: 7.0,
            off_course_m: 0.0,
            cutoff: None,
        }],
        finish_cutoff: None,
        entrants: Vec::new(),
    }
}

#[test]
fn the_profile_keeps_every_summit_within_its_budget() {
    let e = event();
    let full = profile(&e, 10_000);
    assert_eq!(full.len(), 101, "the whole profile fits");
    let small = profile(&e, 20);
    assert!(small.len() <= 20, "{} points", small.len());
    let highest = |p: &[(f64, f64)]| p.iter().map(|&(_, h)| h).fold(f64::MIN, f64::max);
    let lowest = |p: &[(f64, f64)]| p.iter().map(|&(_, h)| h).fold(f64::MAX, f64::min);
    assert_eq!((highest(&small), lowest(&small)), (highest(&full), lowest(&full)));
    assert!(small.windows(2).all(|w| w[0].0 <= w[1].0), "in distance order");
    assert_eq!(small.first().map(|p| p.0), Some(0.0));
}

#[test]
fn the_course_line_keeps_its_ends_and_its_distances() {
    let e = event();
    let line = course_line(&e, 10);
    assert!(line.len() <= 10 && line.len() >= 2);
    assert_eq!(line[0].2, 0.0);
    assert!((line[line.len() - 1].2 - e.length_m()).abs() < 1e-6);
}
