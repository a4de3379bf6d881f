//! The finish's cut-off: a rider who finishes after it is late there, and its passing before
//! the finish is an outcome of its own, each said once, like a checkpoint's.

use velometry_collector::simulate::course::{ride, RideOptions};
use velometry_core::testkit::courses;
use velometry_core::time::Nanos;
use velometry_progress::checkpoints::CheckpointEvent;
use velometry_progress::{Config, Engine, Event, Plan, RiderState};

use crate::helpers::{inputs, S, START};

/// The finish outcomes of the ride with the finish closing at `cutoff`.
fn finish_outcomes(cutoff: impl Fn(Nanos) -> Nanos) -> (Nanos, Vec<CheckpointEvent>) {
    let course = courses::out_and_back(1);
    let ride = ride(&course, &RideOptions::new(21, START));
    let finished = ride.truth.finished.expect("the simulated rider finishes");
    let plan = Plan::new(course, Vec::new()).expect("a plan").with_finish_cutoff(Some(cutoff(finished)));
    let config = Config::default();
    let engine = Engine::new(&plan, &config);
    let (state, outputs) = engine.replay(RiderState::default(), &inputs(&ride)).expect("in order");
    assert!(state.finished().is_some(), "finished");
    let outcomes = outputs
        .iter()
        .flat_map(|o| &o.events)
        .filter_map(|e| match e {
            Event::Checkpoint(c) => Some(*c),
            _ => None,
        })
        .collect();
    (finished, outcomes)
}

#[test]
fn a_finish_after_its_cut_off_is_late_and_the_cut_off_is_breached_once() {
    let (finished, outcomes) = finish_outcomes(|finished| finished - 3_600 * S);
    let [CheckpointEvent::CutoffBreached { index: 0, time }, CheckpointEvent::Arrived { index: 0, time: at, late: true }] =
        outcomes[..]
    else {
        panic!("the cut-off breached, then a late arrival: {outcomes:?}");
    };
    assert_eq!(time, finished - 3_600 * S, "breached at the cut-off");
    assert!((at - finished).abs() < 60 * S, "the finish {} s from the truth", (at - finished) / S);
}

#[test]
fn a_finish_before_its_cut_off_is_in_time() {
    let (_, outcomes) = finish_outcomes(|finished| finished + 60 * S);
    assert!(
        matches!(outcomes[..], [CheckpointEvent::Arrived { index: 0, late: false, .. }]),
        "one arrival in time: {outcomes:?}"
    );
}
