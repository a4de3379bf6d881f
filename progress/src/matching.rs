//! Matching: the distance along the course of every fix.
//!
//! A fix is matched to the segment that best explains it among those the rider could have
//! reached: the **window** is every part of the course within `max_speed × time since the
//! last match + slack` of the last match, forward *and* back (a rider who turns back is
//! followed back). Inside it, each segment within `radius_m` of the fix is a candidate,
//! scored as the sum of
//! - its distance from the fix over `sigma_m` (GPS noise),
//! - how much it disagrees with the rider's direction of travel (`heading_weight × (1 −
//!   cos θ) / 2`, the direction from the previous fix when it is close in time and far
//!   enough, else the device's heading), which tells the two legs of an out-and-back and the
//!   two roads of a crossing apart,
//! - continuity: how far the along-course step differs from the straight distance ridden
//!   since the last match (the transition of Newson and Krumm's map matching), plus a small
//!   cost for going backwards, so that a rider seen still after a gap is found where they
//!   were rather than on another pass of the same road. Its scale grows with the straight
//!   distance and, for a rider seen moving, with `typical_speed_mps × the gap`, so that after
//!   a long gap the direction of travel decides between two passes.
//!
//! The window is what keeps the loop's finish from being matched at its start, a crossing
//! from being taken for the other branch, and a shortcut from ever putting the rider
//! further along than `max_speed` allows since the last match. When no candidate is in the
//! window (the rider is off course, or took a shortcut onto a part of the course still out
//! of reach), the position holds; the window grows with time, so the rider is found again
//! as soon as they could have got there.
//!
//! **Re-acquisition.** A choice made after a gap can still be the wrong pass (the return leg
//! of an out-and-back, seen from its outbound leg). When the matched segment points against
//! the rider's travel for `reacquire_fixes` fixes in a row while another part of the course
//! near the fix agrees with it, and that part is within what the rider could have ridden
//! since their last *confident* match (one whose heading agreed), the match moves there.
//! The same count re-acquires a rider who is near the course but outside the window.
//!
//! Two distances come out: `current_m`, where the rider is (for the map; it goes back when
//! they do), and `progress_m`, the furthest they have been (for standings).

use serde::{Deserialize, Serialize};
use velometry_core::geo::haversine_m;
use velometry_core::time::Nanos;

use crate::fix::Fix;
use crate::index::{dot, heading_vector, sub, xyz, Candidate, CourseIndex, Xyz};

/// Thresholds of matching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchConfig {
    /// The fastest a rider can go, sustained (m/s): bounds the window and every advance.
    pub max_speed_mps: f64,
    /// Added to the reach, metres: GPS noise and the gap between fixes and segments.
    pub slack_m: f64,
    /// A segment further than this from the fix is no candidate, metres.
    pub radius_m: f64,
    /// The GPS noise the distance cost is scaled by, metres.
    pub sigma_m: f64,
    /// The cost of a candidate pointing against the rider's travel (in units of `sigma_m`).
    pub heading_weight: f64,
    /// The extra cost of a step backwards along the course.
    pub backward_cost: f64,
    /// Fixes in a row that must agree before a match moves outside the window or away from
    /// a segment the rider rides against.
    pub reacquire_fixes: u32,
    /// Windows of more segments than this are searched with the R*-tree instead of scanned.
    pub scan_max_segments: usize,
    /// The direction of travel comes from the previous fix when it is at least this far…
    pub motion_min_m: f64,
    /// …and at most this old (seconds); otherwise from the device's heading.
    pub motion_max_s: f64,
    /// Below this device speed (m/s) its heading is noise.
    pub heading_min_speed_mps: f64,
    /// A typical moving speed (m/s): after a gap, a rider who is moving may be this far
    /// along for every second of it, so continuity weighs less.
    pub typical_speed_mps: f64,
}

impl Default for MatchConfig {
    fn default() -> MatchConfig {
        MatchConfig {
            max_speed_mps: 20.0,
            slack_m: 300.0,
            radius_m: 120.0,
            sigma_m: 25.0,
            heading_weight: 3.0,
            backward_cost: 1.0,
            reacquire_fixes: 3,
            scan_max_segments: 256,
            motion_min_m: 25.0,
            motion_max_s: 60.0,
            heading_min_speed_mps: 1.5,
            typical_speed_mps: 6.0,
        }
    }
}

/// A place along the course at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Anchor {
    time: Nanos,
    along_m: f64,
    lat: f64,
    lon: f64,
}

/// A match outside the window, waiting for agreement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Pending {
    time: Nanos,
    along_m: f64,
    count: u32,
}

/// What matching remembers of a rider between fixes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatchState {
    /// The last fix matched to the course.
    last: Option<Anchor>,
    /// The last match whose segment agreed with the rider's travel.
    confident: Option<Anchor>,
    /// The previous fix, matched or not: the direction of travel.
    previous: Option<(Nanos, f64, f64)>,
    /// Its position, also across gaps: the distance ridden between fixes.
    previous_position: Option<(f64, f64)>,
    /// Matches in a row on a segment pointing against the rider's travel.
    against: u32,
    pending: Option<Pending>,
    /// Metres ridden (fix to fix) since the last match, while no candidate was in reach.
    held_m: f64,
    /// Since when, and how far (fix to fix), the rider has been riding a part of the course
    /// other than the one matched: the distance a jump there has really been ridden.
    streak: Option<(Nanos, f64)>,
    current_m: f64,
    progress_m: f64,
}

/// A match that moved to another part of the course than continuity gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jump {
    /// Since when the rider has been on the part jumped to…
    pub since: Nanos,
    /// …and how far they have ridden on it, metres: what lies before it was skipped.
    pub ridden_m: f64,
}

/// The outcome of matching one fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Where the rider is along the course, metres (held while off course).
    pub current_m: f64,
    /// The furthest along the course the rider has been, metres.
    pub progress_m: f64,
    /// The distance from the fix to the part of the course within reach, metres.
    pub from_course_m: f64,
    /// The fix was matched to a segment (within `radius_m`).
    pub matched: bool,
    /// The match jumped: re-acquired elsewhere on the course, or found again further along
    /// than the rider rode while unmatched (a shortcut).
    pub jump: Option<Jump>,
}

impl MatchState {
    /// Where the rider is along the course, metres.
    pub fn current_m(&self) -> f64 {
        self.current_m
    }

    /// The furthest along the course the rider has been, metres.
    pub fn progress_m(&self) -> f64 {
        self.progress_m
    }
}

fn seconds(from: Nanos, to: Nanos) -> f64 {
    (to - from) as f64 / 1e9
}

fn normalised(v: Xyz) -> Option<Xyz> {
    let n = dot(v, v).sqrt();
    (n > 0.0).then(|| [v[0] / n, v[1] / n, v[2] / n])
}

/// The cosine between the rider's travel and a candidate's segment.
fn agreement(motion: Option<Xyz>, c: &Candidate) -> Option<f64> {
    let m = motion?;
    let d = normalised(c.dir)?;
    Some(dot(m, d))
}

/// Matches `fix` against the course and updates `state`.
pub fn match_fix(index: &CourseIndex, config: &MatchConfig, state: &mut MatchState, fix: &Fix) -> Match {
    let p = xyz(fix.lat, fix.lon);
    let motion = motion(config, state.previous, fix, p);
    // What the rider could have ridden since their last confident match bounds every jump.
    let budget_m = state.confident.map_or(f64::INFINITY, |a| {
        a.along_m + config.max_speed_mps * seconds(a.time, fix.time) + config.slack_m
    });
    let heading_cost =
        |c: &Candidate| agreement(motion, c).map_or(0.0, |cos| config.heading_weight * (1.0 - cos) / 2.0);
    let mut out = Match {
        current_m: state.current_m,
        progress_m: state.progress_m,
        from_course_m: f64::INFINITY,
        matched: false,
        jump: None,
    };
    let ridden = state.previous_position.map_or(0.0, |(lat, lon)| haversine_m(lat, lon, fix.lat, fix.lon));
    let chosen = match state.last {
        None => {
            // The first fix: anywhere near the course, the start preferred.
            let length = index.length_m().max(1.0);
            let mut best: Option<(f64, Candidate)> = None;
            index.near(p, config.radius_m, |c| {
                let cost = c.error_m / config.sigma_m + heading_cost(&c) + 2.0 * c.along_m / length;
                if best.is_none_or(|(b, _)| cost < b) {
                    best = Some((cost, c));
                }
            });
            out.from_course_m =
                best.map_or_else(|| index.nearest(p).map_or(f64::INFINITY, |c| c.error_m), |b| b.1.error_m);
            best.map(|b| b.1)
        }
        Some(last) => {
            let reach = config.max_speed_mps * seconds(last.time, fix.time).max(0.0) + config.slack_m;
            let (lo, hi) = (last.along_m - reach, last.along_m + reach);
            let straight = haversine_m(last.lat, last.lon, fix.lat, fix.lon);
            // A rider seen moving may have ridden all the gap long: the straight line says
            // less the longer it is.
            let moving = motion.is_some() && fix.speed.is_none_or(|s| s >= config.heading_min_speed_mps);
            let unseen = if moving { config.typical_speed_mps * seconds(last.time, fix.time) } else { 0.0 };
            let beta = 50.0 + 0.25 * straight + unseen;
            let mut best: Option<(f64, Candidate)> = None;
            let mut nearest = f64::INFINITY;
            let mut consider = |c: Candidate| {
                nearest = nearest.min(c.error_m);
                if c.error_m > config.radius_m {
                    return;
                }
                let step = c.along_m - last.along_m;
                let back = if step < -config.sigma_m { config.backward_cost } else { 0.0 };
                let cost = c.error_m / config.sigma_m
                    + heading_cost(&c)
                    + (step.abs() - straight).abs() / beta
                    + back;
                if best.is_none_or(|(b, _)| cost < b) {
                    best = Some((cost, c));
                }
            };
            if index.window_len(lo, hi) <= config.scan_max_segments {
                index.scan_window(p, lo, hi, &mut consider);
            } else {
                index.near(p, config.radius_m, |c| {
                    if (lo..=hi).contains(&c.along_m) {
                        consider(c);
                    }
                });
                if best.is_none() {
                    nearest = index.nearest(p).map_or(f64::INFINITY, |c| c.error_m);
                }
            }
            out.from_course_m = nearest;
            match best {
                Some((_, c)) => {
                    let against = agreement(motion, &c).is_some_and(|cos| cos < -0.5);
                    state.against = if against { state.against + 1 } else { 0 };
                    state.pending = None;
                    let held_before = std::mem::take(&mut state.held_m);
                    let held_m = held_before + ridden;
                    if against {
                        let streak = state.streak.get_or_insert((fix.time, 0.0));
                        streak.1 += ridden;
                    }
                    let switched = if state.against >= config.reacquire_fixes {
                        // Riding against the matched pass: the other pass, if the rider
                        // could be there.
                        elsewhere(index, config, p, motion, budget_m, &heading_cost)
                    } else {
                        None
                    };
                    if let Some(other) = switched {
                        state.against = 0;
                        out.jump = state.streak.take().map(|(since, ridden_m)| Jump { since, ridden_m });
                        out.from_course_m = other.error_m;
                        Some(other)
                    } else {
                        if !against {
                            // Found again further along than the rider rode meanwhile: the
                            // course between was skipped.
                            let streak = state.streak.take();
                            if held_before > 0.0 && c.along_m - last.along_m > held_m + config.slack_m {
                                let (since, ridden_m) = streak.unwrap_or((fix.time, 0.0));
                                out.jump = Some(Jump { since, ridden_m });
                            }
                        }
                        Some(c)
                    }
                }
                None => {
                    // Nothing within reach: hold, unless the rider keeps agreeing with
                    // another part of the course.
                    state.against = 0;
                    state.held_m += ridden;
                    let other = elsewhere(index, config, p, motion, budget_m, &heading_cost);
                    // On some part of the course, even one out of reach for now.
                    if elsewhere(index, config, p, motion, f64::INFINITY, &heading_cost).is_some() {
                        let streak = state.streak.get_or_insert((fix.time, 0.0));
                        streak.1 += ridden;
                    } else {
                        state.streak = None;
                    }
                    match (other, state.pending) {
                        (Some(o), Some(pend))
                            if (o.along_m - pend.along_m).abs()
                                <= config.max_speed_mps * seconds(pend.time, fix.time) + config.slack_m =>
                        {
                            let count = pend.count + 1;
                            state.pending = Some(Pending { time: fix.time, along_m: o.along_m, count });
                            (count >= config.reacquire_fixes).then(|| {
                                state.pending = None;
                                state.held_m = 0.0;
                                out.jump =
                                    state.streak.take().map(|(since, ridden_m)| Jump { since, ridden_m });
                                out.from_course_m = o.error_m;
                                o
                            })
                        }
                        (Some(o), _) => {
                            state.pending = Some(Pending { time: fix.time, along_m: o.along_m, count: 1 });
                            None
                        }
                        (None, _) => {
                            state.pending = None;
                            None
                        }
                    }
                }
            }
        }
    };
    state.previous = Some((fix.time, fix.lat, fix.lon));
    state.previous_position = Some((fix.lat, fix.lon));
    if let Some(c) = chosen {
        let anchor = Anchor { time: fix.time, along_m: c.along_m, lat: fix.lat, lon: fix.lon };
        state.last = Some(anchor);
        if agreement(motion, &c).is_some_and(|cos| cos > 0.5) {
            state.confident = Some(anchor);
        }
        state.current_m = c.along_m;
        state.progress_m = state.progress_m.max(c.along_m);
        out.matched = true;
        out.current_m = state.current_m;
        out.progress_m = state.progress_m;
    }
    out
}

/// The best part of the course near `p`, anywhere, that agrees with the rider's travel and
/// that they could have reached.
fn elsewhere(
    index: &CourseIndex,
    config: &MatchConfig,
    p: Xyz,
    motion: Option<Xyz>,
    budget_m: f64,
    heading_cost: &impl Fn(&Candidate) -> f64,
) -> Option<Candidate> {
    motion?;
    let mut best: Option<(f64, Candidate)> = None;
    index.near(p, config.radius_m, |c| {
        if c.along_m > budget_m || agreement(motion, &c).is_none_or(|cos| cos <= 0.5) {
            return;
        }
        let cost = c.error_m / config.sigma_m + heading_cost(&c);
        if best.is_none_or(|(b, _)| cost < b) {
            best = Some((cost, c));
        }
    });
    best.map(|b| b.1)
}

/// The rider's direction of travel as a unit vector, when it can be told.
fn motion(config: &MatchConfig, previous: Option<(Nanos, f64, f64)>, fix: &Fix, p: Xyz) -> Option<Xyz> {
    if let Some((time, lat, lon)) = previous {
        if seconds(time, fix.time) <= config.motion_max_s {
            let d = sub(p, xyz(lat, lon));
            if dot(d, d) >= config.motion_min_m * config.motion_min_m {
                return normalised(d);
            }
        }
    }
    let heading = fix.heading?;
    if fix.speed.is_some_and(|s| s < config.heading_min_speed_mps) {
        return None;
    }
    Some(heading_vector(fix.lat, fix.lon, heading))
}
