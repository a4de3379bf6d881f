//! The downsampling kernels alone, on one core: 10 million points to 1,000.
//!
//! `cargo bench -p velometry-query --bench downsample -- [--points N]`

use velometry_core::testkit::best_of;
use velometry_query::downsample::{lttb, m4, Point};

fn main() {
    let n = velometry_core::testkit::flag("--points", 10_000_000) as usize;
    // A year of 1 Hz heart rate, roughly: a random walk with spikes.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut v = 120.0;
    let points: Vec<Point> = (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v += ((state % 601) as f64 - 300.0) / 100.0;
            let spike = if state.is_multiple_of(997) { 80.0 } else { 0.0 };
            (1_700_000_000_000 + i as i64 * 1000, v + spike)
        })
        .collect();
    let width = (points[n - 1].0 - points[0].0) / 249;
    let (m4_time, m4_len) = best_of(5, || m4(&points, 0, width).len());
    let (lttb_time, lttb_len) = best_of(5, || lttb(&points, 1000).len());
    println!("{n} points, best of 5 runs, one core:");
    println!("  m4   to {m4_len:>5} points (250 buckets): {:>7.1} ms", m4_time.as_secs_f64() * 1e3);
    println!("  lttb to {lttb_len:>5} points:               {:>7.1} ms", lttb_time.as_secs_f64() * 1e3);
}
