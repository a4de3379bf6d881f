//! Track simplification alone, on one core: three weeks of 1 Hz GPS to 1,000 vertices.
//!
//! `cargo bench -p velometry-query --bench track -- [--points N] [--vertices K]`

use velometry_core::testkit::best_of;
use velometry_query::track::{simplify, Vertex};

fn main() {
    let n = velometry_core::testkit::flag("--points", 21 * 86_400) as usize;
    let vertices = velometry_core::testkit::flag("--vertices", 1_000) as usize;
    // A rider at about 8 m/s from Grenoble: the heading wanders a little every second and
    // turns sharply now and then, from a deterministic xorshift so every run rides the same.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let metres_per_degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
    let (mut lat, mut lon, mut heading) = (45.19_f64, 5.72_f64, 0.0_f64);
    let track: Vec<Vertex> = (0..n)
        .map(|i| {
            let r = next();
            heading += ((r % 2001) as f64 - 1000.0) * 5e-5;
            if r.is_multiple_of(600) {
                heading += if r & (1 << 40) == 0 { 1.5 } else { -1.5 };
            }
            let speed = 8.0 + ((r >> 20) % 101) as f64 / 50.0 - 1.0;
            lat += heading.cos() * speed / metres_per_degree;
            lon += heading.sin() * speed / (metres_per_degree * lat.to_radians().cos());
            Vertex { time_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_000_000, lat, lon }
        })
        .collect();
    let (time, len) = best_of(5, || simplify(&track, vertices).len());
    println!("{n} points, best of 5 runs, one core:");
    println!("  simplify to {len:>5} vertices: {:>7.1} ms", time.as_secs_f64() * 1e3);
}
