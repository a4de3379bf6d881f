//! Per-call times and their percentiles, for the latency goals.

use std::time::Instant;

/// Times each call of `f` over `items` (nanoseconds, sorted).
pub fn timed<T>(items: &[T], mut f: impl FnMut(&T)) -> Vec<u64> {
    let mut out: Vec<u64> = items
        .iter()
        .map(|item| {
            let t = Instant::now();
            f(item);
            t.elapsed().as_nanos() as u64
        })
        .collect();
    out.sort_unstable();
    out
}

/// `p50 / p99 / p99.9 / max` of sorted nanoseconds, in microseconds.
pub fn percentiles(sorted: &[u64]) -> String {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    format!(
        "p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs ({} calls)",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0),
        sorted.len()
    )
}
