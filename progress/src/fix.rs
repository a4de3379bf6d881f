//! A fix: one position of a rider at one time, as the progress engine takes it. Built once
//! at the edge from a validated `gps` reading, so past here every position is a position.

use serde::{Deserialize, Serialize};
use velometry_core::reading::{Metric, Reading};
use velometry_core::time::Nanos;

/// One position of a rider.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// When, nanoseconds since the Unix epoch.
    pub time: Nanos,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Ground speed the device measured, m/s.
    pub speed: Option<f64>,
    /// Heading the device measured, degrees clockwise from north.
    pub heading: Option<f64>,
}

/// Why values are not a fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FixError {
    /// A coordinate out of range or not a number.
    #[error("not a position: lat {lat}, lon {lon}")]
    NotAPosition {
        /// The latitude given.
        lat: f64,
        /// The longitude given.
        lon: f64,
    },
}

impl Fix {
    /// A fix at `time`; speed and heading are kept only when they are numbers in range.
    ///
    /// # Errors
    /// [`FixError::NotAPosition`] for a latitude outside ±90° or a longitude outside ±180°.
    pub fn new(
        time: Nanos,
        lat: f64,
        lon: f64,
        speed: Option<f64>,
        heading: Option<f64>,
    ) -> Result<Fix, FixError> {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(FixError::NotAPosition { lat, lon });
        }
        let speed = speed.filter(|s| s.is_finite() && *s >= 0.0);
        let heading = heading.filter(|h| h.is_finite()).map(|h| h.rem_euclid(360.0));
        Ok(Fix { time, lat, lon, speed, heading })
    }

    /// The fix a `gps` reading carries (its `lat`, `lon`, `speed` and `heading` fields);
    /// `None` for any other reading.
    pub fn from_reading(reading: &Reading) -> Option<Fix> {
        if reading.metric() != Metric::Gps {
            return None;
        }
        let (lat, lon) = (reading.float("lat")?, reading.float("lon")?);
        Fix::new(reading.time(), lat, lon, reading.float("speed"), reading.float("heading")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gps_reading_is_a_fix_and_nothing_else_is() {
        let t = 1_782_907_200_000_000_000;
        let gps = Reading::known(Metric::Gps, t, t, [("lat", 45.0), ("lon", 7.0), ("heading", 10.0)])
            .expect("reading");
        let fix = Fix::from_reading(&gps).expect("a fix");
        assert_eq!((fix.time, fix.lat, fix.heading, fix.speed), (t, 45.0, Some(10.0), None));
        let hr = Reading::known(Metric::HeartRate, t, t, [("bpm", 120.0)]).expect("reading");
        assert_eq!(Fix::from_reading(&hr), None);
        assert!(Fix::new(0, 91.0, 0.0, None, None).is_err());
        assert_eq!(
            Fix::new(0, 1.0, 2.0, Some(-1.0), Some(-90.0)).map(|f| (f.speed, f.heading)),
            Ok((None, Some(270.0)))
        );
    }
}
