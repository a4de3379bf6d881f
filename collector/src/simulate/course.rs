//! A simulated rider riding a given course for days, and the ground truth of the ride.
//!
//! The rider pedals at an effort that fades over the days, at the speed that effort gives on
//! the gradient under them ([`super::speed_for`]), and keeps an ultra rider's day: short
//! stops every couple of hours, a longer rest in the day, and a sleep of 3–5 hours each
//! night (bedtime 22:00–23:30 local solar time). The phone sends a fix every
//! `fix_every_s`, with GPS noise whose size wanders between 5 and 30 m (correlated over a
//! minute, as real receivers' is), and the device's own speed and heading. The signal drops
//! for minutes to an hour now and then, and once, on the second day, for about three hours
//! while the rider rides on. Once, past a third of the course, the rider takes a shortcut
//! (a straight line to a later part of the course that saves a kilometre or more, where the
//! course has one); once, at a fifth, they take a wrong turn, ride out a kilometre or two,
//! and come back.
//!
//! Everything is seeded: the same course, options and seed give the same ride. A ride of
//! days takes milliseconds; nothing waits for the wall clock.
//!
//! The truth ([`Truth`]) has a row per fix slot, sent or not: the true position, the true
//! distance along the course (while off course, where the rider left it), the distance
//! ridden, and what the rider was doing; and the stops and dropouts as intervals.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use velometry_core::course::Course;
use velometry_core::geo::{bearing_deg, haversine_m, offset};
use velometry_core::time::Nanos;

use super::speed_for;

const S: Nanos = 1_000_000_000;

/// What the simulated ride includes.
#[derive(Debug, Clone, PartialEq)]
pub struct RideOptions {
    /// The seed: the same seed rides the same ride.
    pub seed: u64,
    /// When the ride starts.
    pub start: Nanos,
    /// Seconds between fixes.
    pub fix_every_s: u32,
    /// GPS noise of 5–30 m.
    pub noise: bool,
    /// Signal dropouts, and the one of about three hours on the second day.
    pub dropouts: bool,
    /// Stops, rests and nights' sleep.
    pub stops: bool,
    /// One shortcut and one wrong turn and back.
    pub detours: bool,
    /// One night's sleep with the phone off (no fixes until the rider rides on).
    pub phone_off_one_night: bool,
}

impl RideOptions {
    /// Everything on, a fix every 10 s.
    pub fn new(seed: u64, start: Nanos) -> RideOptions {
        RideOptions {
            seed,
            start,
            fix_every_s: 10,
            noise: true,
            dropouts: true,
            stops: true,
            detours: true,
            phone_off_one_night: false,
        }
    }
}

/// A fix as the phone sends it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimFix {
    /// When.
    pub time: Nanos,
    /// Latitude, degrees, with noise.
    pub lat: f64,
    /// Longitude, degrees, with noise.
    pub lon: f64,
    /// Altitude, metres.
    pub alt: f64,
    /// Speed, m/s, with noise.
    pub speed: f64,
    /// Heading, degrees, with noise.
    pub heading: f64,
}

impl SimFix {
    /// The fix as `POST /v1/readings` takes it, stamped `time` (to the millisecond).
    pub fn reading_at(&self, time: Nanos) -> serde_json::Value {
        serde_json::json!({
            "metric": "gps", "time": time / 1_000_000, "lat": self.lat, "lon": self.lon, "alt": self.alt,
            "speed": self.speed, "heading": self.heading,
        })
    }
}

/// What the rider was doing at a fix slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Doing {
    /// Riding on the course.
    Riding,
    /// A short stop.
    Stopped,
    /// A rest in the day.
    Resting,
    /// A night's sleep.
    Sleeping,
    /// Riding off the course (shortcut, wrong turn).
    OffCourse,
}

/// The truth at one fix slot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TruthRow {
    /// When.
    pub time: Nanos,
    /// The true position.
    pub lat: f64,
    /// The true position.
    pub lon: f64,
    /// The true distance along the course (while off course: where the rider left it).
    pub distance_m: f64,
    /// Metres ridden since the start.
    pub ridden_m: f64,
    /// What the rider was doing.
    pub doing: Doing,
    /// The phone sent this fix (not in a dropout).
    pub sent: bool,
}

/// An interval of the ride.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// From.
    pub start: Nanos,
    /// To.
    pub end: Nanos,
    /// What the rider was doing.
    pub doing: Doing,
    /// Distance along the course at its start.
    pub distance_m: f64,
}

/// The ground truth of a ride.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// One row per fix slot.
    pub rows: Vec<TruthRow>,
    /// Stops, rests and sleeps.
    pub stops: Vec<Interval>,
    /// Times without signal (`doing` is what the rider did meanwhile).
    pub dropouts: Vec<Interval>,
    /// The shortcut: from and to distance along the course.
    pub shortcut: Option<(f64, f64)>,
    /// The wrong turn: distance along the course where it left and came back.
    pub wrong_turn: Option<f64>,
    /// When the rider reached the end of the course.
    pub finished: Option<Nanos>,
}

impl Truth {
    /// When the rider first reached `distance_m` along the course, riding it (interpolated
    /// between fix slots); `None` if they never did or skipped it by the shortcut.
    pub fn arrival(&self, distance_m: f64) -> Option<Nanos> {
        self.rows.windows(2).find_map(|w| {
            let (a, b) = (&w[0], &w[1]);
            if !(a.distance_m < distance_m && distance_m <= b.distance_m) {
                return None;
            }
            if a.doing == Doing::OffCourse {
                return Some(None);
            }
            let f = (distance_m - a.distance_m) / (b.distance_m - a.distance_m);
            Some(Some(a.time + ((b.time - a.time) as f64 * f) as Nanos))
        })?
    }
}

/// A simulated ride: what the phone sent, and the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Ride {
    /// The fixes sent, in time order.
    pub fixes: Vec<SimFix>,
    /// What really happened.
    pub truth: Truth,
}

/// Correlated GPS noise (an AR(1) process per axis) whose size wanders between 5 and 30 m.
struct Noise {
    north: f64,
    east: f64,
    sigma: f64,
    until: Nanos,
}

impl Noise {
    fn step(&mut self, rng: &mut StdRng, t: Nanos) -> (f64, f64) {
        if t >= self.until {
            self.sigma = rng.random_range(5.0..30.0);
            self.until = t + rng.random_range(1_200..3_600) * S;
        }
        // A minute's correlation at one step a second.
        let rho: f64 = (-1.0_f64 / 60.0).exp();
        let k = (1.0 - rho * rho).sqrt() * self.sigma;
        self.north = rho * self.north + k * gauss(rng);
        self.east = rho * self.east + k * gauss(rng);
        (self.north, self.east)
    }
}

fn gauss(rng: &mut StdRng) -> f64 {
    // Box–Muller; 1 − u keeps the logarithm finite.
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Off the course: straight lines through `path`, then back on at `resume_m`.
struct Excursion {
    path: Vec<(f64, f64)>,
    leg: usize,
    /// Metres along the current leg.
    on_leg: f64,
    left_m: f64,
    resume_m: f64,
}

/// Where the course has a shortcut: leaving at `d1` for `d2`, the straight line at least
/// 150 m (so it is off the course) and saving at least a kilometre.
fn find_shortcut(course: &Course) -> Option<(f64, f64)> {
    let length = course.length_m();
    let mut d1 = length / 3.0;
    while d1 < length * 0.8 {
        let (lat1, lon1, _) = course.position_at(d1);
        let mut d2 = d1 + 1_500.0;
        while d2 < (d1 + 8_000.0).min(length - 500.0) {
            let (lat2, lon2, _) = course.position_at(d2);
            let straight = haversine_m(lat1, lon1, lat2, lon2);
            if straight >= 150.0 && d2 - d1 - 1.2 * straight >= 1_000.0 && straight < 0.35 * (d2 - d1) {
                return Some((d1, d2));
            }
            d2 += 100.0;
        }
        d1 += 250.0;
    }
    None
}

fn heading_at(course: &Course, d: f64) -> f64 {
    let (a, b, _) = course.position_at(d - 5.0);
    let (c, e, _) = course.position_at(d + 5.0);
    bearing_deg(a, b, c, e)
}

fn gradient_at(course: &Course, d: f64) -> f64 {
    match (course.position_at(d - 25.0).2, course.position_at(d + 25.0).2) {
        (Some(a), Some(b)) => (b - a) / 50.0,
        _ => 0.0,
    }
}

/// Local solar hour at `time` and longitude `lon`.
fn solar_hour(time: Nanos, lon: f64) -> f64 {
    let seconds = time.div_euclid(S) as f64 + lon / 15.0 * 3_600.0;
    seconds.rem_euclid(86_400.0) / 3_600.0
}

/// Rides `course` from its start to its end (or for 30 days at most).
pub fn ride(course: &Course, options: &RideOptions) -> Ride {
    let mut rng = StdRng::seed_from_u64(options.seed ^ 0x005e_edc0_u64.wrapping_mul(0x9e37_79b9));
    let length = course.length_m();
    let ftp: f64 = rng.random_range(200.0..290.0);
    let lon0 = course.points()[0].lon;
    let mut noise = Noise { north: 0.0, east: 0.0, sigma: 10.0, until: 0 };
    let shortcut = if options.detours { find_shortcut(course) } else { None };
    let wrong_turn = options.detours.then_some(length * 0.2);
    let (mut t, mut along, mut ridden, mut speed) = (options.start, 0.0_f64, 0.0_f64, 6.0_f64);
    let mut lat_lon = course.position_at(0.0);
    let mut truth = Truth {
        rows: Vec::new(),
        stops: Vec::new(),
        dropouts: Vec::new(),
        shortcut: None,
        wrong_turn: None,
        finished: None,
    };
    let mut fixes = Vec::new();
    // Seconds of riding until the next short stop, rest and dropout.
    let mut riding_s = 0.0_f64;
    let mut next_short = rng.random_range(5_400.0..10_800.0);
    let mut next_rest = rng.random_range(18_000.0..25_000.0);
    let mut next_dropout = rng.random_range(10_000.0..30_000.0);
    let mut long_dropout_done = false;
    let mut phone_off_done = false;
    let mut stop: Option<(Nanos, Doing)> = None;
    let mut dropout: Option<Nanos> = None;
    let mut excursion: Option<Excursion> = None;
    let mut slept_night = i64::MIN;
    let mut wander = 0.0_f64;
    let end = options.start + 30 * 86_400 * S;
    let every = Nanos::from(options.fix_every_s.max(1)) * S;
    while t < end {
        let day = (t - options.start) / (86_400 * S);
        let hour = solar_hour(t, lon0);
        // What to do this second.
        if stop.is_some_and(|(until, _)| t >= until) {
            stop = None;
        }
        if stop.is_none() && excursion.is_none() && options.stops {
            let bedtime = 22.0 + (options.seed.wrapping_add(day as u64) % 4) as f64 * 0.5;
            let night = hour >= bedtime || hour < 2.0;
            // Each night counted from local noon to noon.
            let night_index =
                ((t.div_euclid(S) as f64 + lon0 / 15.0 * 3_600.0 - 43_200.0) / 86_400.0).floor() as i64;
            if night && slept_night < night_index && t > options.start + 6 * 3_600 * S {
                slept_night = night_index;
                let until = t + (rng.random_range(3.0 * 3_600.0..5.0 * 3_600.0) as Nanos) * S;
                stop = Some((until, Doing::Sleeping));
                truth.stops.push(Interval {
                    start: t,
                    end: until,
                    doing: Doing::Sleeping,
                    distance_m: along,
                });
                if options.phone_off_one_night && !phone_off_done && day >= 1 && dropout.is_none() {
                    phone_off_done = true;
                    dropout = Some(until);
                    truth.dropouts.push(Interval {
                        start: t,
                        end: until,
                        doing: Doing::Sleeping,
                        distance_m: along,
                    });
                }
            } else if riding_s >= next_rest && (8.0..19.0).contains(&hour) {
                next_rest = riding_s + rng.random_range(18_000.0..25_000.0);
                let length_s = rng.random_range(2_400.0..4_800.0) as Nanos;
                stop = Some((t + length_s * S, Doing::Resting));
                truth.stops.push(Interval {
                    start: t,
                    end: t + length_s * S,
                    doing: Doing::Resting,
                    distance_m: along,
                });
            } else if riding_s >= next_short {
                next_short = riding_s + rng.random_range(5_400.0..10_800.0);
                let length_s = rng.random_range(300.0..1_200.0) as Nanos;
                stop = Some((t + length_s * S, Doing::Stopped));
                truth.stops.push(Interval {
                    start: t,
                    end: t + length_s * S,
                    doing: Doing::Stopped,
                    distance_m: along,
                });
            }
        }
        if dropout.is_some_and(|until| t >= until) {
            dropout = None;
        }
        if options.dropouts && dropout.is_none() && stop.is_none() {
            let long = !long_dropout_done && day >= 1 && (11.0..13.0).contains(&hour);
            if long || riding_s >= next_dropout {
                let length_s = if long {
                    long_dropout_done = true;
                    rng.random_range(2.5 * 3_600.0..3.5 * 3_600.0)
                } else {
                    next_dropout = riding_s + rng.random_range(10_000.0..30_000.0);
                    rng.random_range(120.0..2_700.0)
                } as Nanos;
                dropout = Some(t + length_s * S);
                truth.dropouts.push(Interval {
                    start: t,
                    end: t + length_s * S,
                    doing: Doing::Riding,
                    distance_m: along,
                });
            }
        }
        // Start a detour when its place comes.
        if excursion.is_none() && stop.is_none() {
            if let Some((d1, d2)) = shortcut.filter(|&(d1, _)| truth.shortcut.is_none() && along >= d1) {
                let (a, b, _) = course.position_at(d2);
                excursion = Some(Excursion {
                    path: vec![(lat_lon.0, lat_lon.1), (a, b)],
                    leg: 0,
                    on_leg: 0.0,
                    left_m: along,
                    resume_m: d2,
                });
                truth.shortcut = Some((d1, d2));
            } else if let Some(w) = wrong_turn.filter(|&w| truth.wrong_turn.is_none() && along >= w) {
                let out = rng.random_range(1_000.0..2_000.0);
                let side = heading_at(course, along) + if rng.random_bool(0.5) { 90.0 } else { -90.0 };
                let (sn, se) = (side.to_radians().cos() * out, side.to_radians().sin() * out);
                let far = offset(lat_lon.0, lat_lon.1, sn, se);
                excursion = Some(Excursion {
                    path: vec![(lat_lon.0, lat_lon.1), far, (lat_lon.0, lat_lon.1)],
                    leg: 0,
                    on_leg: 0.0,
                    left_m: along,
                    resume_m: along,
                });
                truth.wrong_turn = Some(w);
            }
        }
        // Move one second.
        let doing = match (stop, &excursion) {
            (Some((_, doing)), _) => doing,
            (None, Some(_)) => Doing::OffCourse,
            (None, None) => Doing::Riding,
        };
        let mut heading = heading_at(course, along);
        if doing == Doing::Riding || doing == Doing::OffCourse {
            let gradient = if doing == Doing::Riding { gradient_at(course, along) } else { 0.0 };
            wander = (wander + rng.random_range(-0.02..0.02)).clamp(-0.15, 0.15);
            let effort = (0.62 - 0.03 * day as f64).max(0.45) + wander;
            let wanted = (ftp * effort * (1.0 + 3.0 * gradient)).clamp(0.0, 1.2 * ftp);
            let power = if gradient < -0.04 { 0.0 } else { wanted };
            // Riders stand on the pedals rather than crawl: never under 2.5 m/s, and they
            // brake above 16 m/s.
            speed = speed_for(power, gradient, speed).clamp(2.5, 16.0);
            ridden += speed;
            riding_s += 1.0;
            if let Some(x) = &mut excursion {
                x.on_leg += speed;
                loop {
                    let (a, b) = (x.path[x.leg], x.path[x.leg + 1]);
                    let leg = haversine_m(a.0, a.1, b.0, b.1);
                    if x.on_leg < leg {
                        let f = x.on_leg / leg.max(1e-9);
                        lat_lon = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, None);
                        heading = bearing_deg(a.0, a.1, b.0, b.1);
                        break;
                    }
                    x.on_leg -= leg;
                    x.leg += 1;
                    if x.leg + 1 == x.path.len() {
                        along = x.resume_m;
                        lat_lon = course.position_at(along);
                        excursion = None;
                        break;
                    }
                }
            } else {
                along = (along + speed).min(length);
                lat_lon = course.position_at(along);
            }
        } else {
            speed = 0.0;
        }
        t += S;
        if (t - options.start) % every == 0 {
            let distance_m = excursion.as_ref().map_or(along, |x| x.left_m);
            let sent = dropout.is_none();
            truth.rows.push(TruthRow {
                time: t,
                lat: lat_lon.0,
                lon: lat_lon.1,
                distance_m,
                ridden_m: ridden,
                doing,
                sent,
            });
            if sent {
                let (dn, de) = if options.noise { noise.step(&mut rng, t) } else { (0.0, 0.0) };
                let (lat, lon) = offset(lat_lon.0, lat_lon.1, dn, de);
                let alt = course.position_at(along).2.unwrap_or(0.0);
                let measured = (speed + if options.noise { 0.3 * gauss(&mut rng) } else { 0.0 }).max(0.0);
                let heading =
                    (heading + if options.noise { 8.0 * gauss(&mut rng) } else { 0.0 }).rem_euclid(360.0);
                fixes.push(SimFix { time: t, lat, lon, alt, speed: measured, heading });
            }
        } else if options.noise {
            noise.step(&mut rng, t);
        }
        if along >= length && excursion.is_none() && truth.finished.is_none() {
            // The rider stands at the finish for a few minutes, phone on.
            truth.finished = Some(t);
            stop = Some((t + 300 * S, Doing::Stopped));
        }
        if truth.finished.is_some() && stop.is_none() {
            break;
        }
    }
    Ride { fixes, truth }
}

#[cfg(test)]
mod tests {
    use velometry_core::testkit::courses;

    use super::*;

    // 2026-07-01T06:00:00Z: morning in the Alps.
    const START: Nanos = 1_782_885_600 * S;
    // 2026-07-01T14:00:00Z: morning in California, where the winding courses start.
    const START_WEST: Nanos = START + 8 * 3_600 * S;

    #[test]
    fn a_course_is_ridden_to_its_end_with_its_days_and_detours() {
        let course = courses::winding(3, 600_000.0);
        let ride = ride(&course, &RideOptions::new(5, START_WEST));
        let truth = &ride.truth;
        let finished = truth.finished.expect("reaches the end");
        let days = (finished - START_WEST) as f64 / 86_400e9;
        assert!((1.2..4.0).contains(&days), "600 km in {days} days");
        assert!(truth.stops.iter().filter(|s| s.doing == Doing::Sleeping).count() >= 1);
        assert!(truth.stops.iter().any(|s| s.doing == Doing::Resting));
        let long =
            truth.dropouts.iter().find(|d| d.end - d.start >= 2 * 3_600 * S).expect("the long dropout");
        assert_eq!(long.doing, Doing::Riding);
        assert!(truth.wrong_turn.is_some());
        // Sent fixes are the slots outside dropouts, noisy within 5–30 m (some a bit more).
        assert_eq!(ride.fixes.len(), truth.rows.iter().filter(|r| r.sent).count());
        let sent: Vec<&TruthRow> = truth.rows.iter().filter(|r| r.sent).collect();
        let errors: Vec<f64> =
            ride.fixes.iter().zip(&sent).map(|(f, r)| haversine_m(f.lat, f.lon, r.lat, r.lon)).collect();
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        assert!((5.0..35.0).contains(&mean), "{mean} m");
        assert!(truth.rows.windows(2).all(|w| w[1].ridden_m >= w[0].ridden_m));
        assert_eq!(ride, super::ride(&course, &RideOptions::new(5, START_WEST)), "repeatable");
    }

    #[test]
    fn the_parallel_roads_have_a_shortcut_and_arrivals_skip_it() {
        let course = courses::parallel_roads(1);
        let ride = ride(&course, &RideOptions::new(1, START));
        let (d1, d2) = ride.truth.shortcut.expect("across the two roads");
        assert!(d2 - d1 >= 1_000.0);
        assert_eq!(ride.truth.arrival((d1 + d2) / 2.0), None, "skipped");
        let a = ride.truth.arrival(5_000.0).expect("ridden");
        let b = ride.truth.arrival(6_000.0).expect("ridden");
        assert!(b > a);
    }
}
