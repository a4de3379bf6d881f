//! Live publishing: after a gps or heart_rate reading is durable, it goes out as JSON on
//! NATS subject `velometry.live.<rider>`. A bounded queue sits between ingest and NATS, so
//! NATS being slow or down never blocks or fails ingest; what cannot be queued is counted.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use velometry_core::reading::Reading;
use velometry_core::riders::DeviceIdentity;
use velometry_core::time::{format_rfc3339, Nanos};

use crate::metrics as m;

/// Subject prefix; the rider id follows.
pub const SUBJECT_PREFIX: &str = "velometry.live.";

/// A reading as published live.
#[derive(Debug, Serialize)]
pub struct LiveReading<'a> {
    /// Rider id.
    pub rider: &'a str,
    /// Device id.
    pub device: &'a str,
    /// A live metric ([`velometry_core::reading::Metric::is_live`]).
    pub metric: &'a str,
    /// RFC 3339 time of the reading.
    pub time: String,
    /// When the collector made it durable, epoch milliseconds (for delivery latency).
    pub accepted_at_ms: i64,
    /// The reading's fields (`lat`, `lon`, `alt`, `speed`, … or `bpm`).
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Encodes the live messages of a request: `(subject, JSON)` for each live reading not
/// older than `max_age` (an imported ride from last year is history, not live).
pub fn messages(
    identity: &DeviceIdentity,
    readings: &[Reading],
    now: Nanos,
    max_age: Duration,
) -> Vec<(String, Bytes)> {
    let oldest = now.saturating_sub(max_age.as_nanos().min(i64::MAX as u128) as i64);
    readings
        .iter()
        .filter(|r| r.metric().is_live() && r.time() >= oldest)
        .filter_map(|r| {
            let fields = r.fields().map(|(k, v)| (k.to_owned(), serde_json::Value::from(v))).collect();
            let message = LiveReading {
                rider: identity.rider.as_str(),
                device: identity.device.as_str(),
                metric: r.metric().name(),
                time: format_rfc3339(r.time()),
                accepted_at_ms: now / 1_000_000,
                fields,
            };
            let json = serde_json::to_vec(&message).ok()?;
            Some((format!("{SUBJECT_PREFIX}{}", identity.rider), Bytes::from(json)))
        })
        .collect()
}

/// The ingest side of the live queue.
#[derive(Clone)]
pub struct Live {
    tx: mpsc::Sender<(String, Bytes)>,
}

impl Live {
    /// Connects to NATS in the background (retrying for as long as it takes) and starts the
    /// publishing task.
    pub fn start(url: String, queue: usize) -> Live {
        let (tx, rx) = mpsc::channel(queue);
        tokio::spawn(publish_loop(url, rx));
        Live { tx }
    }

    /// Queues messages without waiting; those that do not fit are counted and dropped.
    pub fn publish(&self, messages: Vec<(String, Bytes)>) {
        let mut dropped = 0;
        for message in messages {
            if self.tx.try_send(message).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            m::live_failure("queue_full", dropped);
        }
    }
}

async fn publish_loop(url: String, mut rx: mpsc::Receiver<(String, Bytes)>) {
    let options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .name("velometry-collector");
    let client = match options.connect(&url).await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(%url, error = %e, "Cannot use NATS; live readings will not be published.");
            return;
        }
    };
    tracing::info!(%url, "Publishing live readings on NATS.");
    while let Some((subject, payload)) = rx.recv().await {
        match client.publish(subject, payload).await {
            Ok(()) => m::live_published(1),
            Err(e) => {
                tracing::debug!(error = %e, "Live publish failed.");
                m::live_failure("nats", 1);
            }
        }
    }
}
