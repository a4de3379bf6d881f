//! A reading: one timestamped measurement of one kind velometry knows ([`Metric`]),
//! validated against its schema: fixed float fields with units and valid ranges, so that
//! InfluxDB never meets a field type conflict (`bpm=142i` becomes `bpm=142`).
//!
//! Line protocol may also carry measurements velometry has no schema for; those are checked
//! as InfluxDB checks them and logged as the client wrote them (`ingest::lineproto` in the
//! collector), never built into readings.

use std::fmt;

use crate::time::{format_rfc3339, Nanos};

/// How far ahead of the server's clock a reading may be stamped.
pub const MAX_FUTURE_NANOS: Nanos = 5 * 60 * 1_000_000_000;
/// The earliest accepted timestamp, 1990-01-01T00:00:00Z (the FIT epoch is 1989-12-31).
pub const MIN_TIME_NANOS: Nanos = 631_152_000 * 1_000_000_000;

/// One field of a known measurement: its name, unit and valid range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldSpec {
    /// Field name as stored in InfluxDB.
    pub name: &'static str,
    /// Unit, for documentation and error messages.
    pub unit: &'static str,
    /// Smallest valid value.
    pub min: f64,
    /// Largest valid value.
    pub max: f64,
    /// Whether every reading of the measurement must carry this field.
    pub required: bool,
}

const fn field(name: &'static str, unit: &'static str, min: f64, max: f64) -> FieldSpec {
    FieldSpec { name, unit, min, max, required: false }
}

const fn required(name: &'static str, unit: &'static str, min: f64, max: f64) -> FieldSpec {
    FieldSpec { name, unit, min, max, required: true }
}

macro_rules! metrics {
    ($($variant:ident = $name:literal: [$($spec:expr),+ $(,)?];)+) => {
        /// A measurement velometry knows, with a fixed schema.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
        }

        impl Metric {
            /// Every known measurement.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant),+];

            /// The measurement name in InfluxDB.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)+
                }
            }

            /// The fields this measurement may carry.
            pub fn fields(self) -> &'static [FieldSpec] {
                match self {
                    $(Metric::$variant => {
                        const FIELDS: &[FieldSpec] = &[$($spec),+];
                        FIELDS
                    })+
                }
            }

            /// Looks a measurement up by its InfluxDB name.
            pub fn from_name(name: &str) -> Option<Metric> {
                match name {
                    $($name => Some(Metric::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

metrics! {
    Gps = "gps": [
        required("lat", "degrees", -90.0, 90.0),
        required("lon", "degrees", -180.0, 180.0),
        field("alt", "m", -500.0, 9_000.0),
        field("speed", "m/s", 0.0, 150.0),
        field("heading", "degrees", 0.0, 360.0),
        field("accuracy", "m", 0.0, 100_000.0),
    ];
    HeartRate = "heart_rate": [required("bpm", "beats/min", 20.0, 250.0)];
    Power = "power": [required("watts", "W", 0.0, 3_000.0)];
    Cadence = "cadence": [required("rpm", "rev/min", 0.0, 300.0)];
    Temperature = "temperature": [required("celsius", "°C", -60.0, 70.0)];
    Distance = "distance": [required("meters", "m", 0.0, 100_000_000.0)];
    BloodPressure = "blood_pressure": [
        required("systolic", "mmHg", 40.0, 300.0),
        required("diastolic", "mmHg", 20.0, 200.0),
        field("pulse", "beats/min", 20.0, 250.0),
    ];
    Sleep = "sleep": [
        field("duration_s", "s", 0.0, 86_400.0),
        field("deep_s", "s", 0.0, 86_400.0),
        field("light_s", "s", 0.0, 86_400.0),
        field("rem_s", "s", 0.0, 86_400.0),
        field("awake_s", "s", 0.0, 86_400.0),
        field("efficiency", "%", 0.0, 100.0),
    ];
    Nutrition = "nutrition": [
        field("kcal", "kcal", 0.0, 20_000.0),
        field("carbs_g", "g", 0.0, 5_000.0),
        field("fat_g", "g", 0.0, 5_000.0),
        field("protein_g", "g", 0.0, 5_000.0),
    ];
    Ecg = "ecg": [
        field("bpm", "beats/min", 20.0, 250.0),
        field("pr_ms", "ms", 0.0, 2_000.0),
        field("qrs_ms", "ms", 0.0, 2_000.0),
        field("qt_ms", "ms", 0.0, 2_000.0),
        field("qtc_ms", "ms", 0.0, 2_000.0),
    ];
    Activity = "activity": [
        field("duration_s", "s", 0.0, 10_000_000.0),
        field("distance_m", "m", 0.0, 100_000_000.0),
        field("kcal", "kcal", 0.0, 1_000_000.0),
        field("elevation_gain_m", "m", 0.0, 1_000_000.0),
        field("avg_bpm", "beats/min", 20.0, 250.0),
        field("max_bpm", "beats/min", 20.0, 250.0),
        field("avg_watts", "W", 0.0, 3_000.0),
        field("steps", "steps", 0.0, 10_000_000.0),
    ];
    Spo2 = "spo2": [required("percent", "%", 50.0, 100.0)];
    Hrv = "hrv": [required("rmssd_ms", "ms", 0.0, 1_000.0)];
    EventStatus = "event_status": [
        required("event", "code", 0.0, crate::event::status::MAX_EVENT_CODE),
        required("state", "code", 0.0, 1.0),
        field("reason", "code", 1.0, 5.0),
    ];
    CourseProgress = "course_progress": [
        required("event", "code", 0.0, crate::event::status::MAX_EVENT_CODE),
        required("current_m", "m", 0.0, MAX_COURSE_M),
        required("progress_m", "m", 0.0, MAX_COURSE_M),
        required("to_go_m", "m", 0.0, MAX_COURSE_M),
        required("from_course_m", "m", 0.0, 20_100_000.0),
        required("off_course", "flag", 0.0, 1.0),
        required("status", "code", 0.0, 6.0),
        field("next_checkpoint", "index", 0.0, MAX_CHECKPOINTS),
        field("eta_next_p10", "s since 1970", 0.0, MAX_EPOCH_S),
        field("eta_next_p50", "s since 1970", 0.0, MAX_EPOCH_S),
        field("eta_next_p90", "s since 1970", 0.0, MAX_EPOCH_S),
        field("eta_finish_p10", "s since 1970", 0.0, MAX_EPOCH_S),
        field("eta_finish_p50", "s since 1970", 0.0, MAX_EPOCH_S),
        field("eta_finish_p90", "s since 1970", 0.0, MAX_EPOCH_S),
    ];
    CheckpointOutcome = "checkpoint": [
        required("event", "code", 0.0, crate::event::status::MAX_EVENT_CODE),
        required("checkpoint", "index", 0.0, MAX_CHECKPOINTS),
        required("outcome", "code", 0.0, crate::event::withdrawn::CHECKPOINT_OUTCOME),
        field("late", "flag", 0.0, 1.0),
    ];
    CourseStatus = "course_status": [
        required("event", "code", 0.0, crate::event::status::MAX_EVENT_CODE),
        required("status", "code", 0.0, crate::event::withdrawn::STATUS),
    ];
    OffCourse = "off_course": [
        required("event", "code", 0.0, crate::event::status::MAX_EVENT_CODE),
        required("off", "code", 0.0, crate::event::withdrawn::OFF_COURSE),
        required("at_m", "m", 0.0, MAX_COURSE_M),
    ];
    Stop = "stop": [
        required("event", "code", 0.0, crate::event::status::MAX_EVENT_CODE),
        required("duration_s", "s", 0.0, 100_000_000.0),
        required("lat", "degrees", -90.0, 90.0),
        required("lon", "degrees", -180.0, 180.0),
        required("at_m", "m", 0.0, MAX_COURSE_M),
        required("status", "code", 1.0, crate::event::withdrawn::STATUS),
    ];
}

/// The longest course, metres (five times round the Earth).
const MAX_COURSE_M: f64 = 200_000_000.0;
/// The most checkpoints an event has, as an index bound.
const MAX_CHECKPOINTS: f64 = 10_000.0;
/// The latest ETA, seconds since 1970 (the year 2286).
const MAX_EPOCH_S: f64 = 10_000_000_000.0;

impl Metric {
    /// Whether readings of this kind are published live (the stream hub shows them):
    /// positions, heart rate, power and cadence, and where entrants are along their event's
    /// course (their progress, changes of status, checkpoint outcomes), which followers of an
    /// event get.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Metric::Gps
                | Metric::HeartRate
                | Metric::Power
                | Metric::Cadence
                | Metric::CourseProgress
                | Metric::CourseStatus
                | Metric::CheckpointOutcome
        )
    }

    /// Whether devices (and every client with a device token) may write this measurement.
    /// `event_status` is written by an event's organisers only (`crate::event::status`):
    /// a rider's own device must not reinstate them.
    pub fn written_by_devices(self) -> bool {
        !matches!(self, Metric::EventStatus) && !self.is_derived()
    }

    /// Whether it is derived from other readings by a service (the progress service: where
    /// a rider is along an event's course), which alone writes it (docs/schema.md).
    pub fn is_derived(self) -> bool {
        matches!(
            self,
            Metric::CourseProgress
                | Metric::CheckpointOutcome
                | Metric::CourseStatus
                | Metric::OffCourse
                | Metric::Stop
        )
    }

    /// The spec of one field, if the measurement has it.
    pub fn field(self, name: &str) -> Option<&'static FieldSpec> {
        self.fields().iter().find(|f| f.name == name)
    }

    fn field_names(self) -> String {
        self.fields().iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
    }
}

fn metric_names() -> String {
    Metric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a reading is invalid. Each message names the field and what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadingError {
    /// The metric name is not one velometry knows.
    #[error("unknown metric {0:?}: expected one of {names}", names = metric_names())]
    UnknownMetric(String),
    /// A field the measurement does not have.
    #[error("unknown field {field:?} for {metric}: expected {}", metric.field_names())]
    UnknownField {
        /// The measurement.
        metric: Metric,
        /// The offending field.
        field: String,
    },
    /// A required field is missing.
    #[error("{metric} needs field {field:?}")]
    MissingField {
        /// The measurement.
        metric: Metric,
        /// The missing field.
        field: &'static str,
    },
    /// A field of a known measurement that is not a number.
    #[error("field {field:?} of {metric} must be a number")]
    NotANumber {
        /// The measurement.
        metric: Metric,
        /// The offending field.
        field: String,
    },
    /// A measurement velometry writes itself (rollup tiers, its own bookkeeping).
    #[error("measurement {0:?} is reserved: velometry writes it (rollup tiers and bookkeeping)")]
    Reserved(String),
    /// NaN or infinity.
    #[error("field {field:?} is not a finite number")]
    NotFinite {
        /// The offending field.
        field: String,
    },
    /// A value outside the field's valid range.
    #[error("{field} {value} is out of range [{min}, {max}] {unit}")]
    OutOfRange {
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: f64,
        /// Smallest valid value.
        min: f64,
        /// Largest valid value.
        max: f64,
        /// The field's unit.
        unit: &'static str,
    },
    /// A reading without any field.
    #[error("a reading needs at least one field")]
    NoFields,
    /// A timestamp more than five minutes ahead of the server's clock.
    #[error("time {} is more than 5 minutes in the future (server time {})", format_rfc3339(*time), format_rfc3339(*now))]
    InFuture {
        /// The reading's time.
        time: Nanos,
        /// The server's time.
        now: Nanos,
    },
    /// A timestamp before 1990.
    #[error("time {} is before 1990-01-01", format_rfc3339(*.0))]
    TooOld(Nanos),
    /// A measurement that no device token may write (see [`Metric::written_by_devices`]).
    #[error("{}", not_for_devices(*.0))]
    NotForDevices(Metric),
}

fn not_for_devices(metric: Metric) -> String {
    if metric.is_derived() {
        format!("{metric} is derived by the progress service from the rider's positions, not written with a device token")
    } else {
        format!("{metric} is recorded by an event's organisers (`collector event scratch`), not with a device token")
    }
}

/// A validated reading. The rider, device and source are not part of it: they come from the
/// authenticated request (see [`crate::lineproto::Origin`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    metric: Metric,
    time: Nanos,
    fields: Vec<(&'static str, f64)>,
}

/// Whether velometry writes measurement `name` itself, so no client may: the rollup tiers
/// of known measurements (`heart_rate_1m`, `heart_rate_1h`) and anything named
/// `velometry_…` (the late-reading markers, the rollup job's state).
pub fn is_reserved(name: &str) -> bool {
    name.starts_with("velometry_")
        || ["_1m", "_1h"]
            .iter()
            .any(|tier| name.strip_suffix(tier).is_some_and(|base| Metric::from_name(base).is_some()))
}

impl Reading {
    /// Builds a reading of a known measurement from its float fields.
    ///
    /// # Errors
    /// [`ReadingError`] naming the first field that is unknown, missing, not finite or out
    /// of range, or the timestamp when it is outside the accepted window.
    pub fn known<'a>(
        metric: Metric,
        time: Nanos,
        now: Nanos,
        fields: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Reading, ReadingError> {
        let fields: Vec<(&str, f64)> = fields.into_iter().collect();
        validate_known(metric, time, now, &fields)?;
        let fields =
            fields.into_iter().filter_map(|(name, value)| Some((metric.field(name)?.name, value))).collect();
        Ok(Reading { metric, time, fields })
    }

    /// The measurement.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Nanoseconds since the epoch.
    pub fn time(&self) -> Nanos {
        self.time
    }

    /// The fields, in the order they came.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.fields.iter().copied()
    }

    /// One field by name.
    pub fn float(&self, name: &str) -> Option<f64> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Checks the fields and time of a reading of a known measurement without building it:
/// every field known, finite and in range, the required ones present, at least one field,
/// the time within the accepted window.
///
/// # Errors
/// [`ReadingError`] naming the first problem.
pub fn validate_known(
    metric: Metric,
    time: Nanos,
    now: Nanos,
    fields: &[(&str, f64)],
) -> Result<(), ReadingError> {
    for (name, value) in fields {
        let spec = metric
            .field(name)
            .ok_or_else(|| ReadingError::UnknownField { metric, field: (*name).to_owned() })?;
        check_value(spec, *value)?;
    }
    if let Some(missing) =
        metric.fields().iter().find(|s| s.required && !fields.iter().any(|(n, _)| *n == s.name))
    {
        return Err(ReadingError::MissingField { metric, field: missing.name });
    }
    if fields.is_empty() {
        return Err(ReadingError::NoFields);
    }
    check_time(time, now)
}

fn check_value(spec: &FieldSpec, value: f64) -> Result<(), ReadingError> {
    if !value.is_finite() {
        return Err(ReadingError::NotFinite { field: spec.name.to_owned() });
    }
    if value < spec.min || value > spec.max {
        return Err(ReadingError::OutOfRange {
            field: spec.name,
            value,
            min: spec.min,
            max: spec.max,
            unit: spec.unit,
        });
    }
    Ok(())
}

/// Checks that a device token may write `metric`.
///
/// # Errors
/// [`ReadingError::NotForDevices`] for `event_status` and derived measurements.
pub fn check_device_writable(metric: Metric) -> Result<(), ReadingError> {
    if metric.written_by_devices() {
        Ok(())
    } else {
        Err(ReadingError::NotForDevices(metric))
    }
}

/// Checks that a timestamp lies between 1990 and five minutes after `now`.
///
/// # Errors
/// [`ReadingError::InFuture`] or [`ReadingError::TooOld`].
pub fn check_time(time: Nanos, now: Nanos) -> Result<(), ReadingError> {
    if time > now.saturating_add(MAX_FUTURE_NANOS) {
        return Err(ReadingError::InFuture { time, now });
    }
    if time < MIN_TIME_NANOS {
        return Err(ReadingError::TooOld(time));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Nanos = 1_764_237_600_000_000_000;

    #[test]
    fn every_metric_round_trips_its_name() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(*m));
        }
    }

    #[test]
    fn accepts_a_valid_gps_fix() {
        let r = Reading::known(Metric::Gps, NOW, NOW, [("lat", 45.1), ("lon", 7.6), ("speed", 8.3)])
            .expect("valid");
        assert_eq!(r.float("lat"), Some(45.1));
        assert_eq!(r.float("alt"), None);
    }

    #[test]
    fn names_what_is_wrong() {
        let err = Reading::known(Metric::Gps, NOW, NOW, [("lat", 95.0), ("lon", 7.6)]).unwrap_err();
        assert_eq!(err.to_string(), "lat 95 is out of range [-90, 90] degrees");
        assert!(is_reserved("velometry_late") && !is_reserved("cpu_1m") && !is_reserved("heart_rate"));
        let err = Reading::known(Metric::HeartRate, NOW, NOW, [("bpm", f64::NAN)]).unwrap_err();
        assert_eq!(err.to_string(), "field \"bpm\" is not a finite number");
        let err = Reading::known(Metric::Gps, NOW, NOW, [("lat", 45.0)]).unwrap_err();
        assert_eq!(err.to_string(), "gps needs field \"lon\"");
        let err = Reading::known(Metric::HeartRate, NOW, NOW, [("pulse", 60.0)]).unwrap_err();
        assert_eq!(err.to_string(), "unknown field \"pulse\" for heart_rate: expected bpm");
    }

    #[test]
    fn time_window_is_five_minutes_ahead_and_back_to_1990() {
        let ok = |t| Reading::known(Metric::HeartRate, t, NOW, [("bpm", 120.0)]).is_ok();
        assert!(ok(NOW + MAX_FUTURE_NANOS));
        assert!(!ok(NOW + MAX_FUTURE_NANOS + 1));
        assert!(ok(1_300_000_000 * 1_000_000_000), "a 2011 ride is fine");
        assert!(!ok(MIN_TIME_NANOS - 1));
    }

    #[test]
    fn the_schema_document_matches_the_code() {
        let doc = include_str!("../../docs/schema.md");
        let number = |v: f64| format!("{v}");
        for metric in Metric::ALL {
            for f in metric.fields() {
                let row = format!(
                    "| `{}` | `{}` | {} | {} | {} | {} |",
                    metric.name(),
                    f.name,
                    f.unit,
                    number(f.min),
                    number(f.max),
                    if f.required { "yes" } else { "" }
                );
                assert!(doc.contains(&row), "docs/schema.md lacks or misstates: {row}");
            }
        }
        let table = doc.split("## Live messages").next().unwrap_or(doc);
        let rows = table.lines().filter(|l| l.starts_with("| `")).count();
        let fields: usize = Metric::ALL.iter().map(|m| m.fields().len()).sum();
        assert_eq!(rows, fields, "docs/schema.md lists a field the code does not have");
    }
}
