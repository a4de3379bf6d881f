//! Our JSON API at `POST /v1/readings`: an array of flat objects, all or nothing.
//!
//! ```json
//! [{"metric":"heart_rate","time":"2026-11-27T10:00:00Z","bpm":142},
//!  {"metric":"gps","time":1764237600000,"lat":45.1,"lon":7.6,"alt":250,"speed":8.3}]
//! ```

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use velometry_core::reading::{check_device_writable, Metric, Reading, ReadingError};
use velometry_core::time::{millis_to_nanos, now_nanos, parse_rfc3339, Nanos};

use super::{media_type, read_body};
use crate::auth::token_from;
use crate::error::{ApiError, Invalid};
use crate::state::AppState;

const PROTOCOL: &str = "json";

/// `POST /v1/readings`: answers `{"accepted": N}`.
///
/// # Errors
/// 415 unless the body is `application/json`; 400 listing every invalid reading.
pub async fn readings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if media_type(&headers).as_deref() != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "send the readings as JSON with Content-Type: application/json".into(),
        ));
    }
    let identity = state.auth.device(token_from(&headers, None).as_deref())?;
    let body = read_body(&headers, body, state.limits).await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(_) => vec![value],
        _ => return Err(ApiError::BadRequest("expected a JSON array of readings".into())),
    };
    let now = now_nanos();
    let mut readings = Vec::with_capacity(items.len());
    let mut invalid = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_reading(item, now) {
            Ok(r) => readings.push(r),
            Err(error) => invalid.push(Invalid { index, error }),
        }
    }
    if !invalid.is_empty() {
        crate::metrics::rejected(PROTOCOL, "invalid", invalid.len());
        return Err(ApiError::InvalidReadings { total: items.len(), invalid });
    }
    state.ingest.commit(PROTOCOL, &identity, &readings).await?;
    Ok(Json(serde_json::json!({ "accepted": readings.len() })))
}

/// Parses one flat reading object.
///
/// # Errors
/// A message naming the key at fault.
pub fn parse_reading(item: &Value, now: Nanos) -> Result<Reading, String> {
    parse_reading_of(item, now, |metric| check_device_writable(metric).map_err(|e| e.to_string()))
}

/// Parses one flat reading object whose measurement `writable` allows.
///
/// # Errors
/// A message naming the key at fault, or what `writable` says of the measurement.
pub fn parse_reading_of(
    item: &Value,
    now: Nanos,
    writable: impl Fn(Metric) -> Result<(), String>,
) -> Result<Reading, String> {
    let object = item.as_object().ok_or("a reading must be a JSON object")?;
    let name = object
        .get("metric")
        .and_then(Value::as_str)
        .ok_or("missing \"metric\" (gps, heart_rate, power, …)")?;
    let metric =
        Metric::from_name(name).ok_or_else(|| ReadingError::UnknownMetric(name.into()).to_string())?;
    writable(metric)?;
    let time = match object.get("time") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => parse_rfc3339(s).map_err(|e| e.to_string())?,
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(millis_to_nanos)
            .ok_or_else(|| format!("time {n} is not epoch milliseconds"))?,
        Some(other) => return Err(format!("time {other} must be RFC 3339 or epoch milliseconds")),
    };
    let mut fields = Vec::with_capacity(object.len());
    for (key, value) in object {
        match key.as_str() {
            "metric" | "time" => {}
            "rider" | "device" | "source" => {
                return Err(format!("{key:?} comes from the device token, not the payload; remove it"))
            }
            _ => match value {
                Value::Null => {}
                Value::Number(n) => fields.push((key.as_str(), n.as_f64().unwrap_or(f64::NAN))),
                other => return Err(format!("field {key:?} must be a number, not {other}")),
            },
        }
    }
    Reading::known(metric, time, now, fields).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: Nanos = 1_764_237_600_000_000_000;

    #[test]
    fn reads_both_time_forms() {
        let a = parse_reading(&json!({"metric":"heart_rate","time":"2025-11-27T10:00:00Z","bpm":142}), NOW);
        let b = parse_reading(&json!({"metric":"heart_rate","time":1_764_237_600_000_i64,"bpm":142}), NOW);
        assert_eq!(a.expect("valid").time(), NOW);
        assert_eq!(b.expect("valid").time(), NOW);
    }

    #[test]
    fn names_the_key_at_fault() {
        let err = |v| parse_reading(&v, NOW).unwrap_err();
        assert_eq!(err(json!({"bpm": 1})), "missing \"metric\" (gps, heart_rate, power, …)");
        assert!(err(json!({"metric":"mood","x":1})).starts_with("unknown metric \"mood\""));
        assert_eq!(
            err(json!({"metric":"heart_rate","bpm":"fast"})),
            "field \"bpm\" must be a number, not \"fast\""
        );
        assert!(err(json!({"metric":"heart_rate","bpm":60,"rider":"bob"}))
            .contains("comes from the device token"));
        assert!(err(json!({"metric":"event_status","event":1,"state":0}))
            .starts_with("event_status is recorded by an event's organisers"));
    }
}
