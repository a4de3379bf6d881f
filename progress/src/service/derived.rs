//! What the engine finds, as the derived readings the collector takes (docs/schema.md,
//! "Derived readings"): flat JSON readings with RFC 3339 times to the nanosecond.

use serde_json::{json, Map, Value};
use velometry_core::event::withdrawn;
use velometry_core::time::Nanos;

use crate::checkpoints::CheckpointEvent;
use crate::engine::{Etas, Event, Output, Progress};
use crate::status::{Status, StatusEvent};

/// RFC 3339 to the nanosecond.
fn time(ns: Nanos) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn reading(metric: &str, at: Nanos, event: f64, fields: Value) -> Value {
    let mut object = Map::new();
    object.insert("metric".into(), metric.into());
    object.insert("time".into(), time(at).into());
    object.insert("event".into(), event.into());
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Value::Object(object)
}

/// Seconds since 1970, whole.
fn seconds(ns: Nanos) -> f64 {
    (ns / 1_000_000_000) as f64
}

/// The `course_progress` reading of one fix, with the ETAs from there.
fn progress(event: f64, p: &Progress, etas: Option<&Etas>) -> Value {
    let mut r = reading(
        "course_progress",
        p.time,
        event,
        json!({
            "current_m": p.current_m.max(0.0),
            "progress_m": p.progress_m.max(0.0),
            "to_go_m": p.to_go_m.max(0.0),
            "from_course_m": p.from_course_m.max(0.0),
            "off_course": if p.off_course { 1.0 } else { 0.0 },
            "status": p.status.code(),
        }),
    );
    if let (Some(etas), Value::Object(o)) = (etas, &mut r) {
        if let Some((index, eta)) = etas.next_checkpoint {
            o.insert("next_checkpoint".into(), (index as f64).into());
            o.insert("eta_next_p10".into(), seconds(eta.p10).into());
            o.insert("eta_next_p50".into(), seconds(eta.p50).into());
            o.insert("eta_next_p90".into(), seconds(eta.p90).into());
        }
        o.insert("eta_finish_p10".into(), seconds(etas.finish.p10).into());
        o.insert("eta_finish_p50".into(), seconds(etas.finish.p50).into());
        o.insert("eta_finish_p90".into(), seconds(etas.finish.p90).into());
    }
    r
}

/// A checkpoint outcome's point time: its instant to the millisecond, then `4 × index +
/// outcome` nanoseconds, so that no two outcomes share a point.
fn checkpoint_time(at: Nanos, index: usize, outcome: u8) -> Nanos {
    at.div_euclid(1_000_000) * 1_000_000 + 4 * index.min(99_999) as Nanos + Nanos::from(outcome)
}

/// The point of one event: its measurement, time and fields.
fn event_point(e: &Event) -> (&'static str, Nanos, Value) {
    match *e {
        Event::LeftCourse { time, at_m } => ("off_course", time, json!({"off": 1.0, "at_m": at_m.max(0.0)})),
        Event::Rejoined { time, at_m } => ("off_course", time, json!({"off": 0.0, "at_m": at_m.max(0.0)})),
        Event::Checkpoint(CheckpointEvent::Arrived { index, time, late }) => (
            "checkpoint",
            checkpoint_time(time, index, 0),
            json!({"checkpoint": index as f64, "outcome": 0.0, "late": if late { 1.0 } else { 0.0 }}),
        ),
        Event::Checkpoint(CheckpointEvent::Missed { index, time }) => (
            "checkpoint",
            checkpoint_time(time, index, 1),
            json!({"checkpoint": index as f64, "outcome": 1.0}),
        ),
        Event::Checkpoint(CheckpointEvent::CutoffBreached { index, time }) => (
            "checkpoint",
            checkpoint_time(time, index, 2),
            json!({"checkpoint": index as f64, "outcome": 2.0}),
        ),
        Event::Status(StatusEvent::Changed { time, status }) => {
            ("course_status", time, json!({"status": status.code()}))
        }
        Event::Status(StatusEvent::Stopped(stop)) => (
            "stop",
            stop.start,
            json!({
                "duration_s": (stop.end - stop.start).max(0) as f64 / 1e9,
                "lat": stop.lat,
                "lon": stop.lon,
                "at_m": stop.at_m.max(0.0),
                "status": stop.kind.code().clamp(1.0, 3.0),
            }),
        ),
        Event::Finished { time } => ("course_status", time, json!({"status": Status::Finished.code()})),
    }
}

/// A derived point stored in InfluxDB that a recomputation may withdraw: its measurement,
/// time and numeric fields (the event's code left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Its measurement, one of [`withdrawn::MARKS`]'.
    pub metric: &'static str,
    /// Its time.
    pub time: Nanos,
    /// Its fields.
    pub fields: Map<String, Value>,
}

/// The points (measurement and time) of the events of one output: what a recomputation
/// gives again, and so does not withdraw.
pub fn event_points(output: &Output) -> impl Iterator<Item = (&'static str, Nanos)> + '_ {
    output.events.iter().map(|e| {
        let (metric, time, _) = event_point(e);
        (metric, time)
    })
}

/// `stored` withdrawn: the same point, its mark set (`velometry_core::event::withdrawn`).
pub fn withdrawal(event: f64, stored: &Stored) -> Value {
    let mut fields = stored.fields.clone();
    if let Some((field, mark)) = withdrawn::mark(stored.metric) {
        fields.insert(field.into(), mark.into());
    }
    reading(stored.metric, stored.time, event, Value::Object(fields))
}

/// Every reading of one output: the fix's progress (with `etas`), then its events.
pub fn readings(event: f64, output: &Output, etas: Option<&Etas>) -> Vec<Value> {
    output
        .progress
        .iter()
        .map(|p| progress(event, p, etas))
        .chain(output.events.iter().map(|e| {
            let (metric, at, fields) = event_point(e);
            reading(metric, at, event, fields)
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_of_one_instant_are_points_of_their_own() {
        let t = 1_782_914_400_123_456_789;
        let a = checkpoint_time(t, 3, 1);
        let b = checkpoint_time(t, 4, 1);
        let c = checkpoint_time(t, 3, 2);
        assert_eq!(a, 1_782_914_400_123_000_013);
        assert!(a != b && a != c && b != c);
        assert_eq!(time(t), "2026-07-01T14:00:00.123456789Z");
    }

    #[test]
    fn a_withdrawal_is_the_stored_point_marked() {
        let fields = json!({"duration_s": 600.0, "lat": 45.0, "lon": 6.0, "at_m": 1_000.0, "status": 2.0});
        let Value::Object(fields) = fields else { unreachable!() };
        let stop = Stored { metric: "stop", time: 1_782_914_400_000_000_000, fields };
        let w = withdrawal(7.0, &stop);
        assert_eq!((w["metric"].as_str(), w["event"].as_f64()), (Some("stop"), Some(7.0)));
        assert_eq!((w["status"].as_f64(), w["duration_s"].as_f64()), (Some(withdrawn::STATUS), Some(600.0)));
        assert_eq!(w["time"], "2026-07-01T14:00:00.000000000Z");
    }

    #[test]
    fn a_fix_is_a_course_progress_reading_with_its_etas() {
        let p = Progress {
            time: 1_782_914_400_000_000_000,
            current_m: 1_000.0,
            progress_m: 1_200.0,
            to_go_m: 9_000.0,
            from_course_m: 12.5,
            off_course: false,
            status: Status::Riding,
        };
        let output = Output { progress: Some(p), events: vec![Event::Finished { time: p.time }] };
        let r = readings(7.0, &output, None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["metric"], "course_progress");
        assert_eq!(r[0]["progress_m"], 1_200.0);
        assert_eq!(r[0]["event"], 7.0);
        assert!(r[0].get("eta_finish_p50").is_none());
        assert_eq!((r[1]["metric"].as_str(), r[1]["status"].as_f64()), (Some("course_status"), Some(5.0)));
    }
}
