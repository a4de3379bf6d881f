//! Riding a course with the simulator and running the engine over what the phone sent.

use velometry_collector::simulate::course::{ride, Ride, RideOptions};
use velometry_core::course::Course;
use velometry_core::time::Nanos;
use velometry_progress::checkpoints::Checkpoint;
use velometry_progress::{Config, Engine, Fix, Input, Output, Plan, RiderState};

pub const S: Nanos = 1_000_000_000;
/// 2026-07-01T06:00:00Z: a summer morning in the Alps' foothills, where the small test
/// courses are.
pub const START: Nanos = 1_782_885_600 * S;
/// 2026-07-01T14:00:00Z: a summer morning in California, where the winding courses start.
pub const START_WEST: Nanos = START + 8 * 3_600 * S;

/// The inputs the engine takes for a simulated ride.
pub fn inputs(ride: &Ride) -> Vec<Input> {
    ride.fixes
        .iter()
        .map(|f| Input::Fix(Fix::new(f.time, f.lat, f.lon, Some(f.speed), Some(f.heading)).expect("a fix")))
        .collect()
}

/// Checkpoints every `every_m` along the course, named by their kilometre.
pub fn checkpoints(course: &Course, every_m: f64) -> Vec<Checkpoint> {
    let mut out = Vec::new();
    let mut d = every_m;
    while d < course.length_m() - 500.0 {
        out.push(Checkpoint { name: format!("km {:.0}", d / 1_000.0), distance_m: d, cutoff: None });
        d += every_m;
    }
    out
}

/// A ride and everything the engine said of it.
pub struct Run {
    pub ride: Ride,
    pub plan: Plan,
    pub state: RiderState,
    pub outputs: Vec<Output>,
}

pub fn run(course: Course, options: &RideOptions, checkpoint_every_m: f64) -> Run {
    let ride = ride(&course, options);
    let cps = checkpoints(&course, checkpoint_every_m);
    let plan = Plan::new(course, cps).expect("a plan");
    let config = Config::default();
    let engine = Engine::new(&plan, &config);
    let (state, outputs) = engine.replay(RiderState::default(), &inputs(&ride)).expect("in order");
    Run { ride, plan, state, outputs }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}
