//! The downsampling kernels under criterion: M4, LTTB and MinMaxLTTB over 1 and 10 million
//! points to 1,000, side by side with one plain pass computing the minimum and maximum of
//! the same points: the floor set by reading the data, so the ratio says how far each
//! kernel is from it.
//!
//! `cargo bench -p velometry-query --bench kernels`
//!
//! The points are 1 Hz heart rate, roughly: a random walk with spikes. On a
//! shared machine the absolute times move from run to run; the ratio to the baseline
//! measured in the same run is the figure to compare.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use velometry_query::downsample::{lttb, m4, minmax_lttb, windows, Point};

/// The point budget of a chart.
const BUDGET: usize = 1_000;
/// MinMaxLTTB's windows: two candidates each, four candidates per output point (the
/// MinMaxLTTB paper's and tsdownsample's default ratio).
const MINMAX_WINDOWS: i64 = 2 * BUDGET as i64;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// `n` points of 1 Hz heart rate: a random walk with spikes.
fn points(n: usize) -> Vec<Point> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut v = 120.0;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v += ((state % 601) as f64 - 300.0) / 100.0;
            let spike = if state.is_multiple_of(997) { 80.0 } else { 0.0 };
            (1_700_000_000_000 + i as i64 * 1000, v + spike)
        })
        .collect()
}

/// The baseline: one pass reading every point, keeping the smallest and largest value.
fn min_max(points: &[Point]) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, v) in points {
        if v < low {
            low = v;
        }
        if v > high {
            high = v;
        }
    }
    (low, high)
}

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("downsample");
    for (label, n) in [("1M", 1_000_000), ("10M", 10_000_000)] {
        let data = points(n);
        let span = data[n - 1].0 - data[0].0;
        // 250 buckets of up to four points each: at most 1,000 points.
        let m4_width = span / (BUDGET as i64 / 4 - 1);
        let minmax_width = span / MINMAX_WINDOWS + 1;
        assert!(m4(&data, 0, m4_width).len() <= BUDGET);
        assert_eq!(lttb(&data, BUDGET).len(), BUDGET);
        assert_eq!(minmax_lttb(&windows(&data, 0, minmax_width), BUDGET).len(), BUDGET);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("m4, 250 buckets", label), &data, |b, d| {
            b.iter(|| m4(black_box(d), 0, m4_width));
        });
        group.bench_with_input(BenchmarkId::new("lttb", label), &data, |b, d| {
            b.iter(|| lttb(black_box(d), BUDGET));
        });
        group.bench_with_input(BenchmarkId::new("minmax_lttb, 2,000 windows", label), &data, |b, d| {
            b.iter(|| minmax_lttb(&windows(black_box(d), 0, minmax_width), BUDGET));
        });
        group.bench_with_input(BenchmarkId::new("baseline: min/max pass", label), &data, |b, d| {
            b.iter(|| min_max(black_box(d)));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = kernels
}
criterion_main!(benches);
