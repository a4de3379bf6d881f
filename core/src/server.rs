//! Serving HTTP with limits: a cap on open connections (more are closed at once), a header
//! read timeout (no slowloris), graceful shutdown with a drain time, and upgrades (the
//! stream hub's WebSockets). Every listener of every service goes through here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Time allowed for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Time allowed for a whole request, body and answer included (applied by the
    /// service's router).
    pub request_timeout: Duration,
}

impl ServerLimits {
    /// Limits for a listener that serves only `/metrics` to a scraper or two.
    pub const METRICS: ServerLimits = ServerLimits {
        max_connections: 64,
        header_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
    };
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
    on_refused: impl Fn(),
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // The header timeout also closes connections that stay silent from the start or
    // between keep-alive requests: hyper's HTTP/1 server starts it when it waits for a
    // request head.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let (draining, _) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set does not grow with the server's age.
        while connections.try_join_next().is_some() {}
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
            on_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let mut drain_rx = draining.subscribe();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = drain_rx.changed() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = draining.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(drain) => tracing::warn!("Requests still in flight after the drain time; closing them."),
    }
    Ok(())
}

/// `router` with request metrics: `record(route, status, elapsed)` for every request, the
/// route being the matched pattern (`/v1/riders/{rider}/track`), never the raw path, so that
/// labels stay bounded.
pub fn with_request_metrics<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    record: fn(String, u16, Duration),
) -> Router<S> {
    router.layer(axum::middleware::from_fn(move |request: Request, next: Next| async move {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
        let started = std::time::Instant::now();
        let response = next.run(request).await;
        record(route, response.status().as_u16(), started.elapsed());
        response
    }))
}
