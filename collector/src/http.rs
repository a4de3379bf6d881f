//! The HTTP front: the router of ingest routes, with request metrics and a whole-request
//! timeout. It is served by [`velometry_core::server`], with connection limits.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use crate::ingest::{json, lineproto, osmand, owntracks};
use crate::metrics as m;

/// The ingest router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let router = Router::new()
        .route("/write", post(lineproto::write))
        .route("/api/v2/write", post(lineproto::write))
        .route("/v1/readings", post(json::readings))
        .route("/v1/osmand", get(osmand::osmand).post(osmand::osmand))
        .route("/v1/owntracks", post(owntracks::owntracks))
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

/// The process is alive.
async fn healthz() -> &'static str {
    "ok"
}

/// The WAL can take readings.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.ingest.wal().is_writable() {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the write-ahead log is full or failing").into_response()
    }
}
