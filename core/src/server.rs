//! Serving HTTP with limits: a cap on open connections (more are closed at once), a header
//! read timeout (no slowloris), graceful shutdown with a drain time, and upgrades (the
//! stream hub's WebSockets). Every listener of every service goes through here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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
    let graceful = GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
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
            on_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
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
