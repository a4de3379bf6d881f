//! Status: riding, stopped, resting, sleeping, no signal; and stops as intervals.
//!
//! Stop detection follows the idea of Traccar's (a stop is staying within a distance for at
//! least a duration) with a centre that is the running mean of the stop's fixes, since GPS
//! noise of 5–30 m scatters a parked phone around the place: a **stop** begins at the first
//! fix of a run that stays within `radius_m` of its mean, and is confirmed once that run has
//! lasted `stop_after_s` (the status is then dated back to its start). Moving at less than
//! `2 × radius_m / stop_after_s` (0.9 m/s with the defaults) looks like a stop; anything a
//! bicycle does faster does not. A confirmed stop ends at the second fix in a row outside
//! the radius (one noisy fix does not end it), or the first one more than twice out.
//!
//! A stop is **resting** once it has lasted `rest_after_s`, and **sleeping** once it has
//! lasted `sleep_after_s` with its middle at local night (`night_from_h`–`night_until_h`,
//! local time of the stop's place, [`crate::local_time`]).
//!
//! **No signal** is not a stop: when no fix comes for `no_signal_after_s` while the rider
//! was riding, the status is no signal from then ([`StatusState::status_at`] says so live).
//! When fixes come back, the gap is judged by where they come back: at the same place, it
//! was a stop (a phone off overnight at a hotel is a sleep); elsewhere, the rider rode
//! through it unseen, and the gap stays no signal.

use serde::{Deserialize, Serialize};
use velometry_core::geo::haversine_m;
use velometry_core::time::Nanos;

use crate::local_time::{local_hour, utc_offset_s, Clock};

/// Thresholds of stops and statuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusConfig {
    /// A stop stays within this of its centre, metres.
    pub radius_m: f64,
    /// A stop lasts at least this long, seconds.
    pub stop_after_s: f64,
    /// A stop this long is resting, seconds.
    pub rest_after_s: f64,
    /// A stop this long with its middle at night is sleeping, seconds.
    pub sleep_after_s: f64,
    /// Night begins at this local hour…
    pub night_from_h: f64,
    /// …and ends at this one.
    pub night_until_h: f64,
    /// No fix for this long after riding is no signal, seconds.
    pub no_signal_after_s: f64,
    /// The clock that says when it is night.
    pub clock: Clock,
}

impl Default for StatusConfig {
    fn default() -> StatusConfig {
        StatusConfig {
            radius_m: 80.0,
            stop_after_s: 180.0,
            rest_after_s: 1_800.0,
            sleep_after_s: 3_600.0,
            night_from_h: 21.0,
            night_until_h: 6.0,
            no_signal_after_s: 900.0,
            clock: Clock::TimeZone,
        }
    }
}

/// What a rider is doing: one list of codes and names for the service and its readers.
pub use velometry_core::event::ride::RideStatus as Status;

/// A stop, once it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// Its first fix.
    pub start: Nanos,
    /// Its last fix.
    pub end: Nanos,
    /// Its place: the mean of its fixes.
    pub lat: f64,
    /// Its place: the mean of its fixes.
    pub lon: f64,
    /// Its place along the course, metres.
    pub at_m: f64,
    /// Stopped, resting or sleeping, as it was at its end.
    pub kind: Status,
}

/// An event of status.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum StatusEvent {
    /// The status became `status` at `time`.
    Changed {
        /// When.
        time: Nanos,
        /// The new status.
        status: Status,
    },
    /// A stop ended.
    Stopped(Stop),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Cluster {
    start: Nanos,
    last: Nanos,
    n: u32,
    lat: f64,
    lon: f64,
    at_m: f64,
    confirmed: bool,
    kind: Status,
    /// Local time's offset from UTC at the stop, looked up when it is confirmed.
    offset_s: i32,
}

impl Cluster {
    fn new(time: Nanos, lat: f64, lon: f64, at_m: f64) -> Cluster {
        Cluster {
            start: time,
            last: time,
            n: 1,
            lat,
            lon,
            at_m,
            confirmed: false,
            kind: Status::Stopped,
            offset_s: 0,
        }
    }

    fn add(&mut self, time: Nanos, lat: f64, lon: f64, at_m: f64) {
        self.n += 1;
        let k = f64::from(self.n);
        self.lat += (lat - self.lat) / k;
        self.lon += (lon - self.lon) / k;
        self.at_m += (at_m - self.at_m) / k;
        self.last = time;
    }

    fn from(&self, lat: f64, lon: f64) -> f64 {
        haversine_m(self.lat, self.lon, lat, lon)
    }

    fn ended(&self) -> Stop {
        Stop {
            start: self.start,
            end: self.last,
            lat: self.lat,
            lon: self.lon,
            at_m: self.at_m,
            kind: self.kind,
        }
    }
}

/// What status detection remembers between fixes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusState {
    status: Option<Status>,
    cluster: Option<Cluster>,
    /// A first fix outside a confirmed stop.
    outside: bool,
    last_fix: Option<Nanos>,
}

fn seconds(from: Nanos, to: Nanos) -> f64 {
    (to - from) as f64 / 1e9
}

fn nanos(seconds: f64) -> Nanos {
    (seconds * 1e9).round() as Nanos
}

impl StatusState {
    /// The status as of the last fix (riding before any).
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::Riding)
    }

    /// The status at `now`, which may be later than the last fix: a rider who was riding
    /// and has sent nothing for `no_signal_after_s` has no signal.
    pub fn status_at(&self, config: &StatusConfig, now: Nanos) -> Status {
        match (self.status(), self.last_fix) {
            (Status::Riding, Some(last)) if seconds(last, now) >= config.no_signal_after_s => {
                Status::NoSignal
            }
            (status, _) => status,
        }
    }

    /// The stop in progress (confirmed): its start and kind.
    pub fn current_stop(&self) -> Option<(Nanos, Status)> {
        self.cluster.filter(|c| c.confirmed).map(|c| (c.start, c.kind))
    }

    fn set(&mut self, events: &mut Vec<StatusEvent>, time: Nanos, status: Status) {
        if self.status != Some(status) {
            self.status = Some(status);
            events.push(StatusEvent::Changed { time, status });
        }
    }

    fn classify(config: &StatusConfig, c: &Cluster, now: Nanos) -> Status {
        let duration = seconds(c.start, now);
        let middle = c.start + (now - c.start) / 2;
        let hour = local_hour(middle, c.offset_s);
        let night = if config.night_from_h > config.night_until_h {
            hour >= config.night_from_h || hour < config.night_until_h
        } else {
            (config.night_from_h..config.night_until_h).contains(&hour)
        };
        if duration >= config.sleep_after_s && night {
            Status::Sleeping
        } else if duration >= config.rest_after_s {
            Status::Resting
        } else {
            Status::Stopped
        }
    }

    /// Takes a fix, `at_m` along the course; returns what changed.
    pub fn update(
        &mut self,
        config: &StatusConfig,
        time: Nanos,
        lat: f64,
        lon: f64,
        at_m: f64,
    ) -> Vec<StatusEvent> {
        let mut events = Vec::new();
        let last_fix = self.last_fix.replace(time);
        let Some(mut c) = self.cluster else {
            self.cluster = Some(Cluster::new(time, lat, lon, at_m));
            self.set(&mut events, time, Status::Riding);
            return events;
        };
        let gap = last_fix.is_some_and(|last| seconds(last, time) >= config.no_signal_after_s);
        let distance = c.from(lat, lon);
        let inside = distance <= config.radius_m;
        if gap && !inside {
            // Moved while unseen: a stop ended at its last fix; riding was no signal.
            if c.confirmed {
                events.push(StatusEvent::Stopped(c.ended()));
            } else if let Some(last) = last_fix {
                self.set(&mut events, last + nanos(config.no_signal_after_s), Status::NoSignal);
            }
            self.outside = false;
            self.cluster = Some(Cluster::new(time, lat, lon, at_m));
            self.set(&mut events, time, Status::Riding);
            return events;
        }
        if inside {
            self.outside = false;
            c.add(time, lat, lon, at_m);
            if !c.confirmed && seconds(c.start, time) >= config.stop_after_s {
                c.confirmed = true;
                c.offset_s = utc_offset_s(config.clock, c.lat, c.lon, c.start);
                self.set(&mut events, c.start, Status::Stopped);
            }
            if c.confirmed {
                let kind = Self::classify(config, &c, time);
                c.kind = kind;
                self.set(&mut events, time, kind);
            }
            self.cluster = Some(c);
            return events;
        }
        if c.confirmed && !self.outside && distance <= 2.0 * config.radius_m {
            // One fix out may be noise.
            self.outside = true;
            return events;
        }
        if c.confirmed {
            events.push(StatusEvent::Stopped(c.ended()));
            self.set(&mut events, time, Status::Riding);
        }
        self.outside = false;
        self.cluster = Some(Cluster::new(time, lat, lon, at_m));
        events
    }
}

#[cfg(test)]
mod tests {
    use velometry_core::geo::offset;

    use super::*;

    const S: Nanos = 1_000_000_000;
    // 2026-07-01T00:00:00Z: 02:00 in Turin.
    const MIDNIGHT_UTC: Nanos = 1_782_864_000 * S;

    /// Fixes every 10 s: riding east at 7 m/s for `ride_s`, then a stop of `stop_s`, then
    /// riding again.
    fn ride(state: &mut StatusState, start: Nanos, ride_s: i64, stop_s: i64) -> Vec<StatusEvent> {
        let config = StatusConfig::default();
        let mut events = Vec::new();
        let mut east = 0.0;
        for t in (0..ride_s + stop_s + 600).step_by(10) {
            if !(ride_s..ride_s + stop_s).contains(&t) {
                east += 70.0;
            }
            // Noise of ±20 m, deterministic.
            let jitter = 20.0 * ((t as f64) * 0.7).sin();
            let (lat, lon) = offset(45.0, 7.0, jitter, east);
            events.extend(state.update(&config, start + t * S, lat, lon, east));
        }
        events
    }

    #[test]
    fn a_long_night_stop_is_sleep_a_day_stop_a_rest() {
        let mut night = StatusState::default();
        let events = ride(&mut night, MIDNIGHT_UTC, 600, 3 * 3_600);
        let stop = events.iter().find_map(|e| match e {
            StatusEvent::Stopped(s) => Some(*s),
            _ => None,
        });
        let stop = stop.expect("a stop");
        assert_eq!(stop.kind, Status::Sleeping);
        assert!((stop.start - (MIDNIGHT_UTC + 600 * S)).abs() <= 30 * S, "{}", stop.start);
        assert!((stop.end - (MIDNIGHT_UTC + (600 + 3 * 3_600) * S)).abs() <= 10 * S);
        let day = MIDNIGHT_UTC + 10 * 3_600 * S;
        let mut rest = StatusState::default();
        let events = ride(&mut rest, day, 600, 3 * 3_600);
        assert!(events.iter().any(|e| matches!(e, StatusEvent::Stopped(s) if s.kind == Status::Resting)));
        let mut short = StatusState::default();
        let events = ride(&mut short, day, 600, 400);
        let kinds: Vec<Status> = events
            .iter()
            .filter_map(|e| match e {
                StatusEvent::Changed { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, vec![Status::Riding, Status::Stopped, Status::Riding]);
    }

    #[test]
    fn silence_after_riding_is_no_signal_and_a_gap_in_place_is_a_stop() {
        let config = StatusConfig::default();
        let mut s = StatusState::default();
        // 10:00 in Turin.
        let t0 = MIDNIGHT_UTC + 8 * 3_600 * S;
        s.update(&config, t0, 45.0, 7.0, 0.0);
        assert_eq!(s.status_at(&config, t0 + 600 * S), Status::Riding);
        assert_eq!(s.status_at(&config, t0 + 900 * S), Status::NoSignal);
        let (lat, lon) = offset(45.0, 7.0, 0.0, 20_000.0);
        let back = t0 + 3 * 3_600 * S;
        let events = s.update(&config, back, lat, lon, 20_000.0);
        assert_eq!(
            events,
            vec![
                StatusEvent::Changed { time: t0 + 900 * S, status: Status::NoSignal },
                StatusEvent::Changed { time: back, status: Status::Riding }
            ]
        );
        let events = s.update(&config, back + 3 * 3_600 * S, lat, lon, 20_000.0);
        assert_eq!(events[0], StatusEvent::Changed { time: back, status: Status::Stopped });
        assert_eq!(s.status(), Status::Resting, "three hours in place, in the day in Turin");
    }
}
