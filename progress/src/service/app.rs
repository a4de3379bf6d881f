//! `progress serve`: the listeners, the riders file and its reloads, and the runner.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use velometry_core::influx::InfluxAuth;
use velometry_core::riders::reload::{self, SharedRegistry};
use velometry_core::server::ServerLimits;

use super::cli::ServeArgs;
use super::history::History;
use super::metrics as m;
use super::runner::Runner;
use super::writer::Writer;
use crate::engine::Config;

/// Limits of the health listener.
const LIMITS: ServerLimits = ServerLimits {
    max_connections: 64,
    header_timeout: Duration::from_secs(5),
    request_timeout: Duration::from_secs(10),
};

/// Runs the service until `shutdown` resolves.
///
/// # Errors
/// A flag that does not fit, a riders file that cannot be used, a port that cannot be bound.
pub async fn serve(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let auth = InfluxAuth::from_flags(
        args.influx_token.clone(),
        args.influx_user.clone(),
        args.influx_password.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let registry = SharedRegistry::load(&args.riders).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics_listener = TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {} for metrics", args.metrics_listen))?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let metrics_addr = metrics_listener.local_addr()?;
    velometry_core::telemetry::spawn_metrics(metrics_listener, stop.clone()).map_err(anyhow::Error::msg)?;
    // Scripts and tests read this line to learn the bound ports.
    println!(
        "progress listening on http://{} (metrics on http://{metrics_addr}/metrics)",
        listener.local_addr()?
    );
    tokio::spawn(reload::watch(
        registry.clone(),
        args.riders_poll,
        |r| velometry_core::telemetry::config_reload(r, m::CONFIG),
        stop.clone(),
    ));
    let history = History::new(&args.influx_url, &args.influx_db, auth)?;
    let writer = Writer::start(args.collector.clone(), args.token.clone());
    let live = super::live::follow(&args.nats_url).await?;
    let ready = Arc::new(AtomicBool::new(false));
    let runner = Runner::new(Config::default(), registry, history, writer, args.sync_window);
    let running = tokio::spawn(runner.run(live, args.sync_every, ready.clone(), stop.clone()));
    let health = Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/readyz",
        get(move || {
            let ready = ready.load(Ordering::Relaxed);
            async move {
                if ready {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "reading every entrant's history")
                }
            }
        }),
    );
    let mut serving_stop = stop.clone();
    let served = velometry_core::server::serve(
        listener,
        health,
        LIMITS,
        async move {
            tokio::select! {
                () = shutdown => {}
                _ = velometry_core::shutdown::stopped(&mut serving_stop) => {}
            }
        },
        Duration::from_secs(1),
        || {},
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = running.await;
    served.context("the health listener failed")
}
