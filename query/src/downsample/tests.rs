use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// M4 computed the obvious way: group by aligned bucket, then pick first, argmin, argmax,
/// last (the earliest of equals), in time order and on equal times in that order, each once.
fn m4_brute(points: &[Point], origin: i64, width: i64) -> Vec<Point> {
    let mut groups: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, p) in points.iter().enumerate() {
        groups.entry((p.0 - origin).div_euclid(width)).or_default().push(i);
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
        let mut picks: Vec<Point> = [first, min, max, last].iter().map(|&i| points[i]).collect();
        picks.sort_by_key(|p| p.0);
        let mut unique: Vec<Point> = Vec::new();
        for p in picks {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        out.extend(unique);
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
        let width = rng.random_range(1..2_000_000);
        let origin = rng.random_range(-1_000_000..1_000_000);
        assert_eq!(
            m4(&points, origin, width),
            m4_brute(&points, origin, width),
            "round {round}, {n} points, width {width}"
        );
    }
}

#[test]
fn m4_keeps_every_bucket_s_extremes_so_the_chart_is_unchanged() {
    let mut rng = StdRng::seed_from_u64(5);
    let points = adversarial(&mut rng, 50_000);
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let width = (t1 - t0) / 249;
    let reduced = m4(&points, 0, width);
    assert!(reduced.len() <= 4 * 251);
    let column = |t: i64| t.div_euclid(width);
    let extremes = |ps: &[Point]| {
        let mut cols: std::collections::BTreeMap<i64, (f64, f64, Option<Point>, Option<Point>)> =
            Default::default();
        for &(t, v) in ps {
            let c = cols.entry(column(t)).or_insert((f64::INFINITY, f64::NEG_INFINITY, None, None));
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
fn windows_merged_in_order_are_the_windows_of_the_points() {
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..200 {
        let n = rng.random_range(0..3_000);
        let points = if round % 2 == 0 { random_walk(&mut rng, n) } else { adversarial(&mut rng, n) };
        let narrow = rng.random_range(1..100_000);
        let wide = narrow * rng.random_range(1..50);
        let regrouped = regroup(&windows(&points, 0, narrow), 0, wide);
        let direct = windows(&points, 0, wide);
        assert_eq!(regrouped.len(), direct.len(), "round {round}");
        for (a, b) in regrouped.iter().zip(&direct) {
            assert_eq!(
                (a.start, a.count, a.first, a.last, a.min, a.max),
                (b.start, b.count, b.first, b.last, b.min, b.max)
            );
            assert!((a.sum - b.sum).abs() <= 1e-9 * b.sum.abs().max(1.0), "round {round}: sums");
        }
        assert_eq!(m4_of(&regrouped), m4(&points, 0, wide), "round {round}: M4 from narrow windows");
        let count: u64 = direct.iter().map(|w| w.count).sum();
        assert_eq!(count as usize, n);
    }
}

#[test]
fn minmax_lttb_is_lttb_over_the_windows_extremes() {
    let mut rng = StdRng::seed_from_u64(8);
    let points = adversarial(&mut rng, 20_000);
    let ws = windows(&points, 0, 60_000);
    let reduced = minmax_lttb(&ws, 500);
    assert_eq!(reduced.len(), 500);
    assert_eq!((reduced.first(), reduced.last()), (points.first(), points.last()));
    let extremes: Vec<Point> = ws.iter().flat_map(|w| [w.min, w.max]).collect();
    assert!(reduced[1..499].iter().all(|p| extremes.contains(p)), "only extremes in between");
    assert!(minmax_lttb(&[], 10).is_empty());
}

#[test]
fn edge_cases() {
    assert!(m4(&[], 0, 10).is_empty());
    assert_eq!(m4(&[(5, 1.0)], 0, 10), vec![(5, 1.0)]);
    assert!(lttb(&[], 10).is_empty());
    assert_eq!(lttb(&[(5, 1.0), (6, 2.0)], 10), vec![(5, 1.0), (6, 2.0)]);
    let same_time: Vec<Point> = (0..100).map(|i| (7, f64::from(i % 10))).collect();
    let reduced = m4(&same_time, 0, 3);
    assert_eq!(reduced, vec![(7, 0.0), (7, 9.0)], "first and min (0), max and last (9)");
    assert_eq!(m4(&[(-5, 1.0), (5, 2.0)], 0, 10), vec![(-5, 1.0), (5, 2.0)], "times before the origin");
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
