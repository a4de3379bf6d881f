//! ETA accuracy on simulated multi-day rides, side by side with the linear ETA (pace so far
//! × distance left) that every peer gives.
//!
//! `cargo bench -p velometry-progress --bench eta`
//!
//! Twelve riders (different seeds: fitness, bedtimes, stops, dropouts) on winding courses of
//! 500, 800 and 1,100 km, a fix every 10 s. When a rider's progress first reaches 25 %, 50 %
//! and 75 % of the course, both ETAs to the finish are taken and compared with when the
//! rider really finished. Printed: the median and 90th-percentile absolute error in hours
//! of each, and how often the truth fell inside the model's p10–p90 range (80 % would be a
//! calibrated range). This is an accuracy report, not a timing: it needs no criterion.

mod rides;

use velometry_core::testkit::courses;
use velometry_progress::eta::linear_eta;
use velometry_progress::{Config, Engine, Plan, RiderState};

use rides::{inputs, simulated};

const FRACTIONS: [f64; 3] = [0.25, 0.5, 0.75];

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let config = Config::default();
    // Per fraction: (model error h, linear error h, inside the range, its width h).
    let mut results: Vec<Vec<(f64, f64, bool, f64)>> = vec![Vec::new(); FRACTIONS.len()];
    for seed in 1..=12_u64 {
        let length = [500_000.0, 800_000.0, 1_100_000.0][(seed % 3) as usize];
        let course = courses::winding(100 + seed, length);
        let plan = Plan::new(course, Vec::new()).expect("a plan");
        let engine = Engine::new(&plan, &config);
        let ride = simulated(plan.course(), seed, 10);
        let Some(finished) = ride.truth.finished else { continue };
        let mut state = RiderState::default();
        let mut next = 0;
        for input in inputs(&ride) {
            engine.step(&mut state, &input).expect("in order");
            if next == FRACTIONS.len() || state.progress_m() < FRACTIONS[next] * length {
                continue;
            }
            let now = input.time();
            let eta = engine.eta(&state, now).expect("riding").finish;
            let start = state.start().expect("started");
            let linear = linear_eta(start, now, state.progress_m(), length).expect("some distance");
            let hours = |t: i64| (t - finished).abs() as f64 / 3.6e12;
            let width = (eta.p90 - eta.p10) as f64 / 3.6e12;
            results[next].push((
                hours(eta.p50),
                hours(linear),
                (eta.p10..=eta.p90).contains(&finished),
                width,
            ));
            next += 1;
        }
    }
    println!(
        "| at | rides | model median | model p90 | linear median | linear p90 | truth in model p10–p90 | \
         range width (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (f, rows) in FRACTIONS.iter().zip(&results) {
        let model: Vec<f64> = rows.iter().map(|r| r.0).collect();
        let linear: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let inside = rows.iter().filter(|r| r.2).count();
        let width: Vec<f64> = rows.iter().map(|r| r.3).collect();
        println!(
            "| {:.0} % | {} | {:.1} h | {:.1} h | {:.1} h | {:.1} h | {} of {} | {:.1} h |",
            f * 100.0,
            rows.len(),
            quantile(model.clone(), 0.5),
            quantile(model, 0.9),
            quantile(linear.clone(), 0.5),
            quantile(linear, 0.9),
            inside,
            rows.len(),
            quantile(width, 0.5)
        );
    }
}
