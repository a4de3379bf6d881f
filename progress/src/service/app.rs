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
use super::members::{self, Settings};
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

/// The service, its listeners bound, ready to run.
pub struct Application {
    listener: TcpListener,
    metrics_addr: std::net::SocketAddr,
    runner: Runner,
    live: std::pin::Pin<Box<dyn futures::Stream<Item = (velometry_core::ids::RiderId, crate::Fix)> + Send>>,
    /// The task that keeps this replica on the replicas' list.
    membership: tokio::task::JoinHandle<()>,
    sync_every: Duration,
    stop_tx: tokio::sync::watch::Sender<bool>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Application {
    /// Reads the riders file, binds the listeners, connects to NATS and serves metrics.
    ///
    /// # Errors
    /// A flag that does not fit, a riders file that cannot be used, a port that cannot be
    /// bound, NATS unreachable.
    pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
        let auth = InfluxAuth::from_flags(
            args.sources.influx_token.clone(),
            args.sources.influx_user.clone(),
            args.sources.influx_password.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        let registry = SharedRegistry::load(&args.sources.riders).map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let metrics_listener = TcpListener::bind(args.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} for metrics", args.metrics_listen))?;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let metrics_addr = metrics_listener.local_addr()?;
        velometry_core::telemetry::spawn_metrics(metrics_listener, stop.clone())
            .map_err(anyhow::Error::msg)?;
        tokio::spawn(reload::watch(
            registry.clone(),
            args.riders_poll,
            |r| velometry_core::telemetry::config_reload(r, m::CONFIG),
            stop.clone(),
        ));
        let history = History::new(&args.sources.influx_url, &args.sources.influx_db, auth)?;
        let writer = Writer::start(args.sources.collector.clone(), args.sources.token.clone());
        let client = super::live::connect(&args.nats_url).await?;
        let live = Box::pin(super::live::follow(&client).await?);
        let members =
            Settings { bucket: args.replicas_bucket.clone(), name: args.replica.clone(), lease: args.lease };
        let (owners, membership) = members::join(client, members, stop.clone());
        let runner = Runner::new(Config::default(), registry, owners, history, writer, args.sync_window);
        Ok(Application {
            listener,
            metrics_addr,
            runner,
            live,
            membership,
            sync_every: args.sync_every,
            stop_tx,
            stop,
        })
    }

    /// Where the health listener is bound.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Where metrics are served.
    pub fn metrics_addr(&self) -> std::net::SocketAddr {
        self.metrics_addr
    }

    /// Follows every entrant until `shutdown` resolves.
    ///
    /// # Errors
    /// When the health listener fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application { listener, runner, live, membership, sync_every, stop_tx, stop, .. } = self;
        let ready = Arc::new(AtomicBool::new(false));
        let running = tokio::spawn(runner.run(live, sync_every, ready.clone(), stop.clone()));
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
        // Off the list, so the other replicas take this one's riders without waiting.
        let _ = tokio::time::timeout(Duration::from_secs(5), membership).await;
        served.context("the health listener failed")
    }
}
