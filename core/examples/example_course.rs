//! Prints the example course of `deploy/events/` as GPX:
//!
//! ```sh
//! cargo run -p velometry-core --features testkit --example example_course > deploy/events/example-course.gpx
//! ```
//!
//! A test (`e2e`, `the_example_event_is_what_the_project_makes`) checks that the committed
//! file is what this prints.

fn main() {
    print!("{}", velometry_core::testkit::example_course_gpx());
}
