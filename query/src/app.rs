//! Start-up and shutdown: [`Settings`] → [`Application::build`] → [`Application::run_until_stopped`]
//! (which also follows the riders file: a rider added to it mid-race is served at once).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use velometry_core::influx::InfluxAuth;
use velometry_core::riders::reload::{self, SharedRegistry};
use velometry_core::server::ServerLimits;

use crate::api::{self, AppState};
use crate::influx::Influx;
use crate::rollup::{RollupSettings, Rollups, Watermark};

/// Everything the service needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// HTTP API listener.
    pub listen: SocketAddr,
    /// `/metrics` listener.
    pub metrics_listen: SocketAddr,
    /// InfluxDB base URL.
    pub influx_url: String,
    /// InfluxDB database.
    pub influx_db: String,
    /// InfluxDB credentials.
    pub influx_auth: InfluxAuth,
    /// Whether InfluxDB's answers are asked gzipped.
    pub influx_gzip: bool,
    /// How long identical reads share one answer.
    pub read_cache_ttl: Duration,
    /// The riders file.
    pub riders: PathBuf,
    /// How often the riders file and its course files are checked for changes.
    pub riders_poll: Duration,
    /// The rollup job.
    pub rollups: RollupSettings,
    /// Raw points one request may read at most.
    pub max_raw_points: usize,
    /// Readings one export may hold at most.
    pub max_export_points: i64,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time allowed for a request (exports excepted).
    pub request_timeout: Duration,
}

/// A built service: listeners bound, riders read.
pub struct Application {
    listener: TcpListener,
    metrics_listener: TcpListener,
    settings: Settings,
    state: AppState,
}

impl Application {
    /// Reads the riders file and binds the listeners.
    ///
    /// # Errors
    /// A message saying what to fix.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let registry = SharedRegistry::load(&settings.riders)?;
        let influx = Influx::new(
            &settings.influx_url,
            &settings.influx_db,
            settings.influx_auth.clone(),
            settings.influx_gzip,
        )
        .context("cannot build the InfluxDB client")?
        .sharing_reads(settings.read_cache_ttl);
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", settings.listen))?;
        let metrics_listener = TcpListener::bind(settings.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} (--metrics-listen)", settings.metrics_listen))?;
        let state = AppState {
            registry,
            influx,
            watermark: Watermark::default(),
            max_raw_points: settings.max_raw_points,
            max_export_points: settings.max_export_points,
            answers: std::sync::Arc::new(crate::influx::shared::Shared::new(settings.read_cache_ttl)),
        };
        Ok(Application { listener, metrics_listener, settings, state })
    }

    /// The listener's address.
    ///
    /// # Errors
    /// When the socket has no address.
    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics listener's address.
    ///
    /// # Errors
    /// When the socket has no address.
    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    /// Serves and runs the rollup job until `shutdown` resolves.
    ///
    /// # Errors
    /// When the metrics recorder cannot be installed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application { listener, metrics_listener, settings, state } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let metrics = velometry_core::telemetry::spawn_metrics(metrics_listener, stop_rx.clone())
            .map_err(anyhow::Error::msg)?;
        let reloads = tokio::spawn(reload::watch(
            state.registry.clone(),
            settings.riders_poll,
            crate::metrics::config_reload,
            stop_rx.clone(),
        ));
        let rollups = Rollups::new(state.influx.clone(), settings.rollups, state.watermark.clone());
        let job = tokio::spawn(rollups.run(stop_rx.clone()));
        let limits = ServerLimits {
            max_connections: settings.max_connections,
            header_timeout: Duration::from_secs(10),
            request_timeout: settings.request_timeout,
        };
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        velometry_core::server::serve(
            listener,
            api::router(state, settings.request_timeout),
            limits,
            shutdown,
            Duration::from_secs(10),
            crate::metrics::refused,
        )
        .await?;
        let _ = job.await;
        let _ = reloads.await;
        let _ = metrics.await;
        Ok(())
    }
}
