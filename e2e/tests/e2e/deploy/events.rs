//! deploy/events: the example event is valid, and its course is the one the project's own
//! code makes (so the example never holds a file of unknown origin).

use super::*;

#[test]
fn the_example_event_is_what_the_project_makes() {
    let course =
        std::fs::read_to_string(root().join("deploy/events/example-course.gpx")).expect("the course");
    assert!(
        course == velometry_core::testkit::example_course_gpx(),
        "deploy/events/example-course.gpx is not what the project makes; run \
         cargo run -p velometry-core --features testkit --example example_course > deploy/events/example-course.gpx"
    );
    let registry =
        Registry::load(&root().join("deploy/events/example-riders.toml")).unwrap_or_else(|e| panic!("{e}"));
    let [event] = registry.events() else { panic!("one event, not {}", registry.events().len()) };
    assert!((event.length_m() - 60_000.0).abs() < 100.0, "a 60 km loop: {} m", event.length_m());
    let checkpoints: Vec<(&str, i64)> = event
        .checkpoints
        .iter()
        .map(|c| (c.name.as_str(), (c.distance_m / 1_000.0).round() as i64))
        .collect();
    assert_eq!(checkpoints, [("CP1 Valley", 6), ("Pass", 10), ("Feed", 30), ("CP2 Lake", 40)]);
    let starts: Vec<i64> = event.entrants.iter().map(|e| e.start).collect();
    assert_eq!(starts[0], starts[1]);
    assert_eq!(starts[2] - starts[0], 15 * 60 * 1_000_000_000, "carol's wave");
    let bob = velometry_core::ids::RiderId::parse("bob").expect("an id");
    assert_eq!(registry.rider(&bob).map(|r| r.public), Some(false), "bob is private");
}
