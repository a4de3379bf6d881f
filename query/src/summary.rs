//! Ride summaries for `GET /v1/riders/{rider}/summary`: distance, moving time, climbing,
//! speed, heart rate (with zones) and power of a rider over a time range.
//!
//! A three-week ride is millions of readings, so nothing here keeps them: the handler streams
//! them out of InfluxDB in time order, one measurement after another, into a
//! [`SummaryBuilder`], which holds only running sums and the previous reading of each kind;
//! [`SummaryBuilder::finish`] turns those into a [`Summary`]. Every number is defined on the
//! field that carries it, and the thresholds are the constants below.

use std::collections::VecDeque;

use serde::Serialize;
use velometry_core::geo::haversine_m;

/// The longest interval between consecutive readings of one kind that still counts as
/// continuous. A longer one is a pause (auto-pause, smart recording, a device switched off):
/// it adds no moving time, no zone time and no work, because nothing says what the rider did
/// during it.
pub const MAX_INTERVAL_S: f64 = 60.0;

/// The slowest speed that counts as moving. Below it the rider is standing and the fixes
/// only wander with GPS noise.
pub const MIN_MOVING_SPEED_MPS: f64 = 1.0;

/// How far the altitude must move away from the last counted altitude before it counts as
/// climbing or descending. Barometric and GPS altitude wander by a metre or two on the flat;
/// summing that noise would report hundreds of metres of climbing on a flat ride.
pub const ELEVATION_HYSTERESIS_M: f64 = 3.0;

/// The shortest span over which speed is derived from positions when no fix records a
/// speed. Over the one-second interval of a 1 Hz device a single misplaced fix reads as a
/// sprint; over five seconds its error is diluted.
pub const MIN_DERIVED_SPEED_SPAN_S: f64 = 5.0;

/// Lower bounds of heart-rate zones 1 to 5 in percent of the rider's maximum heart rate.
/// Each zone runs from its bound (inclusive) to the next zone's (exclusive); zone 5 is
/// open above, because a rider can exceed the configured maximum.
pub const HEART_RATE_ZONE_PERCENT: [f64; 5] = [0.0, 60.0, 70.0, 80.0, 90.0];

/// What a rider did over a time range: the JSON body of the summary endpoint (the handler
/// adds the rider and the range around it).
///
/// ```json
/// {"distance_m":92828.4,"moving_time_s":14402.0,"elevation_gain_m":1250.0,
///  "elevation_loss_m":1247.0,"avg_speed_mps":6.45,"max_speed_mps":17.9,
///  "heart_rate":{"avg_bpm":141.3,"max_bpm":183.0,"samples":15890,"zones":[
///    {"zone":1,"min_bpm":0.0,"max_bpm":114.0,"seconds":1020.0},
///    {"zone":2,"min_bpm":114.0,"max_bpm":133.0,"seconds":3300.0},
///    {"zone":3,"min_bpm":133.0,"max_bpm":152.0,"seconds":7200.0},
///    {"zone":4,"min_bpm":152.0,"max_bpm":171.0,"seconds":3100.0},
///    {"zone":5,"min_bpm":171.0,"max_bpm":null,"seconds":1200.0}]},
///  "power":null}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Sum of the haversine distances ([`velometry_core::geo::haversine_m`]) between
    /// consecutive GPS fixes, pauses included: a fix after a pause is still somewhere the
    /// rider got to. 0 without fixes.
    pub distance_m: f64,
    /// Sum of the intervals between consecutive fixes that last at most [`MAX_INTERVAL_S`]
    /// and over which the speed is at least [`MIN_MOVING_SPEED_MPS`]. The speed over an
    /// interval is the later fix's recorded `speed` if it has one, else distance / time.
    pub moving_time_s: f64,
    /// Climbing, smoothed by hysteresis: an anchor starts at the first altitude; whenever
    /// an altitude lies more than [`ELEVATION_HYSTERESIS_M`] above the anchor, the
    /// difference is added and the anchor moves there. Noise smaller than the threshold
    /// adds nothing; the last metres of a climb (less than the threshold) are not counted.
    /// `null` when no fix has an altitude.
    pub elevation_gain_m: Option<f64>,
    /// Descending, smoothed like [`Summary::elevation_gain_m`] with the same anchor;
    /// a positive number. `null` when no fix has an altitude.
    pub elevation_loss_m: Option<f64>,
    /// [`Summary::distance_m`] / [`Summary::moving_time_s`]; `null` without moving time.
    pub avg_speed_mps: Option<f64>,
    /// The highest recorded `speed` of any fix. When no fix records a speed: the highest
    /// distance / time over spans of consecutive fixes lasting at least
    /// [`MIN_DERIVED_SPEED_SPAN_S`] (for each fix, the shortest such span ending at it; spans
    /// do not cross pauses). `null` when neither exists.
    pub max_speed_mps: Option<f64>,
    /// Heart rate; `null` without heart-rate samples.
    pub heart_rate: Option<HeartRateSummary>,
    /// Power; `null` without power samples.
    pub power: Option<PowerSummary>,
    /// Time of the earliest reading of any kind, nanoseconds since the epoch. Not in the
    /// JSON: the handler decides how to show the range.
    #[serde(skip)]
    pub first_ns: Option<i64>,
    /// Time of the latest reading of any kind, nanoseconds since the epoch. Not in the JSON.
    #[serde(skip)]
    pub last_ns: Option<i64>,
}

/// Heart rate over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartRateSummary {
    /// Arithmetic mean of the samples (summed in order, divided once), so it equals the
    /// mean of a device's recorded values. Not weighted by time.
    pub avg_bpm: f64,
    /// The highest sample.
    pub max_bpm: f64,
    /// How many samples there were.
    pub samples: u64,
    /// Time in zones 1 to 5, from the rider's `max_hr` (bounds in
    /// [`HEART_RATE_ZONE_PERCENT`]). The interval from each sample to the next is credited
    /// to the zone of the earlier sample; intervals longer than [`MAX_INTERVAL_S`] are gaps
    /// and credit nothing. `null` when the rider has no `max_hr`.
    pub zones: Option<Vec<HeartRateZone>>,
}

/// Time spent in one heart-rate zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartRateZone {
    /// Zone number, 1 to 5.
    pub zone: u8,
    /// Lower bound, inclusive (0 for zone 1).
    pub min_bpm: f64,
    /// Upper bound, exclusive; `null` for zone 5, which is open above.
    pub max_bpm: Option<f64>,
    /// Seconds credited to the zone.
    pub seconds: f64,
}

/// Power over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerSummary {
    /// Arithmetic mean of the samples (summed in order, divided once). Not weighted by time.
    pub avg_watts: f64,
    /// The highest sample.
    pub max_watts: f64,
    /// Σ watts × interval to the next sample / 1000; intervals longer than
    /// [`MAX_INTERVAL_S`] are gaps and add nothing, nor does the last sample.
    pub work_kj: f64,
    /// How many samples there were.
    pub samples: u64,
}

/// Accumulates readings into a [`Summary`] without keeping them.
///
/// Each kind of reading must arrive in time order; the kinds may come one after another or
/// interleaved. A reading earlier than the previous one of its kind is still counted in
/// sums, means and maxima, but the interval to it credits no time.
#[derive(Debug)]
pub struct SummaryBuilder {
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    gps: GpsTotals,
    heart_rate: Samples,
    /// Lower bounds of the zones in bpm; `None` without `max_hr`.
    zone_bounds: Option<[f64; 5]>,
    zone_seconds: [f64; 5],
    power: Samples,
    joules: f64,
}

impl SummaryBuilder {
    /// A builder for a rider whose maximum heart rate is `max_hr` (from the riders file;
    /// without it the summary has no heart-rate zones).
    pub fn new(max_hr: Option<f64>) -> SummaryBuilder {
        SummaryBuilder {
            first_ns: None,
            last_ns: None,
            gps: GpsTotals::default(),
            heart_rate: Samples::default(),
            // Percent first, then divide: exact bounds for a whole-number max_hr (200 → 120,
            // 140, …), so a sample of exactly 120 bpm lands in zone 2.
            zone_bounds: max_hr.map(|max| HEART_RATE_ZONE_PERCENT.map(|percent| max * percent / 100.0)),
            zone_seconds: [0.0; 5],
            power: Samples::default(),
            joules: 0.0,
        }
    }

    /// Adds a GPS fix; fixes must come in time order.
    pub fn gps(&mut self, time_ns: i64, lat: f64, lon: f64, alt: Option<f64>, speed: Option<f64>) {
        self.seen(time_ns);
        self.gps.push(time_ns, lat, lon, alt, speed);
    }

    /// Adds a heart-rate sample; samples must come in time order.
    pub fn heart_rate(&mut self, time_ns: i64, bpm: f64) {
        self.seen(time_ns);
        if let (Some((previous, seconds)), Some(bounds)) =
            (self.heart_rate.push(time_ns, bpm), &self.zone_bounds)
        {
            self.zone_seconds[zone_index(bounds, previous)] += seconds;
        }
    }

    /// Adds a power sample; samples must come in time order.
    pub fn power(&mut self, time_ns: i64, watts: f64) {
        self.seen(time_ns);
        if let Some((previous, seconds)) = self.power.push(time_ns, watts) {
            self.joules += previous * seconds;
        }
    }

    /// The summary of everything added.
    pub fn finish(self) -> Summary {
        let gps = self.gps;
        let heart_rate = self.heart_rate.stats().map(|(avg_bpm, max_bpm, samples)| {
            let zones = self.zone_bounds.map(|bounds| {
                (0..5)
                    .map(|i| HeartRateZone {
                        zone: i as u8 + 1,
                        min_bpm: bounds[i],
                        max_bpm: bounds.get(i + 1).copied(),
                        seconds: self.zone_seconds[i],
                    })
                    .collect()
            });
            HeartRateSummary { avg_bpm, max_bpm, samples, zones }
        });
        let power = self.power.stats().map(|(avg_watts, max_watts, samples)| PowerSummary {
            avg_watts,
            max_watts,
            work_kj: self.joules / 1000.0,
            samples,
        });
        Summary {
            distance_m: gps.distance_m,
            moving_time_s: gps.moving_s,
            elevation_gain_m: gps.elevation.as_ref().map(|e| e.gain),
            elevation_loss_m: gps.elevation.as_ref().map(|e| e.loss),
            avg_speed_mps: (gps.moving_s > 0.0).then(|| gps.distance_m / gps.moving_s),
            max_speed_mps: gps.max_recorded_speed.or(gps.max_derived_speed),
            heart_rate,
            power,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
        }
    }

    fn seen(&mut self, time_ns: i64) {
        self.first_ns = Some(self.first_ns.map_or(time_ns, |t| t.min(time_ns)));
        self.last_ns = Some(self.last_ns.map_or(time_ns, |t| t.max(time_ns)));
    }
}

/// Running totals over GPS fixes.
#[derive(Debug, Default)]
struct GpsTotals {
    /// The previous fix: time, latitude, longitude.
    previous: Option<(i64, f64, f64)>,
    distance_m: f64,
    moving_s: f64,
    elevation: Option<Hysteresis>,
    max_recorded_speed: Option<f64>,
    max_derived_speed: Option<f64>,
    /// (time, distance so far) of the recent fixes since the last pause, just enough of them
    /// to span [`MIN_DERIVED_SPEED_SPAN_S`]: a handful at 1 Hz, whatever the ride's length.
    window: VecDeque<(i64, f64)>,
}

impl GpsTotals {
    fn push(&mut self, time_ns: i64, lat: f64, lon: f64, alt: Option<f64>, speed: Option<f64>) {
        if let Some((previous_ns, previous_lat, previous_lon)) = self.previous {
            let metres = haversine_m(previous_lat, previous_lon, lat, lon);
            self.distance_m += metres;
            match interval_s(previous_ns, time_ns) {
                Some(seconds) => {
                    let moving = match speed {
                        Some(speed) => speed >= MIN_MOVING_SPEED_MPS,
                        None => seconds > 0.0 && metres / seconds >= MIN_MOVING_SPEED_MPS,
                    };
                    if moving {
                        self.moving_s += seconds;
                    }
                }
                // Whatever happened during a pause is no evidence of speed.
                None => self.window.clear(),
            }
        }
        self.previous = Some((time_ns, lat, lon));
        if let Some(speed) = speed {
            self.max_recorded_speed = Some(self.max_recorded_speed.map_or(speed, |max| max.max(speed)));
        }
        self.derive_speed(time_ns);
        if let Some(alt) = alt {
            match &mut self.elevation {
                Some(hysteresis) => hysteresis.push(alt),
                None => self.elevation = Some(Hysteresis { anchor: alt, gain: 0.0, loss: 0.0 }),
            }
        }
    }

    /// Updates the derived maximum speed with the shortest span of at least
    /// [`MIN_DERIVED_SPEED_SPAN_S`] that ends at the fix just added.
    fn derive_speed(&mut self, time_ns: i64) {
        let span_s = |start_ns: i64| (time_ns - start_ns) as f64 / 1e9;
        self.window.push_back((time_ns, self.distance_m));
        while self.window.len() >= 2 && span_s(self.window[1].0) >= MIN_DERIVED_SPEED_SPAN_S {
            self.window.pop_front();
        }
        if let Some(&(start_ns, start_m)) = self.window.front() {
            let seconds = span_s(start_ns);
            if seconds >= MIN_DERIVED_SPEED_SPAN_S {
                let speed = (self.distance_m - start_m) / seconds;
                self.max_derived_speed = Some(self.max_derived_speed.map_or(speed, |max| max.max(speed)));
            }
        }
    }
}

/// Elevation gain and loss smoothed by hysteresis (see [`Summary::elevation_gain_m`]).
#[derive(Debug)]
struct Hysteresis {
    anchor: f64,
    gain: f64,
    loss: f64,
}

impl Hysteresis {
    fn push(&mut self, alt: f64) {
        let change = alt - self.anchor;
        if change > ELEVATION_HYSTERESIS_M {
            self.gain += change;
            self.anchor = alt;
        } else if change < -ELEVATION_HYSTERESIS_M {
            self.loss -= change;
            self.anchor = alt;
        }
    }
}

/// Count, sum and maximum of a series of samples, and the previous sample for crediting
/// intervals.
#[derive(Debug, Default)]
struct Samples {
    count: u64,
    sum: f64,
    max: f64,
    previous: Option<(i64, f64)>,
}

impl Samples {
    /// Adds a sample. Returns the previous sample's value and the interval from it to this
    /// one when that interval is continuous, so that the caller can credit it.
    fn push(&mut self, time_ns: i64, value: f64) -> Option<(f64, f64)> {
        self.max = if self.count == 0 { value } else { self.max.max(value) };
        self.count += 1;
        self.sum += value;
        let previous = self.previous.replace((time_ns, value))?;
        interval_s(previous.0, time_ns).map(|seconds| (previous.1, seconds))
    }

    /// Mean, maximum and count; `None` without samples.
    fn stats(&self) -> Option<(f64, f64, u64)> {
        (self.count > 0).then(|| (self.sum / self.count as f64, self.max, self.count))
    }
}

/// The interval in seconds from `earlier_ns` to `later_ns`, or `None` when it is a pause
/// (longer than [`MAX_INTERVAL_S`]) or runs backwards.
fn interval_s(earlier_ns: i64, later_ns: i64) -> Option<f64> {
    let seconds = later_ns.checked_sub(earlier_ns)? as f64 / 1e9;
    (0.0..=MAX_INTERVAL_S).contains(&seconds).then_some(seconds)
}

/// The zone (0-based) whose lower bound is the highest one at or below `bpm`.
fn zone_index(bounds: &[f64; 5], bpm: f64) -> usize {
    bounds.iter().rposition(|&bound| bpm >= bound).unwrap_or(0)
}

#[cfg(test)]
mod tests;
