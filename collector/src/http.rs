//! The HTTP front: the router of ingest routes, with request metrics and a whole-request
//! timeout. It is served by [`velometry_core::server`], with connection limits.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::ingest::{derived, event_status, json, lineproto, osmand, owntracks};
use crate::metrics as m;
use crate::state::AppState;

/// The ingest router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let router = Router::new()
        .route("/write", post(lineproto::write))
        .route("/api/v2/write", post(lineproto::write))
        .route("/v1/readings", post(json::readings))
        .route("/v1/osmand", get(osmand::osmand).post(osmand::osmand))
        .route("/v1/owntracks", post(owntracks::owntracks))
        .route("/v1/events/{event}/riders/{rider}/status", post(event_status::status))
        .route("/v1/events/{event}/riders/{rider}/derived", post(derived::derived))
        .route("/query", get(influx_query).post(influx_query))
        .route("/ping", get(ping).head(ping))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ));
    velometry_core::server::with_request_metrics(router, m::http_request).with_state(state)
}

/// InfluxDB clients ping before they write.
async fn ping() -> impl IntoResponse {
    (StatusCode::NO_CONTENT, [("x-influxdb-version", "velometry")])
}

/// InfluxDB's `/query`, for the clients that call it before writing: Telegraf's InfluxDB
/// output sends `CREATE DATABASE` at start, and client libraries may too. The collector
/// writes where it is configured to, so creating a database is a no-op that succeeds (for a
/// known token); anything else is refused with where to ask instead.
async fn influx_query(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(params): axum::extract::Query<std::collections::BTreeMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let form: std::collections::BTreeMap<String, String> =
        serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |key: &str| params.get(key).or_else(|| form.get(key)).map(String::as_str);
    if let Err(e) = state.auth.device(crate::auth::token_from(&headers, get("p")).as_deref()) {
        return e.into_response();
    }
    let q = get("q").unwrap_or_default().trim();
    let statements: Vec<&str> = q.split(';').map(str::trim).filter(|s| !s.is_empty()).collect();
    let creates = |s: &&str| s.get(..15).is_some_and(|head| head.eq_ignore_ascii_case("CREATE DATABASE"));
    if !statements.is_empty() && statements.iter().all(creates) {
        let results: Vec<serde_json::Value> =
            (0..statements.len()).map(|i| serde_json::json!({ "statement_id": i })).collect();
        return axum::Json(serde_json::json!({ "results": results })).into_response();
    }
    crate::error::ApiError::BadRequest(format!(
        "the collector only takes writes (and answers CREATE DATABASE, as a no-op); ask history of \
         the query service: {q:?} was not run"
    ))
    .into_response()
}

/// The process is alive.
async fn healthz() -> &'static str {
    "ok"
}

/// The WAL can take readings: not full, and its disk took the last write (or probe).
async fn readyz(State(state): State<AppState>) -> Response {
    match state.ingest.wal().unready() {
        None => "ready".into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}
