//! Visual downsampling: from many points to at most a point budget, keeping what a chart
//! shows.
//!
//! - [`m4`]: per time bucket the first, last, minimum and maximum point (Jugel et al.,
//!   "M4: A Visualization-Oriented Time Series Data Aggregation", VLDB 2014). A line chart
//!   with one bucket per pixel column drawn from these points is pixel-identical to one
//!   drawn from all of them: every peak survives.
//! - [`lttb`]: Largest-Triangle-Three-Buckets (Steinarsson 2013): one point per bucket, the
//!   one forming the largest triangle with the previous pick and the next bucket's average;
//!   the shape is kept with a quarter of M4's points.
//!
//! Both take points sorted by time and return points of the input, sorted, first and last
//! always kept.

/// A point: time (any integer unit, e.g. epoch ms) and value.
pub type Point = (i64, f64);

/// M4 with `buckets` equal time buckets spanning the points: at most `4 × buckets` points.
pub fn m4(points: &[Point], buckets: usize) -> Vec<Point> {
    let (Some(&(t0, _)), Some(&(t1, _))) = (points.first(), points.last()) else {
        return Vec::new();
    };
    let buckets = buckets.max(1);
    if points.len() <= 4 * buckets {
        return points.to_vec();
    }
    // Bucket b holds the times t with floor((t - t0) · buckets / span) = b.
    let span = (t1 - t0) as i128 + 1;
    let b = buckets as i128;
    let mut out = Vec::with_capacity(4 * buckets);
    let mut start = 0;
    while start < points.len() {
        let bucket = ((points[start].0 - t0) as i128 * b) / span;
        // The first time of the next bucket: t - t0 >= ceil((bucket + 1) · span / buckets).
        let upper = t0 as i128 + ((bucket + 1) * span + b - 1) / b;
        let mut end = start + 1;
        let (mut min, mut max) = (start, start);
        while end < points.len() && (points[end].0 as i128) < upper {
            let v = points[end].1;
            if v < points[min].1 {
                min = end;
            }
            if v > points[max].1 {
                max = end;
            }
            end += 1;
        }
        let last = end - 1;
        let mut picks = [start, min, max, last];
        picks.sort_unstable();
        let mut previous = usize::MAX;
        for i in picks {
            if i != previous {
                out.push(points[i]);
                previous = i;
            }
        }
        start = end;
    }
    out
}

/// LTTB down to `threshold` points (at least 3 to do anything; fewer input points are
/// returned as they are).
pub fn lttb(points: &[Point], threshold: usize) -> Vec<Point> {
    let n = points.len();
    if threshold >= n || threshold < 3 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(threshold);
    out.push(points[0]);
    // The points between first and last fall into threshold - 2 buckets of equal count;
    // each holds at least one point, as threshold < n.
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let bounds = |bucket: usize| {
        let start = (bucket as f64 * every).floor() as usize + 1;
        let end = (((bucket + 1) as f64 * every).floor() as usize + 1).min(n - 1);
        (start, end)
    };
    let mut a = 0;
    for bucket in 0..threshold - 2 {
        let (start, end) = bounds(bucket);
        // The next bucket's average; the last point for the last bucket.
        let next = if bucket + 3 < threshold {
            let (s, e) = bounds(bucket + 1);
            &points[s..e]
        } else {
            &points[n - 1..]
        };
        let count = next.len() as f64;
        let avg_t = next.iter().map(|p| p.0 as f64).sum::<f64>() / count;
        let avg_v = next.iter().map(|p| p.1).sum::<f64>() / count;
        let (at, av) = (points[a].0 as f64, points[a].1);
        let mut best = start;
        let mut best_area = -1.0;
        for (i, &(t, v)) in points.iter().enumerate().take(end).skip(start) {
            // Twice the triangle's area; the factor does not change which is largest.
            let area = ((at - avg_t) * (v - av) - (at - t as f64) * (avg_v - av)).abs();
            if area > best_area {
                best_area = area;
                best = i;
            }
        }
        out.push(points[best]);
        a = best;
    }
    out.push(points[n - 1]);
    out
}

#[cfg(test)]
mod tests;
