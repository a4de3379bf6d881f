//! Local time at a position, for telling a night's sleep from a daytime rest.
//!
//! Two clocks: the **time zone** of the position (`tzf-rs` finds the IANA zone from the
//! coordinates in its bundled boundaries, `chrono-tz` gives the zone's offset at that
//! instant, daylight saving included), or **solar** time (longitude / 15°, no data). Riders
//! sleep by the clock on their phone, which is the zone's; solar time differs from it by up
//! to an hour or two (western Spain, China), which moves the edges of "night" by as much,
//! so the zone is the default and solar the fallback where no zone is found (at sea).
//! The zone finder holds its boundaries in memory (built once per process, some tens of
//! milliseconds), so it is looked up once per stop, not per fix.

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{Offset, TimeZone};
use serde::{Deserialize, Serialize};
use velometry_core::time::Nanos;

/// Which clock says what time it is at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// The position's time zone.
    #[default]
    TimeZone,
    /// Local mean solar time from the longitude.
    Solar,
}

static FINDER: LazyLock<tzf_rs::DefaultFinder> = LazyLock::new(tzf_rs::DefaultFinder::new);

/// Seconds to add to UTC for local time at `(lat, lon)` at `time`.
pub fn utc_offset_s(clock: Clock, lat: f64, lon: f64, time: Nanos) -> i32 {
    let solar = (lon / 15.0 * 3_600.0).round() as i32;
    match clock {
        Clock::Solar => solar,
        Clock::TimeZone => {
            let Ok(zone) = chrono_tz::Tz::from_str(FINDER.get_tz_name(lon, lat)) else { return solar };
            let utc = chrono::DateTime::from_timestamp_nanos(time).naive_utc();
            zone.offset_from_utc_datetime(&utc).fix().local_minus_utc()
        }
    }
}

/// The local hour of day (0–24, fractional) at `time` for a UTC offset.
pub fn local_hour(time: Nanos, offset_s: i32) -> f64 {
    let seconds = time.div_euclid(1_000_000_000) + i64::from(offset_s);
    seconds.rem_euclid(86_400) as f64 / 3_600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-07-01T12:00:00Z.
    const NOON_UTC: Nanos = 1_782_907_200_000_000_000;

    #[test]
    fn zones_keep_clocks_and_solar_time_follows_the_sun() {
        // Turin in summer: CEST, UTC+2; its solar time is UTC+0:31.
        assert_eq!(utc_offset_s(Clock::TimeZone, 45.07, 7.69, NOON_UTC), 7_200);
        assert_eq!(utc_offset_s(Clock::Solar, 45.07, 7.69, NOON_UTC), 1_846);
        // Kansas in summer: CDT, UTC−5.
        assert_eq!(utc_offset_s(Clock::TimeZone, 38.5, -98.0, NOON_UTC), -18_000);
        assert!((local_hour(NOON_UTC, 7_200) - 14.0).abs() < 1e-9);
        assert!((local_hour(NOON_UTC, -18_000) - 7.0).abs() < 1e-9);
    }
}
