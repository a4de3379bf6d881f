use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// M4 computed the obvious way: group by bucket, then pick first, argmin, argmax, last.
fn m4_brute(points: &[Point], buckets: usize) -> Vec<Point> {
    if points.len() <= 4 * buckets.max(1) {
        return points.to_vec();
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let span = (t1 - t0) as i128 + 1;
    let mut groups: std::collections::BTreeMap<i128, Vec<usize>> = Default::default();
    for (i, p) in points.iter().enumerate() {
        groups.entry((p.0 - t0) as i128 * buckets as i128 / span).or_default().push(i);
    }
    let mut out = Vec::new();
    for indices in groups.values() {
        let first = indices[0];
        let last = indices[indices.len() - 1];
        let min = *indices
            .iter()
            .min_by(|a, b| points[**a].1.total_cmp(&points[**b].1).then(a.cmp(b)))
            .unwrap_or(&first);
        let max = *indices
            .iter()
            .max_by(|a, b| points[**a].1.total_cmp(&points[**b].1).then(b.cmp(a)))
            .unwrap_or(&first);
        let mut picks = vec![first, min, max, last];
        picks.sort_unstable();
        picks.dedup();
        out.extend(picks.into_iter().map(|i| points[i]));
    }
    out
}

/// LTTB written out plainly, bucket by bucket, for comparison.
fn lttb_brute(points: &[Point], threshold: usize) -> Vec<Point> {
    let n = points.len();
    if threshold >= n || threshold < 3 {
        return points.to_vec();
    }
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let bounds = |bucket: usize| {
        let start = (bucket as f64 * every).floor() as usize + 1;
        let end = (((bucket + 1) as f64 * every).floor() as usize + 1).min(n - 1);
        (start, end)
    };
    let mut out = vec![points[0]];
    let mut previous = points[0];
    for bucket in 0..threshold - 2 {
        let (start, end) = bounds(bucket);
        let next: Vec<Point> = if bucket + 1 < threshold - 2 {
            let (s, e) = bounds(bucket + 1);
            points[s..e].to_vec()
        } else {
            vec![points[n - 1]]
        };
        let avg = (
            next.iter().map(|p| p.0 as f64).sum::<f64>() / next.len() as f64,
            next.iter().map(|p| p.1).sum::<f64>() / next.len() as f64,
        );
        let area = |p: Point| {
            let (ax, ay, bx, by, cx, cy) = (previous.0 as f64, previous.1, p.0 as f64, p.1, avg.0, avg.1);
            ((ax - cx) * (by - ay) - (ax - bx) * (cy - ay)).abs()
        };
        let mut best = start;
        for i in start..end {
            if area(points[i]) > area(points[best]) {
                best = i;
            }
        }
        out.push(points[best]);
        previous = points[best];
    }
    out.push(points[n - 1]);
    out
}

fn random_walk(rng: &mut StdRng, n: usize) -> Vec<Point> {
    let mut t = rng.random_range(0..1_000_000_000_000_i64);
    let mut v = 120.0;
    (0..n)
        .map(|_| {
            t += rng.random_range(1..5_000);
            v += rng.random_range(-3.0..3.0);
            (t, v)
        })
        .collect()
}

/// Spikes, gaps of hours, runs of equal values, repeated timestamps; sorted by time.
fn adversarial(rng: &mut StdRng, n: usize) -> Vec<Point> {
    let mut t = rng.random_range(0..1_000_000_000_000_i64);
    let mut v = 120.0;
    (0..n)
        .map(|_| {
            t += match rng.random_range(0..200) {
                0 => 3_600_000,
                1 | 2 => 0,
                _ => rng.random_range(1..5_000),
            };
            v = match rng.random_range(0..50) {
                0 => 250.0,
                1 => 20.0,
                2 => v,
                _ => (v + rng.random_range(-3.0..3.0_f64)).clamp(30.0, 220.0),
            };
            (t, v)
        })
        .collect()
}

#[test]
fn m4_equals_the_brute_force_on_random_and_adversarial_data() {
    let mut rng = StdRng::seed_from_u64(4);
    for round in 0..300 {
        let n = rng.random_range(0..3_000);
        let points = if round % 2 == 0 { random_walk(&mut rng, n) } else { adversarial(&mut rng, n) };
        let buckets = rng.random_range(1..300);
        assert_eq!(
            m4(&points, buckets),
            m4_brute(&points, buckets),
            "round {round}, {n} points, {buckets} buckets"
        );
    }
}

#[test]
fn m4_keeps_every_bucket_s_extremes_so_the_chart_is_unchanged() {
    let mut rng = StdRng::seed_from_u64(5);
    let points = adversarial(&mut rng, 50_000);
    let buckets = 250;
    let reduced = m4(&points, buckets);
    assert!(reduced.len() <= 4 * buckets);
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let column = |t: i64| ((t - t0) as i128 * buckets as i128 / ((t1 - t0) as i128 + 1)) as usize;
    let extremes = |ps: &[Point]| {
        let mut cols = vec![(f64::INFINITY, f64::NEG_INFINITY, None, None); buckets];
        for &(t, v) in ps {
            let c = &mut cols[column(t)];
            c.0 = c.0.min(v);
            c.1 = c.1.max(v);
            c.2.get_or_insert((t, v));
            c.3 = Some((t, v));
        }
        cols
    };
    assert_eq!(extremes(&reduced), extremes(&points), "per column: min, max, first and last are the same");
    assert_eq!(reduced.first(), points.first());
    assert_eq!(reduced.last(), points.last());
}

#[test]
fn edge_cases() {
    assert!(m4(&[], 10).is_empty());
    assert_eq!(m4(&[(5, 1.0)], 10), vec![(5, 1.0)]);
    assert!(lttb(&[], 10).is_empty());
    assert_eq!(lttb(&[(5, 1.0), (6, 2.0)], 10), vec![(5, 1.0), (6, 2.0)]);
    let same_time: Vec<Point> = (0..100).map(|i| (7, f64::from(i % 10))).collect();
    let reduced = m4(&same_time, 3);
    assert_eq!(reduced, vec![(7, 0.0), (7, 9.0), (7, 9.0)], "first (0), max (9), last (9)");
}

#[test]
fn lttb_equals_the_plain_implementation_and_keeps_its_promises() {
    let mut rng = StdRng::seed_from_u64(6);
    for round in 0..300 {
        let n = rng.random_range(0..3_000);
        let points = if round % 2 == 0 { random_walk(&mut rng, n) } else { adversarial(&mut rng, n) };
        let threshold = rng.random_range(3..400);
        let reduced = lttb(&points, threshold);
        assert_eq!(
            reduced,
            lttb_brute(&points, threshold),
            "round {round}, {n} points, threshold {threshold}"
        );
        assert_eq!(reduced.len(), threshold.min(n));
        assert_eq!((reduced.first(), reduced.last()), (points.first(), points.last()));
        assert!(reduced.windows(2).all(|w| w[0].0 <= w[1].0), "sorted");
    }
}
