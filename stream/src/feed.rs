//! The feed: live readings from NATS JetStream into the hub.
//!
//! The collector publishes each durable live reading (gps, heart rate, power, cadence, progress) on
//! `velometry.live.<rider>`. A JetStream stream (`VELOMETRY_LIVE`) keeps those messages for
//! `--history`, and a second stream (`VELOMETRY_LATEST`, one message per subject, as a
//! key-value bucket is built) keeps the latest reading of each rider and metric on
//! `velometry.latest.<rider>.<metric>`, which the hubs write. At start a replica reads the
//! latest (however old), then replays the live stream from `--trail` ago with an ordered
//! consumer, which goes on delivering live messages: one gap-free path from history to now. Every replica runs its own
//! consumer, so every replica sees every reading. If NATS goes away the feed reconnects and
//! replays from the trail again; readings already known are skipped by time. What the
//! feed is doing is a [`FeedState`], which `/readyz` reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::{self, consumer, stream, ErrorCode};
use futures::StreamExt;
use tokio::sync::watch;

use crate::hub::{Hub, Reading};
use crate::metrics as m;
use velometry_core::shutdown::stopped;

/// Name of the JetStream stream of live readings.
pub const STREAM: &str = "VELOMETRY_LIVE";
/// Subjects the stream captures.
pub const SUBJECTS: &str = "velometry.live.*";
/// Name of the stream of latest readings, one per rider and metric.
pub const LATEST: &str = "VELOMETRY_LATEST";
/// Subject prefix of the latest readings; `<rider>.<metric>` follows.
pub const LATEST_PREFIX: &str = "velometry.latest.";

/// Feed settings.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// NATS server URL.
    pub url: String,
    /// How far back positions are replayed at start (the trail a new map draws).
    pub trail: Duration,
    /// How long the stream keeps live readings.
    pub history: Duration,
    /// How many bytes of live readings the stream keeps at most.
    pub history_max_bytes: u64,
    /// JetStream replicas of both streams (at most the NATS cluster's size).
    pub replicas: usize,
}

/// The smallest live stream the feed settles for when NATS cannot reserve
/// [`FeedSettings::history_max_bytes`].
const MIN_HISTORY_BYTES: u64 = 1 << 20;

/// What the feed is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedState {
    /// Not following NATS yet; the last failure, if there was one.
    Starting(Option<String>),
    /// Following live readings.
    Following,
    /// Followed NATS before; reconnecting after this failure.
    Reconnecting(String),
}

/// Runs the feed until `stop` turns true, reconnecting with backoff on any failure, and
/// keeps `state` up to date.
pub async fn run(
    hub: Arc<Hub>,
    settings: FeedSettings,
    state: watch::Sender<FeedState>,
    mut stop: watch::Receiver<bool>,
) {
    const FIRST: Duration = Duration::from_millis(200);
    let mut backoff = FIRST;
    loop {
        let started = Instant::now();
        tokio::select! {
            result = consume(&hub, &settings, &state) => {
                let failure = match result {
                    Err(e) => format!("{e:#}"),
                    Ok(()) => "the NATS consumer ended".to_owned(),
                };
                tracing::warn!(error = %failure, retry_in = ?backoff, "Live feed from NATS failed; reconnecting.");
                state.send_modify(|s| {
                    *s = match s {
                        FeedState::Starting(_) => FeedState::Starting(Some(failure)),
                        FeedState::Following | FeedState::Reconnecting(_) => FeedState::Reconnecting(failure),
                    }
                });
            }
            _ = stopped(&mut stop) => return,
        }
        // A feed that ran a while was healthy: the next outage starts from a short wait again.
        if started.elapsed() >= Duration::from_secs(10) {
            backoff = FIRST;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Follows the live stream until the connection fails. Returns `Ok` if the consumer ends.
async fn consume(hub: &Hub, settings: &FeedSettings, state: &watch::Sender<FeedState>) -> anyhow::Result<()> {
    // A restarted NATS server has forgotten the ordered consumer, and the client would only
    // notice when its heartbeats stop, seconds later: on a disconnect, start over at once.
    let disconnected = Arc::new(tokio::sync::Notify::new());
    let notify = disconnected.clone();
    let client = async_nats::ConnectOptions::new()
        .name("velometry-stream")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let notify = notify.clone();
            async move {
                if matches!(event, async_nats::Event::Disconnected) {
                    notify.notify_one();
                }
            }
        })
        .connect(&settings.url)
        .await?;
    let js = jetstream::new(client.clone());
    let latest_config = stream::Config {
        name: LATEST.into(),
        subjects: vec![format!("{LATEST_PREFIX}>")],
        max_messages_per_subject: 1,
        // Unlimited, as the server reports it, so that the comparison in create_or_update
        // holds.
        max_bytes: -1,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        num_replicas: settings.replicas,
        ..stream::Config::default()
    };
    let latest =
        create_or_update(&js, &latest_config).await.with_context(|| cannot_open(LATEST, settings))?;
    // The live stream second: it takes what room the JetStream store has left.
    let mut live = open_live(&js, settings).await?;
    let loaded = load_latest(hub, &latest).await.context("cannot read the latest readings")?;
    let start = time::OffsetDateTime::now_utc() - settings.trail;
    // What the stream holds now: the consumer delivers what of it is within the trail, and
    // everything after.
    let mut received = live.info().await.context("cannot read the live stream's state")?.state.last_sequence;
    let consumer = live
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
            ..Default::default()
        })
        .await
        .context("cannot create the ordered consumer")?;
    let mut messages = consumer.messages().await.context("cannot consume")?;
    tracing::info!(url = %settings.url, latest = loaded, "Following live readings.");
    state.send_replace(FeedState::Following);
    // The latest are written at most once a second per rider and metric by each replica:
    // the live stream's replay covers the rest.
    let mut written: HashMap<(String, Arc<str>), Instant> = HashMap::new();
    let mut last_message = Instant::now();
    let mut watchdog = tokio::time::interval(STALL_CHECK);
    let mut undelivered = None;
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = disconnected.notified() => anyhow::bail!("disconnected from NATS"),
            _ = watchdog.tick() => {
                if last_message.elapsed() >= STALL_CHECK {
                    check_not_stalled(&mut live, received, &mut undelivered).await?;
                }
                continue;
            }
        };
        let Some(message) = message else { return Ok(()) };
        let message = message.context("the ordered consumer failed")?;
        last_message = Instant::now();
        if let Ok(info) = message.info() {
            m::lag(info.pending);
            received = received.max(info.stream_sequence);
        }
        let reading = match Reading::parse(&message.payload) {
            Ok(reading) => reading,
            Err(e) => {
                tracing::debug!(error = %e, subject = %message.subject, "Skipped a malformed live message.");
                continue;
            }
        };
        if hub.publish(&reading) {
            let key = (reading.rider.to_string(), reading.metric.clone());
            if written.get(&key).is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                let subject = format!("{LATEST_PREFIX}{}.{}", key.0, key.1);
                if let Err(e) = client.publish(subject, message.payload.clone()).await {
                    tracing::debug!(error = %e, "Cannot store the latest reading.");
                } else {
                    written.insert(key, Instant::now());
                }
            }
        }
    }
}

/// Creates the live stream, or brings an existing one to the configured limits. A NATS whose
/// JetStream store cannot reserve `--history-max-bytes` gets a stream of the largest half,
/// quarter, … of it that fits, and a warning that says so.
async fn open_live(js: &jetstream::Context, settings: &FeedSettings) -> anyhow::Result<stream::Stream> {
    let mut max_bytes = settings.history_max_bytes;
    loop {
        let config = stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECTS.into()],
            max_age: settings.history,
            max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            num_replicas: settings.replicas,
            ..stream::Config::default()
        };
        match create_or_update(js, &config).await {
            Ok(live) => {
                if max_bytes < settings.history_max_bytes {
                    tracing::warn!(
                        wanted = %mib(settings.history_max_bytes),
                        kept = %mib(max_bytes),
                        "NATS cannot reserve --history-max-bytes for live readings in its JetStream store; \
                         the stream keeps less. Give nats-server more (jetstream max_file_store, or free \
                         disk) or lower --history-max-bytes."
                    );
                }
                return Ok(live);
            }
            Err(e) if storage_exceeded(&e) && max_bytes / 2 >= MIN_HISTORY_BYTES => max_bytes /= 2,
            Err(e) if storage_exceeded(&e) => {
                return Err(e).with_context(|| {
                    format!(
                        "NATS has no room for the JetStream stream {STREAM}, not even {}: give \
                         nats-server more storage (jetstream max_file_store, or free disk)",
                        mib(max_bytes)
                    )
                })
            }
            Err(e) => return Err(e).with_context(|| cannot_open(STREAM, settings)),
        }
    }
}

/// What failed, and the flag that may be why.
fn cannot_open(stream: &str, settings: &FeedSettings) -> String {
    format!(
        "cannot create or open the JetStream stream {stream} with {} replica(s) (--nats-replicas; \
         a single NATS server keeps 1)",
        settings.replicas
    )
}

/// Opens the stream `config` names, creating it if missing and updating its limits and
/// replicas if they differ (after `--history`, `--history-max-bytes` or `--nats-replicas`
/// changed).
async fn create_or_update(
    js: &jetstream::Context,
    config: &stream::Config,
) -> Result<stream::Stream, CreateStreamError> {
    let mut live = js.get_or_create_stream(config.clone()).await?;
    let current = &live.cached_info().config;
    if current.max_age != config.max_age
        || current.max_bytes != config.max_bytes
        || current.num_replicas != config.num_replicas
    {
        let info = js.update_stream(config).await?;
        tracing::info!(
            stream = %info.config.name,
            max_age = ?info.config.max_age,
            max_bytes = info.config.max_bytes,
            replicas = info.config.num_replicas,
            "Updated the limits of a JetStream stream."
        );
        live = js.get_or_create_stream(config.clone()).await?;
    }
    Ok(live)
}

fn storage_exceeded(e: &CreateStreamError) -> bool {
    matches!(e.kind(), CreateStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STORAGE_RESOURCES_EXCEEDED)
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// How often a quiet consumer checks that the stream is quiet too.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// Fails if a message the live stream held at the previous check (`undelivered`) has still
/// not been delivered (`received` is the last delivered); then notes the stream's last
/// message if the consumer has not delivered it. An ordered consumer lives on one NATS
/// server; when that server goes away the client notices only after two missed 15-second
/// heartbeats, a minute without live readings. Starting over replays from the trail, which
/// skips what the hub already has.
async fn check_not_stalled(
    live: &mut stream::Stream,
    received: u64,
    undelivered: &mut Option<u64>,
) -> anyhow::Result<()> {
    if let Some(waiting) = undelivered.filter(|&w| w > received) {
        anyhow::bail!(
            "the consumer stalled: message {waiting} of the live stream was not delivered within \
             {STALL_CHECK:?} (this hub has {received})"
        );
    }
    // A stream that cannot answer now (electing a leader) is asked again at the next check.
    *undelivered = match live.info().await {
        Ok(info) if info.state.last_sequence > received => Some(info.state.last_sequence),
        _ => None,
    };
    Ok(())
}

/// Reads the latest reading of every rider and metric into the hub.
async fn load_latest(hub: &Hub, latest: &stream::Stream) -> anyhow::Result<u64> {
    let count = latest.get_info().await?.state.messages;
    if count == 0 {
        return Ok(0);
    }
    let consumer = latest
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            filter_subject: format!("{LATEST_PREFIX}>"),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut loaded = 0;
    while loaded < count {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await else {
            break;
        };
        let message = message?;
        if let Ok(reading) = Reading::parse(&message.payload) {
            hub.publish(&reading);
        }
        loaded += 1;
        if message.info().is_ok_and(|i| i.pending == 0) {
            break;
        }
    }
    Ok(loaded)
}
