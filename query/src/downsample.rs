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
//! Both take points sorted by time and return points of the input, sorted. M4's buckets are
//! aligned to fixed multiples of their width, so that buckets built from rollup
//! [`Window`]s are exactly the buckets built from the raw points: the rollup tiers answer
//! what the raw data would. [`minmax_lttb`] is LTTB for when only windows are at hand.

/// A point: time (any integer unit, e.g. epoch ms) and value.
pub type Point = (i64, f64);

/// What a time window holds, as M4, means and the rollup tiers need it: the count, the sum,
/// and the first, last, minimum and maximum points. On ties the earliest point is the
/// minimum or maximum, so merging windows in time order gives what one pass over their
/// points gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The window's first instant.
    pub start: i64,
    /// Points in the window.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// The earliest point.
    pub first: Point,
    /// The latest point.
    pub last: Point,
    /// The smallest value (the earliest of equals).
    pub min: Point,
    /// The largest value (the earliest of equals).
    pub max: Point,
}

impl Window {
    /// A window starting at `start` holding only `p`.
    pub fn of(start: i64, p: Point) -> Window {
        Window { start, count: 1, sum: p.1, first: p, last: p, min: p, max: p }
    }

    /// Adds `p`, which is not earlier than anything already in the window.
    #[inline]
    pub fn push(&mut self, p: Point) {
        self.count += 1;
        self.sum += p.1;
        self.last = p;
        if p.1 < self.min.1 {
            self.min = p;
        }
        if p.1 > self.max.1 {
            self.max = p;
        }
    }

    /// Adds `later`, whose points all come after this window's.
    pub fn merge(&mut self, later: &Window) {
        self.count += later.count;
        self.sum += later.sum;
        self.last = later.last;
        if later.min.1 < self.min.1 {
            self.min = later.min;
        }
        if later.max.1 > self.max.1 {
            self.max = later.max;
        }
    }

    /// The mean value.
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// The window's M4 points: first, minimum, maximum and last, in time order (on equal
    /// times in that order), each point once.
    pub fn m4(&self, out: &mut Vec<Point>) {
        let mut picks = [self.first, self.min, self.max, self.last];
        // Stable: equal times keep the order first, min, max, last.
        picks.sort_by_key(|p| p.0);
        let from = out.len();
        for p in picks {
            if !out[from..].contains(&p) {
                out.push(p);
            }
        }
    }
}

/// The start of the window of width `width` (windows aligned to multiples of `width` from
/// `origin`) that holds time `t`.
#[inline]
pub fn window_start(t: i64, origin: i64, width: i64) -> i64 {
    origin + (t - origin).div_euclid(width) * width
}

/// `points` (sorted by time) gathered into windows of width `width` aligned to `origin`;
/// empty windows are left out.
pub fn windows(points: &[Point], origin: i64, width: i64) -> Vec<Window> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let first = points[i];
        let start = window_start(first.0, origin, width);
        let end = start.saturating_add(width);
        // Indices and values apart, so the compiler keeps them in registers and picks with
        // conditional moves; four partial sums, so additions do not wait for each other.
        let (mut min, mut max, mut low, mut high) = (i, i, first.1, first.1);
        let mut sums = [first.1, 0.0, 0.0, 0.0];
        let mut j = i + 1;
        while j < points.len() && points[j].0 < end {
            let v = points[j].1;
            sums[j & 3] += v;
            if v < low {
                (low, min) = (v, j);
            }
            if v > high {
                (high, max) = (v, j);
            }
            j += 1;
        }
        let sum = (sums[0] + sums[1]) + (sums[2] + sums[3]);
        out.push(Window {
            start,
            count: (j - i) as u64,
            sum,
            first,
            last: points[j - 1],
            min: points[min],
            max: points[max],
        });
        i = j;
    }
    out
}

/// Windows (sorted, aligned to `origin`) merged into the wider windows of width `width`.
pub fn regroup(narrow: &[Window], origin: i64, width: i64) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for w in narrow {
        let start = window_start(w.start, origin, width);
        match out.last_mut() {
            Some(last) if last.start == start => last.merge(w),
            _ => out.push(Window { start, ..*w }),
        }
    }
    out
}

/// M4 over buckets of width `width` aligned to `origin`: per bucket the first, last, minimum
/// and maximum point, so a line chart with one bucket per pixel column is pixel-identical
/// to one drawn from every point.
pub fn m4(points: &[Point], origin: i64, width: i64) -> Vec<Point> {
    m4_of(&windows(points, origin, width))
}

/// The M4 points of `buckets`, in time order.
pub fn m4_of(buckets: &[Window]) -> Vec<Point> {
    let mut out = Vec::with_capacity(4 * buckets.len());
    for b in buckets {
        b.m4(&mut out);
    }
    out
}

/// MinMaxLTTB: each window's minimum and maximum (plus the very first and last point) as
/// candidates, then LTTB over those down to `threshold`. It is how a chart of millions of
/// points is reduced from rollups without reading the points (Van Der Donckt et al.,
/// "MinMaxLTTB", 2023).
pub fn minmax_lttb(windows: &[Window], threshold: usize) -> Vec<Point> {
    let (Some(head), Some(tail)) = (windows.first(), windows.last()) else {
        return Vec::new();
    };
    let mut candidates = Vec::with_capacity(2 * windows.len() + 2);
    candidates.push(head.first);
    for w in windows {
        let (a, b) = if w.max.0 < w.min.0 { (w.max, w.min) } else { (w.min, w.max) };
        for p in [a, b] {
            if candidates.last() != Some(&p) {
                candidates.push(p);
            }
        }
    }
    if candidates.last() != Some(&tail.last) {
        candidates.push(tail.last);
    }
    lttb(&candidates, threshold)
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
