//! The HTTP front: the spectator page, the WebSocket route and the health checks. It is served
//! by [`velometry_core::server`], with connection limits.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::feed::FeedState;
use crate::state::AppState;
use crate::ws;

/// The hub's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(crate::page::index))
        .route("/assets/{name}", get(crate::page::asset))
        .route("/v1/live", get(ws::live))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Ready once the feed has followed NATS: from then on the hub has every rider's latest
/// reading and serves it, even while it reconnects after an outage (which the body says).
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match &*state.feed.borrow() {
        FeedState::Following => (StatusCode::OK, "following live readings\n".into()),
        FeedState::Reconnecting(e) => {
            (StatusCode::OK, format!("reconnecting to NATS (serving the readings already known): {e}\n"))
        }
        FeedState::Starting(None) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not following NATS yet: connecting\n".into())
        }
        FeedState::Starting(Some(e)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not following NATS yet: {e}\n"))
        }
    }
}
