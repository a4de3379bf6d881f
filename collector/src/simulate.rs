//! A rider simulator, for demos and load tests: plausible rides that need no device.
//!
//! Each rider follows a closed route of their own (a smooth loop of 20–60 km with hills),
//! pedals at an effort that wanders around their threshold power, and moves at the speed
//! that power gives on the gradient under them (rolling resistance, gravity, air drag).
//! Heart rate follows effort with a lag of about half a minute and drifts up over hours;
//! cadence falls to zero when coasting; temperature follows the time of day. A seed makes
//! a run repeatable.
//!
//! [`course`] rides a given course instead, for days, with the ground truth beside.

use std::f64::consts::{PI, TAU};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use velometry_core::geo::{haversine_m, EARTH_RADIUS_M};
use velometry_core::reading::Metric;

pub mod course;

const MASS_KG: f64 = 80.0;
const GRAVITY: f64 = 9.81;
const ROLLING: f64 = 0.004;
const DRAG_AREA_M2: f64 = 0.32;
const AIR_DENSITY: f64 = 1.2;

/// A closed route: positions every few tens of metres, with altitude.
#[derive(Debug, Clone)]
pub struct Route {
    /// `(lat, lon, alt)` of each vertex.
    points: Vec<(f64, f64, f64)>,
    /// Distance from the start to each vertex, metres.
    at: Vec<f64>,
}

impl Route {
    /// A loop around `(lat, lon)` shaped by `rng`.
    pub fn generate(rng: &mut StdRng, lat: f64, lon: f64) -> Route {
        let radius = rng.random_range(3_000.0..9_000.0);
        // A few harmonics bend the circle into a plausible loop of roads.
        let harmonics: Vec<(f64, f64, f64)> =
            (2..6).map(|k| (f64::from(k), rng.random_range(0.0..0.12), rng.random_range(0.0..TAU))).collect();
        let hills: Vec<(f64, f64, f64)> = (1..5)
            .map(|k| (f64::from(k), rng.random_range(20.0..120.0) / f64::from(k), rng.random_range(0.0..TAU)))
            .collect();
        let base = rng.random_range(150.0..700.0);
        let n = 2_000;
        let mut points = Vec::with_capacity(n);
        for i in 0..n {
            let a = TAU * i as f64 / n as f64;
            let r = radius
                * (1.0 + harmonics.iter().map(|(k, amp, phase)| amp * (k * a + phase).sin()).sum::<f64>());
            let north = r * a.sin();
            let east = r * a.cos();
            let alt = base + hills.iter().map(|(k, amp, phase)| amp * (k * a + phase).sin()).sum::<f64>();
            points.push((
                lat + north / EARTH_RADIUS_M * 180.0 / PI,
                lon + east / (EARTH_RADIUS_M * (lat * PI / 180.0).cos()) * 180.0 / PI,
                alt,
            ));
        }
        let mut at = Vec::with_capacity(n + 1);
        let mut total = 0.0;
        at.push(0.0);
        for i in 0..n {
            total += distance(points[i], points[(i + 1) % n]);
            at.push(total);
        }
        Route { points, at }
    }

    /// The loop's length, metres.
    pub fn length(&self) -> f64 {
        self.at[self.at.len() - 1]
    }

    /// Position, altitude, heading (degrees) and gradient at `s` metres along the loop.
    fn locate(&self, s: f64) -> (f64, f64, f64, f64, f64) {
        let s = s.rem_euclid(self.length());
        let i = self.at.partition_point(|&d| d <= s).saturating_sub(1).min(self.points.len() - 1);
        let (a, b) = (self.points[i], self.points[(i + 1) % self.points.len()]);
        let segment = (self.at[i + 1] - self.at[i]).max(1e-9);
        let f = (s - self.at[i]) / segment;
        let lerp = |x: f64, y: f64| x + (y - x) * f;
        let east = (b.1 - a.1) * a.0.to_radians().cos();
        let heading = east.atan2(b.0 - a.0).to_degrees().rem_euclid(360.0);
        (lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2), heading, (b.2 - a.2) / segment)
    }
}

fn distance(a: (f64, f64, f64), b: (f64, f64, f64)) -> f64 {
    haversine_m(a.0, a.1, b.0, b.1)
}

/// One simulated rider.
#[derive(Debug, Clone)]
pub struct Rider {
    rng: StdRng,
    route: Route,
    /// Metres along the route.
    along: f64,
    speed: f64,
    /// Threshold power, W.
    ftp: f64,
    /// Power the rider is aiming at, W.
    target: f64,
    power: f64,
    heart_rate: f64,
    rest_hr: f64,
    max_hr: f64,
    /// Seconds ridden.
    elapsed: f64,
}

/// The readings of one second: `(metric, fields)`.
pub type Tick = Vec<(Metric, Vec<(&'static str, f64)>)>;

impl Rider {
    /// Rider number `index` of a run seeded with `seed`.
    pub fn new(seed: u64, index: u64) -> Rider {
        let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Somewhere in the Alps' foothills, a different valley for each rider.
        let lat = rng.random_range(44.5..46.5);
        let lon = rng.random_range(6.5..11.0);
        let route = Route::generate(&mut rng, lat, lon);
        let along = rng.random_range(0.0..route.length());
        let ftp = rng.random_range(180.0..300.0);
        let rest_hr = rng.random_range(48.0..62.0);
        let max_hr = rng.random_range(175.0..198.0);
        Rider {
            rng,
            route,
            along,
            speed: 8.0,
            ftp,
            target: 0.7 * ftp,
            power: 0.7 * ftp,
            heart_rate: rest_hr + 50.0,
            rest_hr,
            max_hr,
            elapsed: 0.0,
        }
    }

    /// Rides one second and returns what the devices would record.
    pub fn tick(&mut self) -> Tick {
        let (_, _, _, _, gradient) = self.route.locate(self.along);
        // Effort wanders around 70 % of threshold, with efforts on climbs and rest on descents.
        if self.rng.random_bool(0.02) {
            self.target = self.ftp * self.rng.random_range(0.45..1.05);
        }
        let wanted = (self.target * (1.0 + gradient * 4.0)).clamp(0.0, 1.4 * self.ftp);
        let wanted = if gradient < -0.04 { 0.0 } else { wanted };
        self.power += (wanted - self.power) * 0.3 + self.rng.random_range(-8.0..8.0);
        self.power = self.power.max(0.0);
        self.speed = speed_for(self.power, gradient, self.speed);
        self.along += self.speed;
        self.elapsed += 1.0;
        // Heart rate: toward what the effort asks, with a lag, plus a slow drift (fatigue).
        let effort = (self.power / self.ftp).clamp(0.0, 1.3);
        let drift = (self.elapsed / 3_600.0) * 1.5;
        let goal =
            (self.rest_hr + (self.max_hr - self.rest_hr) * (0.35 + 0.55 * effort) + drift).min(self.max_hr);
        self.heart_rate += (goal - self.heart_rate) / 30.0;
        let (lat, lon, alt, heading, _) = self.route.locate(self.along);
        let cadence = if self.power < 15.0 {
            0.0
        } else {
            80.0 + 12.0 * (effort - 0.7) + self.rng.random_range(-3.0..3.0)
        };
        let hour = (self.elapsed / 3_600.0 + 9.0) % 24.0;
        let temperature = 16.0 + 7.0 * ((hour - 9.0) / 24.0 * TAU).sin() - alt / 300.0;
        let mut out: Tick = vec![
            (
                Metric::Gps,
                vec![("lat", lat), ("lon", lon), ("alt", alt), ("speed", self.speed), ("heading", heading)],
            ),
            (Metric::HeartRate, vec![("bpm", self.heart_rate.round())]),
            (Metric::Cadence, vec![("rpm", cadence.round().max(0.0))]),
            (Metric::Power, vec![("watts", self.power.round())]),
        ];
        if self.elapsed % 10.0 == 0.0 {
            out.push((Metric::Temperature, vec![("celsius", (temperature * 10.0).round() / 10.0)]));
        }
        out
    }
}

/// The steady speed at which `power` balances rolling resistance, gravity on `gradient` and
/// air drag; a few Newton steps from `from`.
pub(crate) fn speed_for(power: f64, gradient: f64, from: f64) -> f64 {
    let theta = gradient.atan();
    let resist = MASS_KG * GRAVITY * (ROLLING * theta.cos() + theta.sin());
    let drag = 0.5 * AIR_DENSITY * DRAG_AREA_M2;
    let mut v = from.clamp(1.0, 25.0);
    for _ in 0..8 {
        let f = drag * v * v * v + resist * v - power;
        let df = 3.0 * drag * v * v + resist;
        if df.abs() < 1e-9 {
            break;
        }
        v = (v - f / df).clamp(0.5, 25.0);
    }
    v
}

#[cfg(test)]
mod tests {
    use velometry_core::reading::Reading;

    use super::*;

    #[test]
    fn rides_are_plausible_valid_and_repeatable() {
        let now = velometry_core::time::now_nanos();
        let mut a = Rider::new(7, 0);
        let mut b = Rider::new(7, 0);
        let mut other = Rider::new(7, 1);
        let (mut speeds, mut hearts) = (Vec::new(), Vec::new());
        for second in 0..7_200 {
            let tick = a.tick();
            assert_eq!(tick, b.tick(), "same seed, same ride");
            for (metric, fields) in &tick {
                Reading::known(*metric, now, now, fields.iter().copied())
                    .unwrap_or_else(|e| panic!("second {second}: {metric} {fields:?}: {e}"));
                match metric {
                    Metric::Gps => speeds.push(fields[3].1),
                    Metric::HeartRate => hearts.push(fields[0].1),
                    _ => {}
                }
            }
        }
        assert_ne!(a.tick(), other.tick(), "another rider rides elsewhere");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let avg_speed = mean(&speeds) * 3.6;
        assert!((18.0..40.0).contains(&avg_speed), "average {avg_speed} km/h");
        let first_hour = mean(&hearts[600..3_600]);
        let second_hour = mean(&hearts[3_600..]);
        assert!((100.0..180.0).contains(&first_hour), "{first_hour} bpm");
        assert!(hearts.windows(2).all(|w| (w[1] - w[0]).abs() <= 4.0), "heart rate moves smoothly");
        assert!(second_hour > first_hour - 10.0, "drift, not collapse: {first_hour} → {second_hour}");
    }

    #[test]
    fn climbing_is_slower_than_descending_at_the_same_power() {
        assert!(speed_for(250.0, 0.08, 8.0) < 6.0);
        assert!(speed_for(250.0, -0.05, 8.0) > 12.0);
        let flat = speed_for(250.0, 0.0, 8.0);
        assert!((9.0..13.0).contains(&flat), "{flat} m/s");
    }

    #[test]
    fn routes_are_closed_loops_of_plausible_length() {
        let mut rng = StdRng::seed_from_u64(3);
        let route = Route::generate(&mut rng, 45.0, 7.0);
        assert!((15_000.0..70_000.0).contains(&route.length()), "{} m", route.length());
        let start = route.locate(0.0);
        let lap = route.locate(route.length());
        assert!((start.0 - lap.0).abs() < 1e-9 && (start.1 - lap.1).abs() < 1e-9);
    }
}
