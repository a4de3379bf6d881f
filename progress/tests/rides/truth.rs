//! Each test course, ridden by the simulator: distance along the course, checkpoint
//! arrivals and statuses against the truth.

use velometry_collector::simulate::course::{Doing, RideOptions};
use velometry_core::course::Course;
use velometry_core::testkit::courses;
use velometry_progress::checkpoints::CheckpointEvent;
use velometry_progress::status::{Status, StatusEvent};
use velometry_progress::Event;

use crate::helpers::{median, quantile, run, Run, S, START, START_WEST};

/// Distance along the course: the median error under 25 m over the fixes on the course, and
/// no jump between two fixes that differs from the truth's by more than 1 km.
fn distance_is_right(name: &str, run: &Run) {
    let sent: Vec<_> = run.ride.truth.rows.iter().filter(|r| r.sent).collect();
    let progress: Vec<_> = run.outputs.iter().map(|o| o.progress.expect("a fix gives progress")).collect();
    assert_eq!(sent.len(), progress.len());
    let on_course: Vec<f64> = sent
        .iter()
        .zip(&progress)
        .filter(|(t, _)| t.doing != Doing::OffCourse)
        .map(|(t, p)| (p.current_m - t.distance_m).abs())
        .collect();
    let (m, p99) = (median(on_course.clone()), quantile(on_course, 0.99));
    eprintln!("{name}: {} fixes, median error {m:.1} m, p99 {p99:.0} m", sent.len());
    assert!(m < 25.0, "{name}: median error {m} m");
    // A step of more than 1 km is the truth's own (a gap ridden unseen) or brings the match
    // nearer the truth (a shortcut found once the rider could have got there); progress is
    // never ahead of the furthest the rider has really been. Off the course the truth holds
    // where the rider left it, so those fixes are not judged.
    let mut furthest = 0.0_f64;
    for (i, w) in progress.windows(2).enumerate() {
        let (t0, t1) = (sent[i], sent[i + 1]);
        furthest = furthest.max(t1.distance_m);
        if t0.doing == Doing::OffCourse || t1.doing == Doing::OffCourse {
            continue;
        }
        let step = w[1].current_m - w[0].current_m;
        let truth_step = t1.distance_m - t0.distance_m;
        let (before, after) =
            ((w[0].current_m - t0.distance_m).abs(), (w[1].current_m - t1.distance_m).abs());
        assert!(
            step.abs() <= 1_000.0
                || (step - truth_step).abs() <= 1_000.0
                || after < before - step.abs() / 2.0,
            "{name}: at fix {i} a step of {step:.0} m (the truth's {truth_step:.0} m) took the match from \
             {before:.0} to {after:.0} m off"
        );
        assert!(w[1].progress_m <= furthest + 1_000.0, "{name}: progress ahead of the truth at fix {i}");
    }
}

/// Each checkpoint the rider rode through arrives once, within 60 s of the truth (within
/// 10 % of the gap when it was passed unseen, in a dropout, where a stop may hide); the ones the shortcut skipped
/// are missed or not reached. The finish arrives once, when the truth finished.
fn checkpoints_are_right(name: &str, run: &Run) {
    let mut arrivals = vec![0; run.plan.checkpoints().len()];
    let mut finishes = Vec::new();
    let mut worst = 0.0_f64;
    for e in run.outputs.iter().flat_map(|o| &o.events) {
        if let Event::Checkpoint(CheckpointEvent::Arrived { index, time, late }) = e {
            if *index == run.plan.finish_index() {
                assert!(!late, "{name}: late at a finish that has no cut-off");
                finishes.push(*time);
                continue;
            }
            arrivals[*index] += 1;
            let cp = &run.plan.checkpoints()[*index];
            let truth = run.ride.truth.arrival(cp.distance_m);
            let truth = truth.unwrap_or_else(|| panic!("{name}: {} arrived, the truth skipped it", cp.name));
            let error = (*time - truth).abs() as f64 / 1e9;
            let unseen = run.ride.truth.dropouts.iter().find(|d| d.start <= truth && truth <= d.end);
            let allowed = unseen.map_or(60.0, |d| (0.1 * (d.end - d.start) as f64 / 1e9).max(60.0));
            if unseen.is_none() {
                worst = worst.max(error);
            }
            assert!(
                error <= allowed,
                "{name}: {} arrival {error:.0} s from the truth ({allowed:.0} s allowed)",
                cp.name
            );
        }
    }
    for (cp, n) in run.plan.checkpoints().iter().zip(&arrivals) {
        let expected = usize::from(run.ride.truth.arrival(cp.distance_m).is_some());
        assert_eq!(*n, expected, "{name}: {} arrived {n} times", cp.name);
    }
    eprintln!(
        "{name}: {} arrivals, the furthest seen {worst:.0} s from the truth",
        arrivals.iter().sum::<usize>()
    );
    match (finishes.as_slice(), run.ride.truth.finished) {
        ([at], Some(truth)) => {
            let error = (at - truth).abs() as f64 / 1e9;
            assert!(error <= 60.0, "{name}: the finish {error:.0} s from the truth");
        }
        ([], None) => {}
        (got, truth) => panic!("{name}: finish arrivals {got:?}, the truth finished at {truth:?}"),
    }
}

/// Statuses as the truth says: every night's sleep was sleeping, every stop of three
/// hours or more too, and the three-hour dropout while riding was no signal.
fn statuses_are_right(name: &str, run: &Run) {
    let stops: Vec<_> = run
        .outputs
        .iter()
        .flat_map(|o| &o.events)
        .filter_map(|e| match e {
            Event::Status(StatusEvent::Stopped(s)) => Some(*s),
            _ => None,
        })
        .collect();
    for truth in run.ride.truth.stops.iter().filter(|s| s.doing == Doing::Sleeping) {
        let found = stops.iter().find(|s| s.start < truth.end && truth.start < s.end);
        let found = found.unwrap_or_else(|| panic!("{name}: no stop over the sleep from {}", truth.start));
        assert_eq!(found.kind, Status::Sleeping, "{name}: the sleep at {} was {:?}", truth.start, found.kind);
        assert!((found.start - truth.start).abs() <= 300 * S, "{name}: sleep start");
    }
    for truth in run.ride.truth.stops.iter().filter(|s| s.doing == Doing::Resting) {
        let found = stops.iter().find(|s| s.start < truth.end && truth.start < s.end);
        assert!(
            found.is_some_and(|s| s.kind == Status::Resting),
            "{name}: the rest at {} was {found:?}",
            truth.start
        );
    }
    let changes: Vec<(i64, Status)> = run
        .outputs
        .iter()
        .flat_map(|o| &o.events)
        .filter_map(|e| match e {
            Event::Status(StatusEvent::Changed { time, status }) => Some((*time, *status)),
            _ => None,
        })
        .collect();
    for gap in run
        .ride
        .truth
        .dropouts
        .iter()
        .filter(|d| d.end - d.start >= 2 * 3_600 * S && d.doing == Doing::Riding)
    {
        let middle = gap.start + (gap.end - gap.start) / 2;
        let at = changes.iter().rev().find(|(t, _)| *t <= middle).map(|c| c.1);
        assert_eq!(at, Some(Status::NoSignal), "{name}: the long dropout from {}", gap.start);
    }
}

fn ridden(name: &str, course: Course, seed: u64) {
    let run = run(course, &RideOptions::new(seed, START), 7_000.0);
    distance_is_right(name, &run);
    checkpoints_are_right(name, &run);
    statuses_are_right(name, &run);
    assert!(run.state.finished().is_some(), "{name}: finished");
}

#[test]
fn out_and_back() {
    ridden("out-and-back", courses::out_and_back(1), 11);
}

#[test]
fn loop_with_start_at_finish() {
    ridden("loop", courses::loop_course(2), 12);
}

#[test]
fn figure_eight_crossing_itself() {
    ridden("figure-eight", courses::figure_eight(3), 13);
}

#[test]
fn parallel_road_200_m_away() {
    ridden("parallel roads", courses::parallel_roads(4), 14);
}

#[test]
fn multi_day_with_a_night_phone_off() {
    let mut options = RideOptions::new(15, START_WEST);
    options.phone_off_one_night = true;
    let run = run(courses::winding(5, 700_000.0), &options, 50_000.0);
    distance_is_right("multi-day", &run);
    checkpoints_are_right("multi-day", &run);
    statuses_are_right("multi-day", &run);
}
