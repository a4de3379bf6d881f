//! The HTTP front: a router of ingest routes with request metrics, served with limits on
//! connections, header read time and whole-request time.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::ingest::{json, lineproto, osmand, owntracks};
use crate::metrics as m;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Time allowed for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Time allowed for a whole request, body and answer included.
    pub request_timeout: Duration,
}

/// The ingest router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
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
        ))
        .layer(middleware::from_fn(track))
        .with_state(state)
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

async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    m::http_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for up to `drain`.
///
/// # Errors
/// Never: accept errors (descriptor exhaustion) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            m::connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = watched.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => tracing::warn!("Requests still in flight after the drain time; closing them."),
    }
    Ok(())
}
