//! Matching one fix against a TransAm-scale course: 6,800 km, 113,000 points.
//!
//! `cargo bench -p velometry-progress --bench matching`
//!
//! A simulated rider rides the whole course (about three weeks, with nights, stops, noise,
//! dropouts, a shortcut and a wrong turn), one fix every 10 s and, over its first day, one a
//! second. The goal is p99 under 20 µs on one core per fix: the per-call percentiles are
//! printed first (each call timed alone, over every fix of the ride), then criterion's
//! throughput of the same stream. Side by side: the first-fix path (the R*-tree over the
//! whole course, as for a rider's first fix or after a restart with no state), and a naive
//! scan of every segment, which is what the index saves.

mod rides;
mod timing;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use velometry_core::testkit::courses;
use velometry_progress::index::{xyz, CourseIndex};
use velometry_progress::matching::{match_fix, MatchConfig, MatchState};
use velometry_progress::{Fix, Input};

use rides::{inputs, simulated};
use timing::{percentiles, timed};

fn fixes(inputs: &[Input]) -> Vec<Fix> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Fix(f) => Some(*f),
            _ => None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let built = Instant::now();
    let course = courses::winding(1, 6_800_000.0);
    let made = built.elapsed();
    let built = Instant::now();
    let index = CourseIndex::new(&course);
    eprintln!(
        "course: {} points, {:.0} km (made in {made:.1?}); indexed in {:.1?}",
        course.points().len(),
        course.length_m() / 1_000.0,
        built.elapsed()
    );
    let config = MatchConfig::default();
    let every_10s = fixes(&inputs(&simulated(&course, 3, 10)));
    let mut every_1s = fixes(&inputs(&simulated(&course, 4, 1)));
    every_1s.truncate(86_400);

    for (name, stream) in
        [("fix every 10 s, the whole ride", &every_10s), ("fix every 1 s, a day", &every_1s)]
    {
        let mut state = MatchState::default();
        let times = timed(stream, |f| {
            black_box(match_fix(&index, &config, &mut state, f));
        });
        eprintln!("match, {name}: {}", percentiles(&times));
    }
    let sample: Vec<Fix> = every_10s.iter().step_by(50).copied().collect();
    let times = timed(&sample, |f| {
        black_box(match_fix(&index, &config, &mut MatchState::default(), f));
    });
    eprintln!("first fix (R*-tree, no state): {}", percentiles(&times));
    let naive: Vec<Fix> = sample.iter().step_by(20).copied().collect();
    let times = timed(&naive, |f| {
        let p = xyz(f.lat, f.lon);
        let mut best = f64::INFINITY;
        index.scan_window(p, f64::NEG_INFINITY, f64::INFINITY, |c| best = best.min(c.error_m));
        black_box(best);
    });
    eprintln!("naive scan of every segment: {}", percentiles(&times));

    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(every_10s.len() as u64));
    group.bench_function("ride_10s", |b| {
        b.iter(|| {
            let mut state = MatchState::default();
            for f in &every_10s {
                black_box(match_fix(&index, &config, &mut state, f));
            }
        })
    });
    group.throughput(Throughput::Elements(sample.len() as u64));
    group.bench_function("first_fix", |b| {
        b.iter(|| {
            for f in &sample {
                black_box(match_fix(&index, &config, &mut MatchState::default(), f));
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
