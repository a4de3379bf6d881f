//! The whole state machine per fix (matching, off course, status and stops, checkpoints,
//! the finish, the ETA model's learning), and an ETA query, for the progress service's CPU
//! budget: 1,000 riders at one fix every 10 s plus 100 at 1 Hz is 200 fixes a second.
//!
//! `cargo bench -p velometry-progress --bench engine`
//!
//! A 1,000 km course with a checkpoint every 50 km, ridden over days by a simulated rider
//! (fix every 10 s), and its first day at 1 Hz. Printed first: per-call percentiles, and
//! the share of one core that 200 fixes a second (and one ETA query per rider per fix)
//! cost at the measured mean. Then criterion's throughput of the same streams.

mod rides;
mod timing;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use velometry_core::testkit::courses;
use velometry_progress::checkpoints::Checkpoint;
use velometry_progress::{Config, Engine, Plan, RiderState};

use rides::{inputs, simulated};
use timing::{percentiles, timed};

fn bench(c: &mut Criterion) {
    let course = courses::winding(2, 1_000_000.0);
    let checkpoints = (1..20)
        .map(|k| Checkpoint { name: format!("CP{k}"), distance_m: f64::from(k) * 50_000.0, cutoff: None })
        .collect();
    let plan = Plan::new(course, checkpoints).expect("a plan");
    let config = Config::default();
    let engine = Engine::new(&plan, &config);
    let every_10s = inputs(&simulated(plan.course(), 5, 10));
    let mut every_1s = inputs(&simulated(plan.course(), 6, 1));
    every_1s.truncate(86_400);

    let mut mean_step = 0.0;
    for (name, stream) in
        [("fix every 10 s, the whole ride", &every_10s), ("fix every 1 s, a day", &every_1s)]
    {
        let mut state = RiderState::default();
        let times = timed(stream, |i| {
            black_box(engine.step(&mut state, i).expect("in order"));
        });
        let mean = times.iter().sum::<u64>() as f64 / times.len() as f64;
        mean_step = f64::max(mean_step, mean);
        eprintln!("step, {name}: {}; mean {:.2} µs", percentiles(&times), mean / 1e3);
    }
    // ETA queries along the ride: a state every 100 fixes.
    let mut state = RiderState::default();
    let mut states = Vec::new();
    for (n, i) in every_10s.iter().enumerate() {
        engine.step(&mut state, i).expect("in order");
        if n % 100 == 50 {
            states.push((state.clone(), i.time()));
        }
    }
    let times = timed(&states, |(s, now)| {
        black_box(engine.eta(s, *now));
    });
    let mean_eta = times.iter().sum::<u64>() as f64 / times.len() as f64;
    eprintln!("eta (next checkpoint and finish): {}; mean {:.2} µs", percentiles(&times), mean_eta / 1e3);
    let per_second = 200.0 * (mean_step + mean_eta) / 1e9;
    eprintln!(
        "budget: 200 fixes/s × ({:.2} µs step + {:.2} µs ETA) = {:.3} % of one core (goal < 10 %)",
        mean_step / 1e3,
        mean_eta / 1e3,
        per_second * 100.0
    );

    let mut group = c.benchmark_group("engine");
    for (name, stream) in [("ride_10s", &every_10s), ("day_1hz", &every_1s)] {
        group.throughput(Throughput::Elements(stream.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut state = RiderState::default();
                for i in stream.iter() {
                    black_box(engine.step(&mut state, i).expect("in order"));
                }
            })
        });
    }
    group.throughput(Throughput::Elements(states.len() as u64));
    group.bench_function("eta", |b| {
        b.iter(|| {
            for (s, now) in &states {
                black_box(engine.eta(s, *now));
            }
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! { name = benches; config = config(); targets = bench }
criterion_main!(benches);
