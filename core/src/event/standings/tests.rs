use std::sync::Arc;

use crate::course::Course;
use crate::event::{Checkpoint, Entrant, Event};
use crate::ids::{EventId, RiderId};

use super::*;

const S: Nanos = 1_000_000_000;
const T0: Nanos = 1_800_000_000 * S;

/// A straight course of 100 km due north, a checkpoint at 40 km.
fn event(riders: &[&str]) -> Event {
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
        entrants: riders
            .iter()
            .map(|r| Entrant { rider: RiderId::parse(r).expect("rider"), start: T0 })
            .collect(),
    }
}

fn progress(time: Nanos, progress_m: f64, status: RideStatus) -> Progress {
    Progress {
        time,
        current_m: progress_m,
        progress_m,
        to_go_m: 100_000.0 - progress_m,
        off_course: false,
        status,
        next_checkpoint: Some((0, Some(Eta { p10: time + 60 * S, p50: time + 90 * S, p90: time + 120 * S }))),
        eta_finish: None,
    }
}

fn facts(rider: &str, start: Nanos, p: Option<Progress>, status: Option<(RideStatus, Nanos)>) -> Facts {
    Facts {
        rider: rider.into(),
        name: rider.to_uppercase(),
        start,
        progress: p,
        status,
        checkpoints_reached: Some(0),
    }
}

#[test]
fn finishers_rank_by_elapsed_time_then_the_furthest_then_nobody_unranked() {
    let e = event(&["a", "b", "c", "d", "f", "g"]);
    let all = [
        // a finished in 10 h, started an hour late; f finished in 9.5 h.
        facts(
            "a",
            T0 + 3_600 * S,
            Some(progress(T0 + 11 * 3_600 * S, 100_000.0, RideStatus::Finished)),
            Some((RideStatus::Finished, T0 + 11 * 3_600 * S)),
        ),
        facts("b", T0, Some(progress(T0 + 5 * 3_600 * S, 60_000.0, RideStatus::Riding)), None),
        facts("c", T0, None, None),
        facts(
            "d",
            T0,
            Some(progress(T0 + 4 * 3_600 * S, 80_000.0, RideStatus::Riding)),
            Some((RideStatus::Scratched, T0 + 6 * 3_600 * S)),
        ),
        facts(
            "f",
            T0,
            Some(progress(T0 + 9 * 3_600 * S + 1_800 * S, 100_000.0, RideStatus::Finished)),
            Some((RideStatus::Finished, T0 + 9 * 3_600 * S + 1_800 * S)),
        ),
        facts("g", T0, Some(progress(T0 + 4 * 3_600 * S, 60_000.0, RideStatus::Riding)), None),
    ];
    let rows = standings(&e, &all, T0 + 12 * 3_600 * S, |_| None);
    let order: Vec<(&str, Option<u32>, &str)> =
        rows.iter().map(|r| (r.rider.as_str(), r.rank, r.status)).collect();
    assert_eq!(
        order,
        [
            ("f", Some(1), "finished"),
            ("a", Some(2), "finished"),
            // Equal distance: g got there an hour earlier.
            ("g", Some(3), "riding"),
            ("b", Some(4), "riding"),
            ("c", None, "not_started"),
            ("d", None, "scratched"),
        ]
    );
    assert_eq!(rows[1].gap_s, Some(1_800.0), "10 h against 9.5 h of elapsed time");
    assert_eq!(rows[1].distance_m, metres(e.length_m()), "a finisher has ridden the whole course");
    assert_eq!(rows[2].gap_m, Some(metres(e.length_m() - 60_000.0)), "the leader is at the finish");
    assert_eq!(rows[0].next_checkpoint, None, "a finisher has no next checkpoint");
    assert_eq!(rows[2].next_checkpoint.as_ref().map(|c| c.name.as_str()), Some("CP1"));
    assert_eq!(rows[5].next_checkpoint, None, "nor a scratched rider");
    assert_eq!(rows[4].to_go_m, metres(e.length_m()));
    assert_eq!(rows[4].position, None, "no dot before the first fix");
    assert_eq!(rows[0].position, Some([45.9, 7.0]), "a finisher's dot is at the finish");
    assert_eq!(rows[2].last_fix_age_s, Some(8.0 * 3_600.0));
}

#[test]
fn the_gap_in_time_is_how_much_later_the_rider_got_where_the_leader_had_been() {
    let e = event(&["lead", "chase"]);
    // The leader rode 10 m/s from the start; the chaser, who started 10 minutes later, is at
    // 30 km after 3,600 s of their own: the leader was there after 3,000 s.
    let flow: Vec<FlowPoint> = (0..=100).map(|i| (T0 + i * 60 * S, (i * 600) as f64)).collect();
    let all = [
        facts("lead", T0, Some(progress(T0 + 6_000 * S, 60_000.0, RideStatus::Riding)), None),
        facts("chase", T0 + 600 * S, Some(progress(T0 + 4_200 * S, 30_000.0, RideStatus::Riding)), None),
    ];
    let rows = standings(&e, &all, T0 + 6_000 * S, |d| time_at(&flow, d));
    assert_eq!(rows[0].gap_s, Some(0.0));
    assert_eq!(rows[1].gap_m, Some(30_000.0));
    assert_eq!(rows[1].gap_s, Some(600.0));
}

#[test]
fn the_status_is_the_latest_change_unless_a_later_fix_says_otherwise() {
    let e = event(&["a"]);
    let at = T0 + 3_600 * S;
    let row = |p: Option<Progress>, s: Option<(RideStatus, Nanos)>| {
        let rows = standings(&e, &[facts("a", T0, p, s)], at, |_| None);
        (rows[0].status, rows[0].status_since)
    };
    // Sleeping since the stop's first fix, with fixes since.
    let sleeping = Some((RideStatus::Sleeping, at - 3_000 * S));
    assert_eq!(
        row(Some(progress(at, 5.0, RideStatus::Sleeping)), sleeping),
        ("sleeping", Some((at - 3_000 * S) / 1_000_000))
    );
    // No signal: no fix comes with it.
    let silent = Some((RideStatus::NoSignal, at - 60 * S));
    assert_eq!(row(Some(progress(at - 900 * S, 5.0, RideStatus::Riding)), silent).0, "no_signal");
    // A fix after it says riding again, before the service wrote the change.
    assert_eq!(row(Some(progress(at, 5.0, RideStatus::Riding)), silent), ("riding", None));
    assert_eq!(row(None, Some((RideStatus::Scratched, at))).0, "scratched");
}

#[test]
fn time_at_interpolates_and_knows_what_was_not_reached() {
    let flow = [(0, 0.0), (100, 1_000.0), (300, 1_000.0 + 1.0), (400, 3_000.0)];
    assert_eq!(time_at(&flow, 0.0), Some(0));
    assert_eq!(time_at(&flow, 500.0), Some(50));
    assert_eq!(time_at(&flow, 1_000.0), Some(100));
    assert_eq!(time_at(&flow, 2_000.5), Some(350));
    assert_eq!(time_at(&flow, 3_000.0), Some(400));
    assert_eq!(time_at(&flow, 3_000.1), None);
    assert_eq!(time_at(&[], 1.0), None);
}

#[test]
fn distances_are_to_the_decimetre_and_durations_to_the_tenth_of_a_second() {
    let e = event(&["a", "b"]);
    let mut lead = progress(T0 + 3_600 * S, 36_012.345_678, RideStatus::Riding);
    lead.current_m = 36_010.049_9;
    let all = [
        facts("a", T0, Some(lead), None),
        facts("b", T0, Some(progress(T0 + 3_000 * S, 30_000.049_9, RideStatus::Riding)), None),
    ];
    let rows = standings(&e, &all, T0 + 3_600 * S + 1_234_567_890, |_| Some(T0 + 3_000 * S));
    assert_eq!((rows[0].distance_m, rows[0].current_m, rows[0].to_go_m), (36_012.3, 36_010.0, 63_987.7));
    assert_eq!(rows[0].last_fix_age_s, Some(1.2));
    assert_eq!(rows[1].gap_m, Some(6_012.3));
    // The course runs due north from 45° by 0.009° a step: 36,010 m is a little past 45.32°.
    let [lat, lon] = rows[0].position.expect("a dot on the course");
    assert!((45.32..45.33).contains(&lat) && lon == 7.0, "{lat} {lon}");
    assert_eq!(lat, (lat * 1e5).round() / 1e5, "to five decimals");
    assert!(rows.iter().all(|r| r.next_checkpoint.as_ref().is_some_and(|c| c.distance_m == 40_000.0)));
}
