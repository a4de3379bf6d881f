//! ETA to the next checkpoint and to the finish, with a range (p10–p90).
//!
//! Linear ETAs (elapsed pace × distance left) are wrong in two predictable ways on a
//! multi-day ride: they spread the nights evenly over the distance, so at dusk they are
//! early and in the morning late, and they ignore the terrain ahead, so before the
//! mountains they are early. This model splits the question in two:
//!
//! 1. **Moving time** of the course ahead: the course is cut into 200 m pieces by gradient
//!    (seven classes from below −6 % to above +6 %) with prefix sums, so the distance in
//!    each class between any two points costs seven subtractions. The rider's own moving
//!    speed in each class is learned from their steps while riding on this event, shrunk
//!    toward `flat speed × a default factor of the class` while a class has little data
//!    (so a rider seen only on the flat still climbs slower than they ride the flat).
//! 2. **Elapsed time** for that moving time: the fraction of each local hour of day the
//!    rider has spent moving (24 bins, decayed with a half-life of `activity_half_life_h`
//!    so recent days weigh most; until the rider's own days are known, a prior of riding
//!    most of each hour but for a short night, 23:00–04:00 local, as ultra riders sleep 3–5
//!    hours). From now, the model walks forward a quarter of an hour
//!    at a time, spending the moving time at the rate each hour allows: an ETA that
//!    crosses a night waits for the morning as the rider has done.
//!
//! **The range** is a log-normal spread around that: the rider's own variability of speed
//! (log ratio of actual to predicted moving speed over half-hour blocks of riding) and of
//! activity (log ratio of actual to predicted moving time over 12-hour blocks), each
//! starting from a prior, shrinking as the horizon spans more blocks (by the square root
//! of their number, since fatigue makes blocks alike), plus a floor.
//!
//! `progress/benches/eta.rs` measures median and p90 error of this and the linear ETA at
//! 25, 50 and 75 % of simulated multi-day rides, and how often the truth falls in the range.

use serde::{Deserialize, Serialize};
use velometry_core::course::Course;
use velometry_core::time::Nanos;

use crate::local_time::local_hour;

/// Gradient classes (upper bounds, as fractions); the last class is everything steeper.
const EDGES: [f64; 6] = [-0.06, -0.03, -0.01, 0.01, 0.03, 0.06];
/// Number of gradient classes.
pub const CLASSES: usize = EDGES.len() + 1;
/// Speed in each class relative to the flat, before the rider's own data says otherwise:
/// what the power a rider holds on the flat gives on such a gradient, roughly.
const FACTORS: [f64; CLASSES] = [1.5, 1.35, 1.15, 1.0, 0.8, 0.58, 0.4];
/// Length of the pieces the course is classed by, metres: long enough that elevation noise
/// of a course file does not make every piece steep.
const PIECE_M: f64 = 200.0;
const QUARTER_HOUR_S: f64 = 900.0;

fn class_of(gradient: f64) -> usize {
    EDGES.partition_point(|&e| e < gradient)
}

/// The course's gradients, for moving time between any two distances.
#[derive(Debug)]
pub struct Profile {
    /// Class of each piece.
    class: Vec<u8>,
    /// Distance in each class before each piece.
    before: Vec<[f64; CLASSES]>,
    length_m: f64,
}

impl Profile {
    /// The profile of `course` (flat where it has no elevations).
    pub fn new(course: &Course) -> Profile {
        let length_m = course.length_m();
        let pieces = (length_m / PIECE_M).ceil().max(1.0) as usize;
        let mut class = Vec::with_capacity(pieces);
        let mut before = Vec::with_capacity(pieces + 1);
        let mut sum = [0.0; CLASSES];
        for k in 0..pieces {
            let (a, b) = (k as f64 * PIECE_M, ((k + 1) as f64 * PIECE_M).min(length_m));
            let gradient = match (course.position_at(a).2, course.position_at(b).2) {
                (Some(ea), Some(eb)) if b > a => (eb - ea) / (b - a),
                _ => 0.0,
            };
            let c = class_of(gradient);
            before.push(sum);
            sum[c] += b - a;
            class.push(c as u8);
        }
        before.push(sum);
        Profile { class, before, length_m }
    }

    /// The gradient class at `distance_m`.
    pub fn class_at(&self, distance_m: f64) -> usize {
        let k = ((distance_m / PIECE_M).max(0.0) as usize).min(self.class.len() - 1);
        usize::from(self.class[k])
    }

    fn cumulative(&self, distance_m: f64) -> [f64; CLASSES] {
        let d = distance_m.clamp(0.0, self.length_m);
        let k = ((d / PIECE_M) as usize).min(self.class.len() - 1);
        let mut out = self.before[k];
        out[usize::from(self.class[k])] += d - k as f64 * PIECE_M;
        out
    }

    /// Metres in each gradient class between two distances along the course.
    pub fn by_class(&self, from_m: f64, to_m: f64) -> [f64; CLASSES] {
        let (a, b) = (self.cumulative(from_m), self.cumulative(to_m.max(from_m)));
        std::array::from_fn(|i| (b[i] - a[i]).max(0.0))
    }
}

/// Settings of the ETA model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtaConfig {
    /// Flat moving speed assumed before the rider's own, m/s.
    pub prior_speed_mps: f64,
    /// Weight of that prior, seconds of riding.
    pub prior_speed_weight_s: f64,
    /// Weight of the default factor of each gradient class, seconds of riding in it.
    pub prior_class_weight_s: f64,
    /// Fraction of an hour moving assumed by day.
    pub prior_day_activity: f64,
    /// Fraction assumed at night: from `prior_night_from_h` for `prior_night_hours` hours
    /// local, the short nights of an ultra rider (3–5 hours of sleep).
    pub prior_night_activity: f64,
    /// When the assumed night begins, local hour.
    pub prior_night_from_h: usize,
    /// How many hours it lasts.
    pub prior_night_hours: usize,
    /// Weight of those priors, seconds per hour of day.
    pub prior_activity_weight_s: f64,
    /// Half-life of what the rider's hours of day have shown, hours.
    pub activity_half_life_h: f64,
    /// A step slower than this (m/s) along the course is not moving.
    pub moving_min_mps: f64,
    /// Steps longer than this (seconds) are gaps: their moving time is what the model says.
    pub gap_s: f64,
    /// Floor of the spread (log scale).
    pub spread_floor: f64,
}

impl Default for EtaConfig {
    fn default() -> EtaConfig {
        EtaConfig {
            prior_speed_mps: 6.5,
            prior_speed_weight_s: 1_800.0,
            prior_class_weight_s: 900.0,
            prior_day_activity: 0.85,
            prior_night_activity: 0.15,
            prior_night_from_h: 23,
            prior_night_hours: 5,
            prior_activity_weight_s: 1_800.0,
            activity_half_life_h: 48.0,
            moving_min_mps: 1.0,
            gap_s: 300.0,
            spread_floor: 0.03,
        }
    }
}

/// Running mean and variance (Welford), starting from a prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Spread {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Spread {
    fn prior(sd: f64, n: f64) -> Spread {
        Spread { n, mean: 0.0, m2: sd * sd * n }
    }

    fn add(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        self.m2 / self.n
    }
}

/// A block of observations being gathered.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct Block {
    /// Seconds (moving, for speed blocks; elapsed, for activity blocks).
    seconds: f64,
    actual: f64,
    predicted: f64,
}

/// What the ETA model has learned of a rider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtaState {
    /// Metres and seconds moving in each gradient class.
    class_m: [f64; CLASSES],
    class_s: [f64; CLASSES],
    /// Seconds elapsed and moving in each local hour of day, decayed.
    hour_elapsed: [f64; 24],
    hour_moving: [f64; 24],
    speed_spread: Spread,
    activity_spread: Spread,
    speed_block: Block,
    activity_block: Block,
}

impl Default for EtaState {
    fn default() -> EtaState {
        EtaState {
            class_m: [0.0; CLASSES],
            class_s: [0.0; CLASSES],
            hour_elapsed: [0.0; 24],
            hour_moving: [0.0; 24],
            speed_spread: Spread::prior(0.08, 3.0),
            activity_spread: Spread::prior(0.15, 3.0),
            speed_block: Block::default(),
            activity_block: Block::default(),
        }
    }
}

/// An ETA with its range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eta {
    /// Early end of the range (10th percentile).
    pub p10: Nanos,
    /// The expected arrival.
    pub p50: Nanos,
    /// Late end of the range (90th percentile).
    pub p90: Nanos,
}

/// One step of a rider along the course, as the ETA model learns from it.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    /// Time and distance along the course before…
    pub from: (Nanos, f64),
    /// …and after.
    pub to: (Nanos, f64),
    /// The rider was not in a stop.
    pub riding: bool,
    /// Local time's offset from UTC.
    pub offset_s: i32,
}

impl EtaState {
    fn flat_speed(&self, config: &EtaConfig) -> f64 {
        let metres: f64 = self.class_m.iter().sum();
        let flat_seconds: f64 = self.class_s.iter().zip(FACTORS).map(|(s, f)| s * f).sum();
        (metres + config.prior_speed_mps * config.prior_speed_weight_s)
            / (flat_seconds + config.prior_speed_weight_s)
    }

    /// The rider's moving speed in each gradient class, m/s.
    pub fn speeds(&self, config: &EtaConfig) -> [f64; CLASSES] {
        let flat = self.flat_speed(config);
        let w = config.prior_class_weight_s;
        std::array::from_fn(|c| (self.class_m[c] + w * flat * FACTORS[c]) / (self.class_s[c] + w))
    }

    /// Moving seconds for the metres of each class.
    fn moving_s(speeds: &[f64; CLASSES], metres: &[f64; CLASSES]) -> f64 {
        metres.iter().zip(speeds).map(|(m, v)| m / v).sum()
    }

    /// The fraction of each local hour of day the rider is expected to move.
    pub fn activity(&self, config: &EtaConfig) -> [f64; 24] {
        let w = config.prior_activity_weight_s;
        std::array::from_fn(|h| {
            let into_night = (h + 24 - config.prior_night_from_h % 24) % 24;
            let prior = if into_night < config.prior_night_hours {
                config.prior_night_activity
            } else {
                config.prior_day_activity
            };
            (self.hour_moving[h] + w * prior) / (self.hour_elapsed[h] + w)
        })
    }

    /// The share of the moving time from `a_m` to `b_m` that reaching `c_m` takes.
    pub fn share(&self, profile: &Profile, config: &EtaConfig, a_m: f64, c_m: f64, b_m: f64) -> f64 {
        let speeds = self.speeds(config);
        let whole = Self::moving_s(&speeds, &profile.by_class(a_m, b_m));
        if whole > 0.0 {
            Self::moving_s(&speeds, &profile.by_class(a_m, c_m)) / whole
        } else {
            (c_m - a_m) / (b_m - a_m)
        }
    }

    /// Learns from one step.
    pub fn observe(&mut self, profile: &Profile, config: &EtaConfig, o: Observation) {
        let ((t0, d0), (t1, d1)) = (o.from, o.to);
        let dt = (t1 - t0) as f64 / 1e9;
        if dt <= 0.0 {
            return;
        }
        let advance = (d1 - d0).max(0.0);
        let speeds = self.speeds(config);
        let moving = if dt <= config.gap_s {
            let moving = o.riding && advance / dt >= config.moving_min_mps;
            if moving {
                let c = profile.class_at((d0 + d1) / 2.0);
                self.class_m[c] += advance;
                self.class_s[c] += dt;
                self.speed_block.seconds += dt;
                self.speed_block.actual += dt;
                self.speed_block.predicted += advance / speeds[c];
                if self.speed_block.seconds >= 1_800.0 {
                    let b = std::mem::take(&mut self.speed_block);
                    self.speed_spread.add((b.predicted / b.actual).ln());
                }
            }
            if moving {
                dt
            } else {
                0.0
            }
        } else {
            // Unseen: as long as the model says riding that far takes.
            Self::moving_s(&speeds, &profile.by_class(d0, d1)).min(dt)
        };
        let activity = self.activity(config);
        let decay = 0.5_f64.powf(dt / (config.activity_half_life_h * 3_600.0));
        for h in 0..24 {
            self.hour_elapsed[h] *= decay;
            self.hour_moving[h] *= decay;
        }
        // Spread the step over the hours it spans, moving time evenly.
        let mut t = t0;
        let rate = moving / dt;
        while t < t1 {
            let hour = local_hour(t, o.offset_s);
            let to_next = ((hour.floor() + 1.0 - hour) * 3_600.0).max(1.0);
            let span = to_next.min((t1 - t) as f64 / 1e9);
            let h = (hour as usize).min(23);
            self.hour_elapsed[h] += span;
            self.hour_moving[h] += span * rate;
            self.activity_block.predicted += span * activity[h];
            t += (span * 1e9).ceil() as Nanos;
        }
        self.activity_block.seconds += dt;
        self.activity_block.actual += moving;
        if self.activity_block.seconds >= 43_200.0 {
            let b = std::mem::take(&mut self.activity_block);
            if b.actual > 0.0 && b.predicted > 0.0 {
                self.activity_spread.add((b.actual / b.predicted).ln());
            }
        }
    }

    /// When the rider, `from_m` along the course at `now`, will be `to_m` along it.
    pub fn eta(
        &self,
        profile: &Profile,
        config: &EtaConfig,
        now: Nanos,
        offset_s: i32,
        from_m: f64,
        to_m: f64,
    ) -> Eta {
        let speeds = self.speeds(config);
        let moving = Self::moving_s(&speeds, &profile.by_class(from_m, to_m));
        let activity = self.activity(config);
        let (mut t, mut left) = (now, moving);
        // Quarter-hour steps; at most 60 days ahead.
        for _ in 0..(60 * 96) {
            if left <= 0.0 {
                break;
            }
            let f = activity[(local_hour(t, offset_s) as usize).min(23)].max(0.01);
            let step = QUARTER_HOUR_S.min(left / f);
            left -= step * f;
            t += (step * 1e9) as Nanos;
        }
        let horizon = (t - now) as f64;
        let blocks_s = (moving / 1_800.0).max(1.0);
        let blocks_a = (horizon / 1e9 / 43_200.0).max(1.0);
        let variance = self.speed_spread.variance() / blocks_s.sqrt()
            + self.activity_spread.variance() / blocks_a.sqrt()
            + config.spread_floor * config.spread_floor;
        let z = 1.281_551_6 * variance.sqrt();
        let at = |factor: f64| now + (horizon * factor) as Nanos;
        Eta { p10: at((-z).exp()), p50: t, p90: at(z.exp()) }
    }
}

/// The linear ETA every peer gives: the pace so far (elapsed time over distance since the
/// start) times the distance left. `None` before any distance.
pub fn linear_eta(start: Nanos, now: Nanos, done_m: f64, to_m: f64) -> Option<Nanos> {
    (done_m > 0.0).then(|| now + ((now - start) as f64 / done_m * (to_m - done_m).max(0.0)) as Nanos)
}

#[cfg(test)]
mod tests {
    use velometry_core::geo::offset;

    use super::*;

    const S: Nanos = 1_000_000_000;

    fn hill() -> Course {
        // 10 km flat, then 10 km at 5 %.
        let points = (0..=200).map(|i| {
            let d = f64::from(i) * 100.0;
            let (lat, lon) = offset(45.0, 7.0, 0.0, d);
            (lat, lon, Some(if d <= 10_000.0 { 0.0 } else { (d - 10_000.0) * 0.05 }))
        });
        Course::new(points).expect("course")
    }

    #[test]
    fn the_profile_classes_the_climb() {
        let profile = Profile::new(&hill());
        let flat = profile.by_class(0.0, 10_000.0);
        assert!((flat[3] - 10_000.0).abs() < 1.0, "{flat:?}");
        let climb = profile.by_class(10_000.0, 30_000.0);
        assert!((climb[5] - 10_000.0).abs() < 250.0, "{climb:?}");
        assert_eq!(profile.class_at(15_000.0), 5);
    }

    #[test]
    fn a_rider_learns_and_climbs_slower_and_the_range_holds_the_middle() {
        let (profile, config) = (Profile::new(&hill()), EtaConfig::default());
        let mut state = EtaState::default();
        // Noon UTC, riding the flat at 8 m/s for 10 km.
        let start = 1_782_907_200 * S;
        for i in 0..125 {
            let step = |k: i64| (start + k * 10 * S, k as f64 * 80.0);
            state.observe(
                &profile,
                &config,
                Observation { from: step(i), to: step(i + 1), riding: true, offset_s: 0 },
            );
        }
        let speeds = state.speeds(&config);
        assert!(speeds[3] > 7.5, "{speeds:?}");
        assert!(speeds[5] < speeds[3] * 0.7);
        let now = start + 1_250 * S;
        let eta = state.eta(&profile, &config, now, 0, 10_000.0, 20_000.0);
        assert!(eta.p10 < eta.p50 && eta.p50 < eta.p90);
        let flat_time = (eta.p50 - now) as f64 / 1e9;
        assert!(flat_time > 10_000.0 / speeds[3] * 1.2, "a climb ahead takes longer: {flat_time} s");
        assert_eq!(linear_eta(start, now, 10_000.0, 20_000.0), Some(now + 1_250 * S));
    }

    #[test]
    fn a_night_ahead_is_waited_out() {
        let (profile, config) = (Profile::new(&hill()), EtaConfig::default());
        let state = EtaState::default();
        let evening = 1_782_907_200 * S + 11 * 3_600 * S; // 23:00 UTC
        let noon = 1_782_907_200 * S;
        let by_night = state.eta(&profile, &config, evening, 0, 0.0, 10_000.0).p50 - evening;
        let by_day = state.eta(&profile, &config, noon, 0, 0.0, 10_000.0).p50 - noon;
        assert!(by_night > by_day * 2, "{by_night} vs {by_day}");
    }
}
