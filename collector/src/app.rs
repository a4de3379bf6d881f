//! Start-up and shutdown: [`Settings`] → [`Application::build`] (binds listeners, opens the
//! WAL, reads the riders file) → [`Application::run_until_stopped`] (which also follows the
//! riders file, so that a rider or a device token added mid-race works without a restart).

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use velometry_core::riders::reload::{self, SharedRegistry};

use crate::auth::Authenticator;
use crate::dead_letters::DeadLetters;
use crate::field_types::learn::{self, Learner};
use crate::field_types::FieldTypes;
use crate::http;
use crate::ingest::device::DeviceLetters;
use crate::ingest::{BodyLimits, Ingest};
use crate::live::Live;
use crate::metrics as m;
use crate::sink::influx_v1::InfluxV1;
use crate::sink::influx_v2::InfluxV2;
use crate::sink::questdb::QuestDb;
use crate::sink::{Drainer, Sink};
use crate::state::AppState;
use crate::wal::{Wal, WalOptions};
use velometry_core::influx::InfluxAuth;
use velometry_core::server::ServerLimits;

/// Which InfluxDB API the sink speaks.
#[derive(Debug, Clone)]
pub enum SinkSettings {
    /// `/write` with a database (1.x; 2.x and 3.x through their v1 API).
    InfluxV1 {
        /// Server URL.
        url: String,
        /// Database.
        db: String,
        /// Credentials.
        auth: InfluxAuth,
        /// Gzip the batches.
        gzip: bool,
    },
    /// `/api/v2/write` with org, bucket and token.
    InfluxV2 {
        /// Server URL.
        url: String,
        /// Organisation.
        org: String,
        /// Bucket.
        bucket: String,
        /// API token.
        token: String,
    },
}

/// Everything the collector needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Ingest listener address.
    pub listen: SocketAddr,
    /// `/metrics` listener address.
    pub metrics_listen: SocketAddr,
    /// The riders file.
    pub riders: PathBuf,
    /// How often the riders file and its course files are checked for changes.
    pub riders_poll: Duration,
    /// WAL directory.
    pub wal_dir: PathBuf,
    /// Bound on unflushed WAL bytes.
    pub wal_max_bytes: u64,
    /// The sink.
    pub sink: SinkSettings,
    /// QuestDB client configuration string of an optional second sink.
    pub questdb: Option<String>,
    /// Lines per sink batch.
    pub batch_lines: usize,
    /// Batches in flight to each sink at once.
    pub sink_concurrency: usize,
    /// NATS server for live readings, if any.
    pub nats_url: Option<String>,
    /// Readings older than this are not published live.
    pub live_max_age: Duration,
    /// The sources file of the scheduled pollers, if any.
    pub sources: Option<PathBuf>,
    /// Readings older than this on arrival are announced to the rollups.
    pub late_after: Duration,
    /// Body limits.
    pub body: BodyLimits,
    /// Connection limits.
    pub server: ServerLimits,
    /// Requests per second per token.
    pub rate_per_token: NonZeroU32,
    /// Burst per token.
    pub rate_burst: NonZeroU32,
    /// How long shutdown waits for the WAL to drain.
    pub flush_timeout: Duration,
    /// Tests only: the file a simulated step of the wall clock is read from.
    pub testing_clock_step_file: Option<PathBuf>,
    /// How often the database is asked for its field types.
    pub field_types_refresh: Duration,
}

/// A built collector: listeners bound, WAL open, ready to run.
pub struct Application {
    listener: TcpListener,
    metrics_listener: TcpListener,
    state: AppState,
    drainers: Vec<Drainer>,
    wal: Wal,
    settings: Settings,
    sources: Vec<crate::sources::Source>,
    learner: Learner,
    registry: SharedRegistry,
}

impl Application {
    /// Binds the listeners, opens (recovers) the WAL and reads the riders file.
    ///
    /// # Errors
    /// A message saying what to fix: an unreadable riders file, a taken port, a WAL
    /// directory that cannot be written.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        if let Some(path) = &settings.testing_clock_step_file {
            tracing::warn!(file = %path.display(), "The wall clock is stepped by the seconds in this file (a testing flag).");
            let _ = read_clock_step(path);
        }
        let registry = SharedRegistry::load(&settings.riders)?;
        if registry.current().riders().is_empty() {
            tracing::warn!(riders = %settings.riders.display(), "The riders file has no riders; every write will be refused.");
        }
        let mut sinks = vec![build_sink(&settings.sink)?];
        if let Some(conf) = &settings.questdb {
            sinks.push(Sink::QuestDb(Box::new(QuestDb::new(conf).map_err(anyhow::Error::msg)?)));
        }
        let names: Vec<&'static str> = sinks.iter().map(Sink::name).collect();
        let (wal, readers) = Wal::open(
            &WalOptions {
                dir: settings.wal_dir.clone(),
                max_bytes: settings.wal_max_bytes,
                segment_bytes: (settings.wal_max_bytes / 8).clamp(1 << 20, 64 << 20),
                memory_bytes: (settings.wal_max_bytes / 16).clamp(1 << 20, 64 << 20) as usize,
            },
            &names,
        )
        .with_context(|| format!("cannot open the WAL in {}", settings.wal_dir.display()))?;
        let drainers = sinks
            .into_iter()
            .zip(readers)
            .map(|(sink, reader)| Drainer {
                dead_letters: DeadLetters::new(
                    settings.wal_dir.join(format!("dead-letters.{}.jsonl", sink.name())),
                ),
                sink,
                reader,
                batch_lines: settings.batch_lines,
                concurrency: settings.sink_concurrency,
            })
            .collect();
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", settings.listen))?;
        let metrics_listener = TcpListener::bind(settings.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} (--metrics-listen)", settings.metrics_listen))?;
        let live = settings.nats_url.clone().map(|url| Live::start(url, 65_536));
        let sources = match &settings.sources {
            Some(path) => crate::sources::load(path, &registry.current()).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        };
        if !sources.is_empty() {
            tracing::info!(sources = ?crate::sources::names(&sources), "Pollers configured.");
        }
        let auth =
            Arc::new(Authenticator::new(registry.clone(), settings.rate_per_token, settings.rate_burst));
        let field_types = Arc::new(FieldTypes::open(
            settings.wal_dir.join("field-types.jsonl"),
            wal.committed_lsn(),
            settings.questdb.is_some(),
        ));
        let state = AppState {
            auth,
            ingest: Ingest::new(
                wal.clone(),
                live,
                settings.live_max_age,
                settings.late_after,
                DeviceLetters::new(settings.wal_dir.join("dead-letters.devices.jsonl")),
            ),
            limits: settings.body,
            field_types,
        };
        let learner = build_learner(&settings.sink).context("cannot build the InfluxDB client")?;
        Ok(Application {
            listener,
            metrics_listener,
            state,
            drainers,
            wal,
            settings,
            sources,
            learner,
            registry,
        })
    }

    /// The ingest listener's address (the real port when asked for port 0).
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

    /// Serves until `shutdown` resolves; then stops accepting, lets requests in flight
    /// finish, flushes what it can to the sink within `--flush-timeout`, and returns.
    ///
    /// # Errors
    /// When the metrics recorder cannot be installed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics_listener,
            state,
            drainers,
            wal,
            settings,
            sources,
            learner,
            registry,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let metrics = velometry_core::telemetry::spawn_metrics(metrics_listener, stop_rx.clone())
            .map_err(anyhow::Error::msg)?;
        let reloads =
            tokio::spawn(reload::watch(registry, settings.riders_poll, m::config_reload, stop_rx.clone()));
        // Learn the database's field types before the first request, if it answers soon;
        // if not, the types learned from lines (kept across restarts) hold meanwhile.
        let first =
            tokio::time::timeout(FIRST_REFRESH, learn::refresh(&state.field_types, &learner, &wal)).await;
        if let Err(error) = first.map_err(|_| "no answer in time".to_owned()).and_then(|r| r) {
            tracing::warn!(%error, "Cannot ask InfluxDB for its field types yet; checking against what is known.");
        }
        let refresher = tokio::spawn(learn::run(
            state.field_types.clone(),
            learner,
            wal.clone(),
            settings.field_types_refresh,
            stop_rx.clone(),
        ));
        let drained: Vec<_> = drainers
            .into_iter()
            .map(|d| tokio::spawn(d.run(stop_rx.clone(), settings.flush_timeout)))
            .collect();
        let gauges = tokio::spawn(update_gauges(wal, stop_rx.clone()));
        if let Some(path) = settings.testing_clock_step_file.clone() {
            tokio::spawn(follow_clock_step(path, stop_rx.clone()));
        }
        // Pollers stop before the WAL is flushed: what they store must be in it by then.
        let (pollers_stop, pollers_stop_rx) = watch::channel(false);
        let mut pollers = crate::sources::spawn(
            sources,
            state.ingest.clone(),
            settings.wal_dir.join("sources"),
            pollers_stop_rx,
        );
        let router = http::router(state, settings.server.request_timeout);
        velometry_core::server::serve(
            listener,
            router,
            settings.server,
            shutdown,
            Duration::from_secs(10),
            m::connection_refused,
        )
        .await?;
        let _ = pollers_stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while pollers.join_next().await.is_some() {}
        })
        .await;
        tracing::info!("Stopped accepting readings; flushing the WAL.");
        let _ = stop_tx.send(true);
        for drainer in drained {
            let _ = drainer.await;
        }
        let _ = gauges.await;
        let _ = reloads.await;
        let _ = refresher.await;
        let _ = metrics.await;
        Ok(())
    }
}

/// How long start-up waits for the database to say what field types it holds.
const FIRST_REFRESH: Duration = Duration::from_secs(5);

/// Asks the database the sink writes to, through InfluxQL: the v1 sink's database, or the
/// v2 sink's bucket (InfluxDB 2 answers InfluxQL for a bucket with a DBRP mapping).
fn build_learner(settings: &SinkSettings) -> Result<Learner, reqwest::Error> {
    match settings {
        SinkSettings::InfluxV1 { url, db, auth, .. } => Learner::new(url, db, auth.clone(), true),
        SinkSettings::InfluxV2 { url, bucket, token, .. } => {
            Learner::new(url, bucket, InfluxAuth::Token(token.clone()), false)
        }
    }
}

fn build_sink(settings: &SinkSettings) -> anyhow::Result<Sink> {
    Ok(match settings {
        SinkSettings::InfluxV1 { url, db, auth, gzip } => Sink::InfluxV1(
            InfluxV1::new(url, db, auth.clone(), *gzip).context("cannot build the InfluxDB client")?,
        ),
        SinkSettings::InfluxV2 { url, org, bucket, token } => {
            Sink::InfluxV2(InfluxV2::new(url, org, bucket, token))
        }
    })
}

/// The simulated clock step in `path` (seconds, signed), if the file holds one.
fn read_clock_step(path: &std::path::Path) -> Option<f64> {
    let seconds = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<f64>().ok());
    let seconds = seconds.filter(|s| s.is_finite())?;
    velometry_core::time::set_simulated_step((seconds * 1e9) as i64);
    Some(seconds)
}

/// Follows the file of the simulated clock step; logs each new step (tests wait for it).
async fn follow_clock_step(path: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let step = read_clock_step(&path);
                if step.is_some() && step != last {
                    tracing::info!(step_s = step, "The simulated clock step is in effect.");
                    last = step;
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn update_gauges(wal: Wal, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                m::wal_bytes(wal.unflushed_bytes());
                m::wal_oldest_age(wal.oldest_unflushed_age());
                wal.probe();
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
