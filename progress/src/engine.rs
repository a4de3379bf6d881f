//! The engine: one rider's progress on one event, fix after fix, as a pure function of
//! `(state, input) → (state, output)`.
//!
//! Everything a rider's progress needs to go on is in [`RiderState`], which serialises
//! (serde) and holds no reference to the course, so the service can keep it, snapshot it
//! and rebuild from it: the same state and the same inputs in time order always give the
//! same state and the same outputs, bit for bit. That is what makes a restart emit nothing
//! twice (the state says which checkpoints are done) and late data exact: re-run from a
//! snapshot taken before the late stretch ([`crate::snapshots`]).
//!
//! Per fix, in order: matching ([`crate::matching`]), off course ([`crate::off_course`]),
//! status and stops ([`crate::status`]), checkpoints ([`crate::checkpoints`]), the finish,
//! and what the ETA model learns ([`crate::eta`]).

use serde::{Deserialize, Serialize};
use velometry_core::course::Course;
use velometry_core::time::Nanos;

use crate::checkpoints::{self, Checkpoint, CheckpointConfig, CheckpointEvent, CheckpointState};
use crate::eta::{Eta, EtaConfig, EtaState, Observation, Profile};
use crate::fix::Fix;
use crate::index::CourseIndex;
use crate::local_time::utc_offset_s;
use crate::matching::{match_fix, MatchConfig, MatchState};
use crate::off_course::{Change, OffCourseConfig, OffCourseState};
use crate::status::{Status, StatusConfig, StatusEvent, StatusState};

/// Every threshold, by module; each section's defaults are documented there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Matching fixes to the course.
    pub matching: MatchConfig,
    /// Off-course hysteresis.
    pub off_course: OffCourseConfig,
    /// Checkpoint arrivals.
    pub checkpoints: CheckpointConfig,
    /// Stops and statuses.
    pub status: StatusConfig,
    /// The ETA model.
    pub eta: EtaConfig,
    /// A rider this close to the end of the course has finished, metres.
    pub finish_m: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            matching: MatchConfig::default(),
            off_course: OffCourseConfig::default(),
            checkpoints: CheckpointConfig::default(),
            status: StatusConfig::default(),
            eta: EtaConfig::default(),
            finish_m: 50.0,
        }
    }
}

/// Why a course and checkpoints do not make a plan.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A checkpoint outside the course.
    #[error("checkpoint {name:?} at {distance_m} m is not on the course (0 to {length_m:.0} m)")]
    CheckpointOutside {
        /// Its name.
        name: String,
        /// Its distance along the course.
        distance_m: f64,
        /// The course's length.
        length_m: f64,
    },
}

/// An event's course, prepared once and shared by all its riders.
#[derive(Debug)]
pub struct Plan {
    course: Course,
    index: CourseIndex,
    profile: Profile,
    checkpoints: Vec<Checkpoint>,
    finish_cutoff: Option<Nanos>,
}

impl Plan {
    /// Prepares `course` with its checkpoints (sorted by distance along it).
    ///
    /// # Errors
    /// [`PlanError::CheckpointOutside`] for a checkpoint not between the start and the end.
    pub fn new(course: Course, mut checkpoints: Vec<Checkpoint>) -> Result<Plan, PlanError> {
        let length_m = course.length_m();
        if let Some(cp) = checkpoints.iter().find(|c| !(0.0..=length_m).contains(&c.distance_m)) {
            return Err(PlanError::CheckpointOutside {
                name: cp.name.clone(),
                distance_m: cp.distance_m,
                length_m,
            });
        }
        checkpoints.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        Ok(Plan {
            index: CourseIndex::new(&course),
            profile: Profile::new(&course),
            course,
            checkpoints,
            finish_cutoff: None,
        })
    }

    /// The plan with the finish closing at `cutoff`.
    #[must_use]
    pub fn with_finish_cutoff(self, cutoff: Option<Nanos>) -> Plan {
        Plan { finish_cutoff: cutoff, ..self }
    }

    /// The finish's index among the checkpoint outcomes: one past the last checkpoint, as
    /// [`velometry_core::event::Event::finish_index`] says. Its arrival and its cut-off
    /// breached are outcomes like a checkpoint's.
    pub fn finish_index(&self) -> usize {
        self.checkpoints.len()
    }

    /// The course.
    pub fn course(&self) -> &Course {
        &self.course
    }

    /// The checkpoints, in order along the course.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The course's gradient profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The course's spatial index.
    pub fn index(&self) -> &CourseIndex {
        &self.index
    }
}

/// What the engine takes, in time order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A position.
    Fix(Fix),
    /// The organiser scratched the rider (DNF).
    Scratched {
        /// When.
        time: Nanos,
    },
    /// The organiser reinstated them.
    Reinstated {
        /// When.
        time: Nanos,
    },
}

impl Input {
    /// When it happened.
    pub fn time(&self) -> Nanos {
        match self {
            Input::Fix(f) => f.time,
            Input::Scratched { time } | Input::Reinstated { time } => *time,
        }
    }
}

/// Something that happened, dated (often earlier than the fix that revealed it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Left the course.
    LeftCourse {
        /// When.
        time: Nanos,
        /// Where along the course the rider was.
        at_m: f64,
    },
    /// Back on the course.
    Rejoined {
        /// When.
        time: Nanos,
        /// Where along it.
        at_m: f64,
    },
    /// A checkpoint's arrival, miss or breached cut-off.
    Checkpoint(CheckpointEvent),
    /// A change of status, or a stop that ended.
    Status(StatusEvent),
    /// Reached the finish.
    Finished {
        /// When (interpolated).
        time: Nanos,
    },
}

/// The rider's progress at one fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The fix's time.
    pub time: Nanos,
    /// Where the rider is along the course, metres (for the map).
    pub current_m: f64,
    /// The furthest along the course they have been, metres (for standings).
    pub progress_m: f64,
    /// Distance left to the finish from the furthest point, metres.
    pub to_go_m: f64,
    /// Distance from the course within reach, metres.
    pub from_course_m: f64,
    /// Off course (with hysteresis).
    pub off_course: bool,
    /// Status at this fix.
    pub status: Status,
}

/// What one input gave.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Output {
    /// The rider's progress (for fixes).
    pub progress: Option<Progress>,
    /// What happened, in order.
    pub events: Vec<Event>,
}

/// Why an input cannot be taken now.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum StepError {
    /// Earlier than the last input taken: recompute from a snapshot before it.
    #[error("input at {time} is earlier than the last one taken ({last}): recompute from a snapshot")]
    Late {
        /// The input's time.
        time: Nanos,
        /// The last input's time.
        last: Nanos,
    },
}

/// Everything the engine remembers of one rider on one event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RiderState {
    matching: MatchState,
    off_course: OffCourseState,
    checkpoints: CheckpointState,
    status: StatusState,
    eta: EtaState,
    /// The first fix's time.
    start: Option<Nanos>,
    /// The last input's time.
    last_time: Option<Nanos>,
    /// The last fix: time, distance along the course, position.
    last_fix: Option<(Nanos, f64, f64, f64)>,
    /// Local time's offset from UTC, and the time and place it was looked up.
    offset: Option<(i32, Nanos, f64, f64)>,
    finished: Option<Nanos>,
    /// Whether the finish's cut-off passed before the finish.
    #[serde(default)]
    finish_breached: bool,
    scratched: Option<Nanos>,
    inputs: u64,
}

impl RiderState {
    /// The last input's time.
    pub fn last_time(&self) -> Option<Nanos> {
        self.last_time
    }

    /// How many inputs have been taken.
    pub fn inputs(&self) -> u64 {
        self.inputs
    }

    /// Where the rider is along the course, metres.
    pub fn current_m(&self) -> f64 {
        self.matching.current_m()
    }

    /// The furthest along the course they have been, metres.
    pub fn progress_m(&self) -> f64 {
        self.matching.progress_m()
    }

    /// Each checkpoint's outcome, in order along the course.
    pub fn checkpoints(&self) -> impl Iterator<Item = checkpoints::Outcome> + '_ {
        self.checkpoints.outcomes()
    }

    /// When the rider finished.
    pub fn finished(&self) -> Option<Nanos> {
        self.finished
    }

    /// The first fix's time.
    pub fn start(&self) -> Option<Nanos> {
        self.start
    }

    /// What the ETA model has learned.
    pub fn eta_model(&self) -> &EtaState {
        &self.eta
    }
}

/// ETAs from where the rider is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Etas {
    /// The next checkpoint not yet reached, and when.
    pub next_checkpoint: Option<(usize, Eta)>,
    /// The finish.
    pub finish: Eta,
}

/// Runs riders' progress on one plan with one configuration.
#[derive(Debug, Clone, Copy)]
pub struct Engine<'a> {
    plan: &'a Plan,
    config: &'a Config,
}

/// Seconds between local-time look-ups for a rider, and degrees they may move between.
const OFFSET_REFRESH_S: i64 = 3 * 3_600;
const OFFSET_REFRESH_DEG: f64 = 0.5;

impl<'a> Engine<'a> {
    /// An engine for `plan` with `config`.
    pub fn new(plan: &'a Plan, config: &'a Config) -> Engine<'a> {
        Engine { plan, config }
    }

    /// Takes one input. An input at the same time as the last one is a duplicate (a
    /// redelivery) and gives nothing.
    ///
    /// # Errors
    /// [`StepError::Late`] for an input earlier than the last one taken.
    pub fn step(&self, state: &mut RiderState, input: &Input) -> Result<Output, StepError> {
        let time = input.time();
        match state.last_time {
            Some(last) if time < last => return Err(StepError::Late { time, last }),
            Some(last) if time == last => return Ok(Output::default()),
            _ => {}
        }
        state.last_time = Some(time);
        state.inputs += 1;
        let mut out = Output::default();
        match input {
            Input::Scratched { time } => {
                if state.scratched.is_none() {
                    state.scratched = Some(*time);
                    out.events
                        .push(Event::Status(StatusEvent::Changed { time: *time, status: Status::Scratched }));
                }
            }
            Input::Reinstated { time } => {
                if state.scratched.take().is_some() {
                    let status = self.overall(state, state.status.status());
                    out.events.push(Event::Status(StatusEvent::Changed { time: *time, status }));
                }
            }
            Input::Fix(fix) => self.fix(state, fix, &mut out),
        }
        Ok(out)
    }

    fn overall(&self, state: &RiderState, moving: Status) -> Status {
        if state.scratched.is_some() {
            Status::Scratched
        } else if state.finished.is_some() {
            Status::Finished
        } else {
            moving
        }
    }

    fn offset_s(&self, state: &mut RiderState, fix: &Fix) -> i32 {
        match state.offset {
            Some((offset, time, lat, lon))
                if (fix.time - time).abs() < OFFSET_REFRESH_S * 1_000_000_000
                    && (fix.lat - lat).abs() < OFFSET_REFRESH_DEG
                    && (fix.lon - lon).abs() < OFFSET_REFRESH_DEG =>
            {
                offset
            }
            _ => {
                let offset = utc_offset_s(self.config.status.clock, fix.lat, fix.lon, fix.time);
                state.offset = Some((offset, fix.time, fix.lat, fix.lon));
                offset
            }
        }
    }

    fn fix(&self, state: &mut RiderState, fix: &Fix, out: &mut Output) {
        let (plan, config) = (self.plan, self.config);
        let length_m = plan.course.length_m();
        state.start.get_or_insert(fix.time);
        if state.finished.is_some() {
            // After the finish a rider rides to a hotel: nothing of it is progress.
            out.progress = Some(Progress {
                time: fix.time,
                current_m: length_m,
                progress_m: length_m,
                to_go_m: 0.0,
                from_course_m: 0.0,
                off_course: false,
                status: self.overall(state, Status::Finished),
            });
            return;
        }
        let m = match_fix(&plan.index, &config.matching, &mut state.matching, fix);
        let previous = state.last_fix.replace((fix.time, m.current_m, fix.lat, fix.lon));
        match state.off_course.update(&config.off_course, fix.time, m.from_course_m, m.current_m) {
            Some(Change::Left { time, at_m }) => out.events.push(Event::LeftCourse { time, at_m }),
            Some(Change::Rejoined) => out.events.push(Event::Rejoined { time: fix.time, at_m: m.current_m }),
            None => {}
        }
        for e in state.status.update(&config.status, fix.time, fix.lat, fix.lon, m.current_m) {
            if let StatusEvent::Changed { time, status: Status::Stopped } = e {
                state.checkpoints.discard_since(time);
            }
            out.events.push(Event::Status(e));
        }
        let stopped = state.status.current_stop().is_some();
        if let Some((t0, d0, _, _)) = previous {
            let step = checkpoints::Step {
                from: (t0, d0),
                to: (fix.time, m.current_m),
                jump: m.jump.map(|j| (j.since, j.ridden_m)),
                stopped,
            };
            let eta = &state.eta;
            let share = |a, c, b| eta.share(&plan.profile, &config.eta, a, c, b);
            let events = state.checkpoints.update(&plan.checkpoints, &config.checkpoints, step, share);
            out.events.extend(events.into_iter().map(Event::Checkpoint));
            let offset_s = self.offset_s(state, fix);
            let o = Observation { from: (t0, d0), to: (fix.time, m.current_m), riding: !stopped, offset_s };
            state.eta.observe(&plan.profile, &config.eta, o);
            let line = length_m - config.finish_m;
            if d0 < line && m.current_m >= line {
                let f = (line - d0) / (m.current_m - d0);
                let time = t0 + ((fix.time - t0) as f64 * f).round() as Nanos;
                state.finished = Some(time);
                let late = plan.finish_cutoff.is_some_and(|cutoff| time > cutoff);
                if late && !state.finish_breached {
                    state.finish_breached = true;
                    let (index, time) = (plan.finish_index(), plan.finish_cutoff.unwrap_or(time));
                    out.events.push(Event::Checkpoint(CheckpointEvent::CutoffBreached { index, time }));
                }
                let index = plan.finish_index();
                out.events.push(Event::Checkpoint(CheckpointEvent::Arrived { index, time, late }));
                out.events.push(Event::Finished { time });
                if state.scratched.is_none() {
                    out.events.push(Event::Status(StatusEvent::Changed { time, status: Status::Finished }));
                }
            }
        }
        if let Some(cutoff) = plan.finish_cutoff.filter(|c| fix.time > *c) {
            if state.finished.is_none() && !state.finish_breached {
                state.finish_breached = true;
                let index = plan.finish_index();
                out.events.push(Event::Checkpoint(CheckpointEvent::CutoffBreached { index, time: cutoff }));
            }
        }
        out.progress = Some(Progress {
            time: fix.time,
            current_m: m.current_m,
            progress_m: m.progress_m,
            to_go_m: (length_m - m.progress_m).max(0.0),
            from_course_m: m.from_course_m,
            off_course: state.off_course.is_off(),
            status: self.overall(state, state.status.status()),
        });
    }

    /// Takes `inputs` (sorted here by time; duplicates give nothing) from `snapshot`: the
    /// pure function the service re-runs for late data.
    ///
    /// # Errors
    /// [`StepError::Late`] for an input earlier than the snapshot's last one.
    pub fn replay(
        &self,
        snapshot: RiderState,
        inputs: &[Input],
    ) -> Result<(RiderState, Vec<Output>), StepError> {
        let mut sorted = inputs.to_vec();
        sorted.sort_by_key(Input::time);
        let mut state = snapshot;
        let mut outputs = Vec::with_capacity(sorted.len());
        for input in &sorted {
            outputs.push(self.step(&mut state, input)?);
        }
        Ok((state, outputs))
    }

    /// The status at `now` (no signal after a silence while riding).
    pub fn status_at(&self, state: &RiderState, now: Nanos) -> Status {
        self.overall(state, state.status.status_at(&self.config.status, now))
    }

    /// ETAs at `now` to the next checkpoint and the finish; `None` before the first fix
    /// and after the finish.
    pub fn eta(&self, state: &RiderState, now: Nanos) -> Option<Etas> {
        let (_, from_m, lat, lon) = state.last_fix?;
        if state.finished.is_some() {
            return None;
        }
        let offset_s = utc_offset_s(self.config.status.clock, lat, lon, now);
        let eta =
            |to_m: f64| state.eta.eta(&self.plan.profile, &self.config.eta, now, offset_s, from_m, to_m);
        let next = state
            .checkpoints
            .next_pending(&self.plan.checkpoints)
            .filter(|&i| self.plan.checkpoints[i].distance_m > from_m)
            .map(|i| (i, eta(self.plan.checkpoints[i].distance_m)));
        Some(Etas { next_checkpoint: next, finish: eta(self.plan.course.length_m()) })
    }
}
