//! OwnTracks in HTTP mode at `POST /v1/owntracks`: Basic auth with the device token as the
//! password. Locations become gps readings (`vel` is km/h); other message types and empty
//! bodies are accepted and ignored. The answer is `200 []`: the app waits for a 2xx before
//! it sends its next message, so a 4xx is given only for auth failures and bad bodies.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use velometry_core::reading::{Metric, Reading};
use velometry_core::time::{now_nanos, Nanos};

use super::read_body;
use crate::auth::token_from;
use crate::error::ApiError;
use crate::state::AppState;

const PROTOCOL: &str = "owntracks";

/// `POST /v1/owntracks`.
///
/// # Errors
/// 401 without a known token; 400 for a body that is not JSON or an invalid location.
pub async fn owntracks(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let identity = state.auth.device(token_from(&headers, None).as_deref())?;
    let body = read_body(&headers, body, state.limits).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
        let readings = parse(&value, now_nanos()).map_err(ApiError::BadRequest)?;
        state.ingest.commit(PROTOCOL, &identity, &readings).await?;
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], "[]").into_response())
}

/// The gps readings of a message (none for other `_type`s).
///
/// # Errors
/// A message naming the key at fault.
pub fn parse(value: &Value, now: Nanos) -> Result<Vec<Reading>, String> {
    if value.get("_type").and_then(Value::as_str) != Some("location") {
        return Ok(Vec::new());
    }
    let number = |key: &str| value.get(key).and_then(Value::as_f64);
    let lat = number("lat").ok_or("a location needs \"lat\"")?;
    let lon = number("lon").ok_or("a location needs \"lon\"")?;
    let time = match number("tst") {
        Some(tst) => (tst * 1e9) as i64,
        None => now,
    };
    let known = |v: Option<f64>| v.filter(|v| *v >= 0.0);
    let fields = [
        ("lat", Some(lat)),
        ("lon", Some(lon)),
        ("alt", number("alt")),
        ("speed", known(number("vel")).map(|kmh| kmh / 3.6)),
        ("heading", known(number("cog"))),
        ("accuracy", known(number("acc"))),
    ];
    let reading =
        Reading::known(Metric::Gps, time, now, fields.into_iter().filter_map(|(k, v)| Some((k, v?))))
            .map_err(|e| e.to_string())?;
    Ok(vec![reading])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_a_location_with_speed_in_kmh() {
        let now = 1_497_476_456_000_000_000;
        let msg = json!({"_type":"location","lat":48.85833,"lon":2.29513,"tst":1_497_476_456,"tid":"JJ",
            "alt":35,"acc":10,"vel":18,"cog":270,"batt":80});
        let r = &parse(&msg, now).expect("valid")[0];
        assert_eq!(r.time(), now);
        assert_eq!(r.float("speed"), Some(5.0));
        assert_eq!(r.float("heading"), Some(270.0));
    }

    #[test]
    fn ignores_other_message_types() {
        assert!(parse(&json!({"_type":"transition","event":"enter"}), 0).expect("ok").is_empty());
    }
}
