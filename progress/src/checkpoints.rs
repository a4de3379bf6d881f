//! Checkpoints: when each was reached, which were missed, which cut-offs passed.
//!
//! A checkpoint at `c` metres is **crossed** between two consecutive fixes whose distances
//! along the course lie on either side of it; the arrival time is interpolated between the
//! two fixes by the rider's modelled moving time over the gradients between (the engine
//! passes the ETA model's speeds; between fixes seconds apart that is interpolation by
//! distance, over a gap in the signal it puts the time where the climbs are). GPS noise moves a stopped rider's match back and forth by
//! tens of metres, so a crossing only counts as an **arrival** once the rider is
//! `confirm_m` past the checkpoint, is forgotten when they fall `forget_m` back before
//! it, and the first crossing of a stop (a rider stopped just before a checkpoint, whose
//! noise crosses it) is taken back when the stop is confirmed: the arrival is the crossing
//! made when they ride on. When the match jumps (a shortcut found again, another pass
//! re-acquired), the rider has been on the part jumped to for some distance already: the
//! checkpoints on that distance were ridden (their arrivals interpolated over it), and the
//! ones before it, skipped, are **missed**. A cut-off passes once the time of a fix is past it
//! with the checkpoint not reached; a late arrival still counts, marked late.
//!
//! Each checkpoint's outcome is kept in the state, so each arrival, miss and breach is
//! emitted exactly once, also across a restart from a snapshot.

use serde::{Deserialize, Serialize};
use velometry_core::time::Nanos;

/// A checkpoint of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its name, as the organiser gives it.
    pub name: String,
    /// Distance along the course, metres.
    pub distance_m: f64,
    /// The time by which it must be reached.
    pub cutoff: Option<Nanos>,
}

/// Thresholds of checkpoint arrivals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// How far past a checkpoint the rider must be for a crossing to be an arrival, metres.
    pub confirm_m: f64,
    /// How far back before it forgets a crossing, metres.
    pub forget_m: f64,
}

impl Default for CheckpointConfig {
    fn default() -> CheckpointConfig {
        CheckpointConfig { confirm_m: 60.0, forget_m: 60.0 }
    }
}

/// What happened at a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Not yet reached.
    Pending,
    /// Reached at this time.
    Reached(Nanos),
    /// Passed by a jump of the match at this time.
    Missed(Nanos),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct One {
    outcome: Outcome,
    crossing: Option<Nanos>,
    breached: bool,
}

/// Every checkpoint's outcome for one rider.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckpointState {
    each: Vec<One>,
}

/// An event of one checkpoint (its index among the event's checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum CheckpointEvent {
    /// Reached at `time`; `late` when after its cut-off.
    Arrived {
        /// Which checkpoint.
        index: usize,
        /// The interpolated arrival time.
        time: Nanos,
        /// After the cut-off.
        late: bool,
    },
    /// Passed by a jump of the match.
    Missed {
        /// Which checkpoint.
        index: usize,
        /// The fix that jumped past it.
        time: Nanos,
    },
    /// Its cut-off passed before it was reached.
    CutoffBreached {
        /// Which checkpoint.
        index: usize,
        /// The cut-off.
        time: Nanos,
    },
}

/// One step of a rider along the course, from the previous fix to this one.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Time and distance along the course of the previous fix.
    pub from: (Nanos, f64),
    /// And of this one.
    pub to: (Nanos, f64),
    /// The match jumped: since when the rider was on the part jumped to, and how far along
    /// it they had ridden. Checkpoints in that stretch were ridden; those before it skipped.
    pub jump: Option<(Nanos, f64)>,
    /// The rider is in a confirmed stop: crossings are noise.
    pub stopped: bool,
}

impl CheckpointState {
    /// Each checkpoint's outcome, in the event's order.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.each.iter().map(|o| o.outcome)
    }

    /// The first checkpoint not yet reached nor missed.
    pub fn next_pending(&self, checkpoints: &[Checkpoint]) -> Option<usize> {
        (0..checkpoints.len()).find(|&i| self.each.get(i).is_none_or(|o| o.outcome == Outcome::Pending))
    }

    /// Takes a step; returns what it made happen, in checkpoint order. `share(a, c, b)` is
    /// the share of the time from `a` to `b` along the course that reaching `c` takes (by
    /// distance, or by a model of the rider's speed on the gradients between).
    pub fn update(
        &mut self,
        checkpoints: &[Checkpoint],
        config: &CheckpointConfig,
        step: Step,
        share: impl Fn(f64, f64, f64) -> f64,
    ) -> Vec<CheckpointEvent> {
        if self.each.len() != checkpoints.len() {
            self.each.resize(
                checkpoints.len(),
                One { outcome: Outcome::Pending, crossing: None, breached: false },
            );
        }
        let mut events = Vec::new();
        let ((t0, d0), (t1, d1)) = (step.from, step.to);
        for (index, (cp, one)) in checkpoints.iter().zip(&mut self.each).enumerate() {
            if one.outcome != Outcome::Pending {
                continue;
            }
            let c = cp.distance_m;
            if d0 < c && c <= d1 {
                // After a jump, only the stretch ridden on the part jumped to was ridden.
                let (t0, d0) = match step.jump {
                    Some((_, ridden_m)) if c < d1 - ridden_m => {
                        one.outcome = Outcome::Missed(t1);
                        events.push(CheckpointEvent::Missed { index, time: t1 });
                        continue;
                    }
                    Some((since, ridden_m)) => (since, d1 - ridden_m),
                    None => (t0, d0),
                };
                if !step.stopped && one.crossing.is_none() {
                    let f = if d1 > d0 { share(d0, c, d1).clamp(0.0, 1.0) } else { 1.0 };
                    one.crossing = Some(t0 + ((t1 - t0) as f64 * f).round() as Nanos);
                }
            }
            if d1 < c - config.forget_m {
                one.crossing = None;
            }
            if let Some(cutoff) = cp.cutoff {
                let reached_in_time = one.crossing.is_some_and(|t| t <= cutoff);
                if !one.breached && t1 > cutoff && !reached_in_time {
                    one.breached = true;
                    events.push(CheckpointEvent::CutoffBreached { index, time: cutoff });
                }
            }
            if let Some(time) = one.crossing.filter(|_| d1 >= c + config.confirm_m) {
                one.outcome = Outcome::Reached(time);
                let late = cp.cutoff.is_some_and(|cutoff| time > cutoff);
                events.push(CheckpointEvent::Arrived { index, time, late });
            }
        }
        events
    }

    /// Takes back crossings made since `since`: a stop that began then was confirmed, and
    /// they were its noise.
    pub fn discard_since(&mut self, since: Nanos) {
        for one in &mut self.each {
            if one.crossing.is_some_and(|t| t >= since) {
                one.crossing = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cps() -> Vec<Checkpoint> {
        vec![
            Checkpoint { name: "A".into(), distance_m: 1_000.0, cutoff: None },
            Checkpoint { name: "B".into(), distance_m: 2_000.0, cutoff: Some(500) },
        ]
    }

    fn by_distance(a: f64, c: f64, b: f64) -> f64 {
        (c - a) / (b - a)
    }

    fn step(from: (Nanos, f64), to: (Nanos, f64)) -> Step {
        Step { from, to, jump: None, stopped: false }
    }

    #[test]
    fn an_arrival_is_interpolated_confirmed_and_said_once() {
        let (cps, config) = (cps(), CheckpointConfig::default());
        let mut s = CheckpointState::default();
        assert_eq!(s.update(&cps, &config, step((0, 900.0), (100, 1_040.0)), by_distance), vec![]);
        let events = s.update(&cps, &config, step((100, 1_040.0), (110, 1_100.0)), by_distance);
        // 900 → 1,040 m over 100 ns: 1,000 m at 71 ns.
        assert_eq!(events, vec![CheckpointEvent::Arrived { index: 0, time: 71, late: false }]);
        assert_eq!(s.update(&cps, &config, step((110, 1_100.0), (120, 990.0)), by_distance), vec![]);
        assert_eq!(s.update(&cps, &config, step((120, 990.0), (130, 1_200.0)), by_distance), vec![], "once");
        assert_eq!(s.next_pending(&cps), Some(1));
    }

    #[test]
    fn noise_is_forgotten_jumps_miss_and_cutoffs_breach() {
        let (cps, config) = (cps(), CheckpointConfig::default());
        let mut s = CheckpointState::default();
        s.update(&cps, &config, step((0, 990.0), (10, 1_010.0)), by_distance);
        s.update(&cps, &config, step((10, 1_010.0), (20, 900.0)), by_distance);
        s.update(&cps, &config, step((20, 900.0), (30, 995.0)), by_distance);
        let events = s.update(&cps, &config, step((30, 995.0), (40, 1_100.0)), by_distance);
        assert!(matches!(events[..], [CheckpointEvent::Arrived { index: 0, time: 30, .. }]), "{events:?}");
        let jump = Step { from: (40, 1_100.0), to: (600, 2_500.0), jump: Some((500, 400.0)), stopped: false };
        let events = s.update(&cps, &config, jump, by_distance);
        assert_eq!(events, vec![CheckpointEvent::Missed { index: 1, time: 600 }], "2,100–2,500 m was ridden");
        let mut ridden = CheckpointState::default();
        let jump = Step { from: (40, 1_100.0), to: (600, 2_100.0), jump: Some((400, 200.0)), stopped: false };
        let events = ridden.update(&cps, &config, jump, by_distance);
        // Ridden from 1,900 m at 400 to 2,100 m at 600: 2,000 m at 500, in time.
        assert_eq!(events, vec![CheckpointEvent::Arrived { index: 1, time: 500, late: false }]);
        let mut late = CheckpointState::default();
        let events = late.update(&cps, &config, step((0, 1_100.0), (600, 1_900.0)), by_distance);
        assert_eq!(events, vec![CheckpointEvent::CutoffBreached { index: 1, time: 500 }]);
        let events = late.update(&cps, &config, step((600, 1_900.0), (700, 2_100.0)), by_distance);
        assert_eq!(events, vec![CheckpointEvent::Arrived { index: 1, time: 650, late: true }]);
    }

    #[test]
    fn a_stop_takes_back_its_crossings() {
        let (cps, config) = (cps(), CheckpointConfig::default());
        let mut s = CheckpointState::default();
        s.update(&cps, &config, step((0, 980.0), (10, 1_010.0)), by_distance);
        s.discard_since(5);
        let stopped = Step { from: (10, 1_010.0), to: (20, 990.0), jump: None, stopped: true };
        s.update(&cps, &config, stopped, by_distance);
        s.update(&cps, &config, Step { stopped: true, ..step((20, 990.0), (30, 1_005.0)) }, by_distance);
        s.update(&cps, &config, step((1_000, 995.0), (1_010, 1_005.0)), by_distance);
        let events = s.update(&cps, &config, step((1_010, 1_005.0), (1_020, 1_070.0)), by_distance);
        assert!(matches!(events[..], [CheckpointEvent::Arrived { index: 0, time: 1_005, .. }]), "{events:?}");
    }
}
