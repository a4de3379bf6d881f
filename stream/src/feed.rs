//! The feed: live readings from NATS JetStream into the hub.
//!
//! The collector publishes each durable gps and heart_rate reading on
//! `velometry.live.<rider>`. A JetStream stream (`VELOMETRY_LIVE`) keeps those messages for
//! `--history`, and a key-value bucket (`velometry_latest`) holds the latest reading of each
//! rider and metric. At start a replica loads the bucket (the latest, however old), then
//! replays the stream from `--trail` ago with an ordered consumer, which goes on delivering
//! live messages: one gap-free path from history to now. Every replica runs its own
//! consumer, so every replica sees every reading. If NATS goes away the feed reconnects and
//! replays from the trail again; readings already known are skipped by time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, stream};
use futures::StreamExt;
use tokio::sync::watch;

use crate::app::stopped;
use crate::hub::{Hub, Reading};
use crate::metrics as m;

/// Name of the JetStream stream of live readings.
pub const STREAM: &str = "VELOMETRY_LIVE";
/// Subjects the stream captures.
pub const SUBJECTS: &str = "velometry.live.*";
/// Name of the key-value bucket of latest readings.
pub const BUCKET: &str = "velometry_latest";

/// Feed settings.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// NATS server URL.
    pub url: String,
    /// How far back positions are replayed at start (the trail a new map draws).
    pub trail: Duration,
    /// How long the stream keeps live readings.
    pub history: Duration,
}

/// Runs the feed until `stop` turns true, reconnecting with backoff on any failure.
pub async fn run(hub: Arc<Hub>, settings: FeedSettings, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            result = consume(&hub, &settings) => {
                if let Err(e) = result {
                    tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "Live feed from NATS failed; reconnecting.");
                }
            }
            _ = stopped(&mut stop) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn consume(hub: &Hub, settings: &FeedSettings) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .name("velometry-stream")
        .connection_timeout(Duration::from_secs(5))
        .connect(&settings.url)
        .await?;
    let js = jetstream::new(client.clone());
    let live = js
        .get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECTS.into()],
            max_age: settings.history,
            max_bytes: 1 << 30,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            ..stream::Config::default()
        })
        .await?;
    let latest = match js.get_key_value(BUCKET).await {
        Ok(bucket) => bucket,
        Err(_) => {
            js.create_key_value(kv::Config { bucket: BUCKET.into(), history: 1, ..kv::Config::default() })
                .await?
        }
    };
    let mut keys = latest.keys().await?;
    let mut loaded = 0;
    while let Some(key) = keys.next().await {
        if let Some(value) = latest.get(key?).await? {
            if let Ok(reading) = Reading::parse(&value) {
                hub.publish(&reading);
                loaded += 1;
            }
        }
    }
    let start = time::OffsetDateTime::now_utc() - settings.trail;
    let consumer = live
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    tracing::info!(url = %settings.url, latest = loaded, "Following live readings.");
    // The bucket is written at most once a second per rider and metric by each replica:
    // the stream's replay covers the rest.
    let mut written: HashMap<(String, Arc<str>), Instant> = HashMap::new();
    while let Some(message) = messages.next().await {
        let message = message?;
        if let Ok(info) = message.info() {
            m::lag(info.pending);
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
                let name = format!("{}.{}", key.0, key.1);
                if let Err(e) = latest.put(name, message.payload.clone()).await {
                    tracing::debug!(error = %e, "Cannot store the latest reading.");
                } else {
                    written.insert(key, Instant::now());
                }
            }
        }
    }
    anyhow::bail!("the NATS consumer ended")
}
