//! Late data and restarts: a stretch of fixes that arrives hours late (a device syncing
//! after a valley without signal), recomputed from a snapshot, gives exactly what it would
//! have given in time; a restart from a serialised snapshot emits no arrival twice.

use velometry_collector::simulate::course::{ride, RideOptions};
use velometry_core::testkit::courses;
use velometry_progress::checkpoints::CheckpointEvent;
use velometry_progress::engine::StepError;
use velometry_progress::snapshots::Snapshots;
use velometry_progress::status::{Status, StatusEvent};
use velometry_progress::{Config, Engine, Event, Input, Output, Plan, RiderState};

use crate::helpers::{checkpoints, inputs, S, START, START_WEST};

fn no_signal_between(outputs: &[Output], from: i64, to: i64) -> bool {
    outputs.iter().flat_map(|o| &o.events).any(|e| {
        matches!(e, Event::Status(StatusEvent::Changed { time, status: Status::NoSignal }) if (from..=to).contains(time))
    })
}

#[test]
fn a_stretch_synced_hours_late_is_recomputed_as_if_in_time() {
    // Fixes all the way (no dropouts of its own): three hours of them will come late.
    let course = courses::winding(7, 300_000.0);
    let mut options = RideOptions::new(21, START_WEST);
    options.dropouts = false;
    let ride = ride(&course, &options);
    let plan = Plan::new(course.clone(), checkpoints(&course, 20_000.0)).expect("a plan");
    let config = Config::default();
    let engine = Engine::new(&plan, &config);
    let all = inputs(&ride);
    let (in_time, in_time_outputs) = engine.replay(RiderState::default(), &all).expect("in order");

    // The device keeps fixes 2 h to 5 h into the ride and sends them after 7 h.
    let hour = 3_600 * S;
    let (late_from, late_to, synced_at) =
        (START_WEST + 2 * hour, START_WEST + 5 * hour, START_WEST + 7 * hour);
    let is_late = |i: &Input| (late_from..late_to).contains(&i.time());
    let mut state = RiderState::default();
    let mut snapshots = Snapshots::new(500, 1_800, 64);
    let mut live = Vec::new();
    let mut seen: Vec<Input> = Vec::new();
    for input in all.iter().filter(|i| !is_late(i) && i.time() < synced_at) {
        live.push(engine.step(&mut state, input).expect("in order"));
        seen.push(*input);
        snapshots.offer(&state);
    }
    assert!(no_signal_between(&live, late_from, late_to), "while the stretch is missing, it is no signal");

    // The stretch arrives: the engine says it is late, the service re-runs from a snapshot.
    let stretch: Vec<Input> = all.iter().copied().filter(is_late).collect();
    assert!(matches!(engine.step(&mut state, &stretch[0]), Err(StepError::Late { .. })));
    let snapshot = snapshots.before(stretch[0].time());
    let restart_after = snapshot.last_time().expect("a snapshot with inputs");
    assert!(restart_after < late_from);
    snapshots.forget_from(stretch[0].time());
    // What the service reads back from history after the snapshot, and the late fixes.
    let mut again: Vec<Input> = seen.iter().copied().filter(|i| i.time() > restart_after).collect();
    again.extend(&stretch);
    let (recomputed, outputs) = engine.replay(snapshot, &again).expect("after the snapshot");
    assert!(!no_signal_between(&outputs, late_from, late_to), "the stretch is riding, not no signal");

    // Then the ride goes on, live.
    let mut state = recomputed;
    let mut after = Vec::new();
    for input in all.iter().filter(|i| i.time() >= synced_at) {
        after.push(engine.step(&mut state, input).expect("in order"));
    }
    assert_eq!(state, in_time, "the same state as if every fix had come in time");
    // The recomputed stretch and what followed are exactly the in-time outputs of those fixes.
    let first = all.iter().position(|i| i.time() > restart_after).expect("inputs after the snapshot");
    let recomputed_outputs: Vec<Output> = outputs.into_iter().chain(after).collect();
    assert_eq!(recomputed_outputs, in_time_outputs[first..].to_vec());
}

#[test]
fn a_restart_from_a_snapshot_emits_each_arrival_once() {
    let course = courses::loop_course(8);
    let ride = ride(&course, &RideOptions::new(22, START));
    let plan = Plan::new(course.clone(), checkpoints(&course, 5_000.0)).expect("a plan");
    let config = Config::default();
    let engine = Engine::new(&plan, &config);
    let all = inputs(&ride);
    let mut state = RiderState::default();
    let mut snapshots = Snapshots::new(200, 900, 8);
    let mut emitted = Vec::new();
    // Killed two thirds of the way, after its last snapshot had been saved (as JSON).
    let crash = all.len() * 2 / 3;
    for input in &all[..crash] {
        let out = engine.step(&mut state, input).expect("in order");
        emitted.push((input.time(), out));
        snapshots.offer(&state);
    }
    let saved = serde_json::to_string(snapshots.latest().expect("a snapshot")).expect("serialises");
    // Restarted: the snapshot back, the inputs after it read again (including some it had
    // already taken before it died, whose outputs the service overwrites: same keys).
    let mut state: RiderState = serde_json::from_str(&saved).expect("deserialises");
    let resume = state.last_time().expect("a snapshot with inputs");
    emitted.retain(|(t, _)| *t <= resume);
    for input in all.iter().filter(|i| i.time() > resume) {
        emitted.push((input.time(), engine.step(&mut state, input).expect("in order")));
    }
    // Redelivered inputs (the same time again) give nothing.
    assert_eq!(engine.step(&mut state, all.last().expect("inputs")), Ok(Output::default()));
    // The finish (one past the last checkpoint) too.
    let mut arrivals = vec![0; plan.finish_index() + 1];
    for (_, out) in &emitted {
        for e in &out.events {
            if let Event::Checkpoint(CheckpointEvent::Arrived { index, .. }) = e {
                arrivals[*index] += 1;
            }
        }
    }
    assert!(arrivals.iter().all(|&n| n == 1), "each checkpoint and the finish once: {arrivals:?}");
    let (in_time, _) = engine.replay(RiderState::default(), &all).expect("in order");
    assert_eq!(state, in_time);
}
