//! `POST /v1/events/{event}/riders/{rider}/derived`: a service (the progress service) writes
//! the readings it derives for an entrant of an event — progress along the course,
//! checkpoint outcomes, status changes, leaving and rejoining the course, stops
//! (docs/schema.md, "Derived readings"). They take the durable path of every reading: made
//! durable before the answer, then into InfluxDB, rolled up, exported.
//!
//! The body is a JSON array of flat readings, as `POST /v1/readings` takes them (times in
//! RFC 3339 to the nanosecond), all or nothing; each must be a derived measurement whose
//! `event` is this event's code. Only a service token of the event may write them, and
//! only for its entrants; no device token may (see [`velometry_core::reading::Metric::is_derived`]).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use velometry_core::event::status::event_code;
use velometry_core::ids::DeviceId;
use velometry_core::reading::{Metric, Reading};
use velometry_core::riders::DeviceIdentity;
use velometry_core::time::{now_nanos, Nanos};

use super::{entrant_of, media_type, read_body};
use crate::auth::token_from;
use crate::error::{ApiError, Invalid};
use crate::state::AppState;

/// The `source` tag of derived readings.
pub const SOURCE: &str = "progress";

/// The route's handler: answers `{"accepted": N}`.
///
/// # Errors
/// 401 without a service token, 403 when the service does not serve this event, 404 for an
/// unknown event or a rider who is not an entrant, 415 for a body that is not JSON, 400
/// listing every invalid reading, 503 when nothing can be made durable.
pub async fn derived(
    State(state): State<AppState>,
    Path((event, rider)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (service, registry) = state.auth.service(token_from(&headers, None).as_deref())?;
    let (event, rider) = entrant_of(&registry, &event, &rider, |event| {
        (!service.events.covers(&event.id)).then(|| {
            format!("service {:?} does not serve event {:?}", service.id.as_str(), event.id.as_str())
        })
    })?;
    if media_type(&headers).as_deref() != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "send the readings as JSON with Content-Type: application/json".into(),
        ));
    }
    let body = read_body(&headers, body, state.limits).await?;
    let readings = parse(&body, event_code(&event.id), now_nanos())?;
    let identity = DeviceIdentity { rider, device: DeviceId::from(&service.id) };
    state.ingest.commit(SOURCE, &identity, &readings).await?;
    Ok(Json(serde_json::json!({ "accepted": readings.len() })))
}

/// The readings of a body, each a derived measurement of the event coded `code`.
fn parse(body: &[u8], code: f64, now: Nanos) -> Result<Vec<Reading>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(ApiError::BadRequest("expected a JSON array of readings".into()));
    };
    let derived = |metric: Metric| {
        if metric.is_derived() {
            Ok(())
        } else {
            Err(format!("{metric} is not a derived measurement (course_progress, checkpoint, course_status, off_course, stop)"))
        }
    };
    let mut readings = Vec::with_capacity(items.len());
    let mut invalid = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let reading =
            super::json::parse_reading_of(item, now, derived).and_then(|r| match r.float("event") {
                Some(c) if c == code => Ok(r),
                Some(c) => Err(format!("event {c} is not this event's code {code}")),
                None => Err("missing \"event\"".into()),
            });
        match reading {
            Ok(r) => readings.push(r),
            Err(error) => invalid.push(Invalid { index, error }),
        }
    }
    if !invalid.is_empty() {
        crate::metrics::rejected(SOURCE, "invalid", invalid.len());
        return Err(ApiError::InvalidReadings { total: items.len(), invalid });
    }
    Ok(readings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Nanos = 1_782_914_400_000_000_000;

    fn parsed(body: &str) -> Result<usize, String> {
        match parse(body.as_bytes(), 7.0, NOW) {
            Ok(r) => Ok(r.len()),
            Err(ApiError::InvalidReadings { invalid, .. }) => {
                Err(invalid.iter().map(|i| i.error.clone()).collect::<Vec<_>>().join("; "))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn derived_readings_of_this_event_are_taken() {
        let body = r#"[{"metric":"course_status","time":"2026-07-01T13:00:00.000000123Z","event":7,"status":1},
            {"metric":"off_course","time":1782910800000,"event":7,"off":1,"at_m":1234.5}]"#;
        assert_eq!(parsed(body), Ok(2));
    }

    #[test]
    fn another_measurement_or_another_event_is_refused_by_name() {
        let err = parsed(r#"[{"metric":"gps","lat":1,"lon":2}]"#).unwrap_err();
        assert!(err.contains("gps is not a derived measurement"), "{err}");
        let err = parsed(r#"[{"metric":"course_status","event":8,"status":1}]"#).unwrap_err();
        assert!(err.contains("event 8 is not this event's code 7"), "{err}");
        let err = parsed(r#"[{"metric":"course_status","event":7,"status":9}]"#).unwrap_err();
        assert!(err.contains("status"), "{err}");
    }

    #[test]
    fn a_large_event_code_survives_json_exactly() {
        // The code of "e2e" lies between 2^51 and 2^52, where floats step by 0.5: serialized
        // by the progress service and parsed here, it must be the same number.
        let code = velometry_core::event::status::event_code(
            &velometry_core::ids::EventId::parse("e2e").expect("id"),
        );
        assert!(code > 2f64.powi(51), "{code}");
        let body = serde_json::json!([{"metric": "course_status", "time": 1_782_910_800_000u64, "event": code, "status": 1}]);
        let readings = parse(body.to_string().as_bytes(), code, NOW).map_err(|e| e.to_string());
        assert_eq!(readings.map(|r| r.len()), Ok(1), "{body}");
    }
}
