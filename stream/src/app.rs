//! Start-up and shutdown: [`Settings`] → [`Application::build`] → [`Application::run_until_stopped`]
//! (which also follows the riders file: a rider added to it mid-race can be followed at once).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use velometry_core::riders::reload::{self, SharedRegistry};
use velometry_core::server::ServerLimits;

use crate::feed::{self, FeedSettings, FeedState};
use crate::hub::Hub;
use crate::state::{AppState, Limits};

/// Everything the hub needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// HTTP and WebSocket listener.
    pub listen: SocketAddr,
    /// `/metrics` listener.
    pub metrics_listen: SocketAddr,
    /// The riders file.
    pub riders: PathBuf,
    /// How often the riders file and its course files are checked for changes.
    pub riders_poll: Duration,
    /// NATS and its history.
    pub feed: FeedSettings,
    /// Open WebSockets at most.
    pub max_connections: usize,
    /// How often an event's followers get its entrants' new progress.
    pub progress_every: Duration,
    /// Browser origins allowed to connect; every origin when `None`.
    pub allowed_origins: Option<Vec<String>>,
    /// Per-connection limits.
    pub limits: Limits,
    /// What the spectator page is told: the query service's URL, the map tiles.
    pub page: crate::page::PageSettings,
}

/// A built hub: listeners bound, riders read.
pub struct Application {
    listener: TcpListener,
    metrics_listener: TcpListener,
    settings: Settings,
    hub: Arc<Hub>,
    registry: SharedRegistry,
}

impl Application {
    /// Reads the riders file and binds the listeners.
    ///
    /// # Errors
    /// A message saying what to fix.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let registry = SharedRegistry::load(&settings.riders)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", settings.listen))?;
        let metrics_listener = TcpListener::bind(settings.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} (--metrics-listen)", settings.metrics_listen))?;
        let hub = Arc::new(Hub::new(registry.clone(), settings.feed.trail));
        Ok(Application { listener, metrics_listener, settings, hub, registry })
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

    /// Serves until `shutdown` resolves; then closes every WebSocket with 1001 (going away)
    /// so that clients reconnect elsewhere.
    ///
    /// # Errors
    /// When the metrics recorder cannot be installed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application { listener, metrics_listener, settings, hub, registry } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let metrics = velometry_core::telemetry::spawn_metrics(metrics_listener, stop_rx.clone())
            .map_err(anyhow::Error::msg)?;
        let reloads = tokio::spawn(reload::watch(
            registry,
            settings.riders_poll,
            crate::metrics::config_reload,
            stop_rx.clone(),
        ));
        let (feed_tx, feed_rx) = watch::channel(FeedState::Starting(None));
        let feed = tokio::spawn(feed::run(hub.clone(), settings.feed.clone(), feed_tx, stop_rx.clone()));
        let progress =
            tokio::spawn(crate::hub::send_progress(hub.clone(), settings.progress_every, stop_rx.clone()));
        let state = AppState {
            hub,
            permits: Arc::new(Semaphore::new(settings.max_connections)),
            limits: settings.limits,
            allowed_origins: settings.allowed_origins.clone().map(Arc::new),
            stop: stop_rx,
            feed: feed_rx,
            page: Arc::new(crate::page::Page::new(&settings.page)),
        };
        let limits = ServerLimits {
            // Room above the WebSocket cap, so that a full hub can still say so politely.
            max_connections: settings.max_connections + settings.max_connections / 10 + 16,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        };
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        velometry_core::server::serve(
            listener,
            crate::http::router(state),
            limits,
            shutdown,
            Duration::from_secs(5),
            || crate::metrics::refused("connections"),
        )
        .await?;
        let _ = feed.await;
        let _ = progress.await;
        let _ = reloads.await;
        let _ = metrics.await;
        Ok(())
    }
}
