//! `POST /v1/events/{event}/riders/{rider}/status`: an event's organiser scratches an
//! entrant (did not finish) or reinstates them. The change is an `event_status` reading of
//! the rider (docs/schema.md), made durable like any other, so it has a time and a history;
//! the organiser is its `device`, so the history says who recorded it.
//!
//! ```json
//! {"status": "scratched", "reason": "medical", "time": "2026-07-28T03:10:00Z"}
//! ```
//!
//! `status` is `scratched` or `racing` (reinstated); `reason` (scratching only) one of
//! `withdrew`, `cutoff`, `disqualified`, `medical`, `other`; `time` (RFC 3339 or epoch
//! milliseconds) when it happened, now by default. Only an organiser token of the event may
//! write it, and only for its entrants; no device token may (see [`super::json`]).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use velometry_core::event::status::{event_code, Change, Reason, Status};
use velometry_core::ids::DeviceId;
use velometry_core::riders::DeviceIdentity;
use velometry_core::time::{format_rfc3339, millis_to_nanos, now_nanos, parse_rfc3339};

use super::{entrant_of, media_type, read_body};
use crate::auth::token_from;
use crate::error::ApiError;
use crate::state::AppState;

/// The `source` tag of what organisers record.
pub const SOURCE: &str = "organiser";

/// The body of a status change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    reason: Option<String>,
    time: Option<Value>,
}

/// The route's handler: answers what was recorded,
/// `{"event", "rider", "status", "reason", "time", "organiser"}`.
///
/// # Errors
/// 401 without an organiser token, 403 when it is not one of this event's organisers, 404
/// for an unknown event or a rider who is not an entrant, 415 for a body that is not JSON,
/// 400 naming the field at fault, 503 when nothing can be made durable.
pub async fn status(
    State(state): State<AppState>,
    Path((event, rider)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (organiser, registry) = state.auth.organiser(token_from(&headers, None).as_deref())?;
    let (event, rider) = entrant_of(&registry, &event, &rider, |event| {
        (!organiser.events.covers(&event.id)).then(|| {
            format!("organiser {:?} does not organise event {:?}", organiser.id.as_str(), event.id.as_str())
        })
    })?;
    let change = parse(read(&headers, body, &state).await?)?;
    let now = now_nanos();
    let time = change.1.unwrap_or(now);
    let change = Change { event: event_code(&event.id), ..change.0 };
    let reading = change.reading(time, now).map_err(|e| ApiError::BadRequest(format!("time: {e}")))?;
    let identity = DeviceIdentity { rider: rider.clone(), device: DeviceId::from(&organiser.id) };
    state.ingest.commit(SOURCE, &identity, &[reading]).await?;
    let reason = change.reason.map(Reason::name);
    tracing::info!(event = %event.id, %rider, organiser = %organiser.id, status = change.status.name(), reason,
        time = %format_rfc3339(time), "Recorded a rider's status in an event.");
    Ok(Json(serde_json::json!({
        "event": event.id, "rider": rider, "status": change.status.name(), "reason": reason,
        "time": format_rfc3339(time), "organiser": organiser.id,
    })))
}

async fn read(headers: &HeaderMap, body: Body, state: &AppState) -> Result<bytes::Bytes, ApiError> {
    if media_type(headers).as_deref() != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "send the status as JSON with Content-Type: application/json".into(),
        ));
    }
    read_body(headers, body, state.limits).await
}

/// The change a body asks for (its event code still to be set), and its time if it gives one.
fn parse(body: bytes::Bytes) -> Result<(Change, Option<i64>), ApiError> {
    let bad = ApiError::BadRequest;
    let body: StatusBody = serde_json::from_slice(&body).map_err(|e| {
        bad(format!("body is not a status change ({{\"status\": \"scratched\"|\"racing\", \"reason\", \"time\"}}): {e}"))
    })?;
    let status = Status::from_name(&body.status)
        .ok_or_else(|| bad(format!("status {:?} is not one of scratched, racing", body.status)))?;
    let reason = match (status, body.reason.as_deref()) {
        (_, None) => None,
        (Status::Scratched, Some(name)) => Some(Reason::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
            bad(format!("reason {name:?} is not one of {}", names.join(", ")))
        })?),
        (Status::Racing, Some(_)) => {
            return Err(bad("a reason is for scratching; reinstating takes none".into()))
        }
    };
    let time = match body.time {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_rfc3339(&s).map_err(|e| bad(format!("time: {e}")))?),
        Some(Value::Number(n)) => Some(
            n.as_f64()
                .and_then(millis_to_nanos)
                .ok_or_else(|| bad(format!("time {n} is not epoch milliseconds")))?,
        ),
        Some(other) => return Err(bad(format!("time {other} must be RFC 3339 or epoch milliseconds"))),
    };
    Ok((Change { event: 0.0, status, reason }, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(body: &str) -> Result<(Change, Option<i64>), String> {
        parse(bytes::Bytes::from(body.to_owned())).map_err(|e| e.to_string())
    }

    #[test]
    fn a_body_says_the_status_the_reason_and_the_time() {
        let (c, time) = change(r#"{"status":"scratched","reason":"medical","time":"2026-07-28T03:10:00Z"}"#)
            .expect("valid");
        assert_eq!((c.status, c.reason), (Status::Scratched, Some(Reason::Medical)));
        assert_eq!(time, Some(parse_rfc3339("2026-07-28T03:10:00Z").expect("a time")));
        let (c, time) = change(r#"{"status":"racing"}"#).expect("valid");
        assert_eq!((c.status, c.reason, time), (Status::Racing, None, None));
    }

    #[test]
    fn a_bad_body_is_named() {
        let err = |body| change(body).unwrap_err();
        assert_eq!(err(r#"{"status":"dnf"}"#), "status \"dnf\" is not one of scratched, racing");
        assert!(err(r#"{"status":"scratched","reason":"tired"}"#)
            .starts_with("reason \"tired\" is not one of withdrew"));
        assert_eq!(
            err(r#"{"status":"racing","reason":"other"}"#),
            "a reason is for scratching; reinstating takes none"
        );
        assert!(err(r#"{"status":"racing","time":"soon"}"#).starts_with("time: invalid time"));
        assert!(err(r#"{"state":"racing"}"#).starts_with("body is not a status change"));
    }
}
