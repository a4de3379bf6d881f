//! Writing derived readings through the collector, `POST
//! /v1/events/{event}/riders/{rider}/derived` with the service token: a task that takes
//! batches from the runner, merges those of one rider for a moment, and retries a collector
//! that is down or busy for as long as it takes (the readings are recomputable, but nothing
//! is dropped while the process runs). A refusal (4xx) is a bug or a changed riders file:
//! logged and counted, not retried.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use velometry_core::ids::{EventId, RiderId};

use super::metrics as m;

/// Readings per request at most.
pub(super) const MAX_PER_REQUEST: usize = 5_000;
/// How long readings of one rider wait for more before they are sent.
const LINGER: Duration = Duration::from_millis(200);

/// Derived readings of one entrant.
#[derive(Debug)]
pub struct Batch {
    /// The event.
    pub event: EventId,
    /// The entrant.
    pub rider: RiderId,
    /// The readings, as the collector takes them.
    pub readings: Vec<Value>,
}

/// Where the runner sends batches.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Batch>,
}

impl Writer {
    /// Starts the task writing to `collector` with `token`.
    pub fn start(collector: String, token: String) -> Writer {
        let (tx, rx) = mpsc::channel(1_024);
        tokio::spawn(run(collector.trim_end_matches('/').to_owned(), token, rx));
        Writer { tx }
    }

    /// Queues a batch; waits while the queue is full (the collector is slow or down).
    pub async fn send(&self, batch: Batch) {
        if batch.readings.is_empty() {
            return;
        }
        let _ = self.tx.send(batch).await;
    }
}

async fn run(collector: String, token: String, mut rx: mpsc::Receiver<Batch>) {
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "Cannot build the HTTP client for the collector.");
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let mut pending: BTreeMap<(EventId, RiderId), Vec<Value>> = BTreeMap::new();
        pending.entry((first.event, first.rider)).or_default().extend(first.readings);
        let until = tokio::time::Instant::now() + LINGER;
        while let Ok(Some(more)) = tokio::time::timeout_at(until, rx.recv()).await {
            pending.entry((more.event, more.rider)).or_default().extend(more.readings);
        }
        for ((event, rider), readings) in pending {
            for chunk in readings.chunks(MAX_PER_REQUEST) {
                let _ = post(&http, &collector, &token, &event, &rider, chunk).await;
            }
        }
    }
}

/// Posts `readings` until the collector takes them (retrying while it is down or busy);
/// false when it refuses them.
pub(super) async fn post(
    http: &reqwest::Client,
    collector: &str,
    token: &str,
    event: &EventId,
    rider: &RiderId,
    readings: &[Value],
) -> bool {
    let url = format!("{collector}/v1/events/{event}/riders/{rider}/derived");
    let mut delay = Duration::from_millis(200);
    loop {
        let sent =
            http.post(&url).header("Authorization", format!("Token {token}")).json(readings).send().await;
        match sent {
            Ok(r) if r.status().is_success() => {
                m::written(readings.len());
                return true;
            }
            Ok(r) if r.status().is_client_error() && r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::error!(%event, %rider, %status, body = %body.chars().take(500).collect::<String>(),
                    "The collector refused derived readings; they are dropped.");
                m::refused(readings.len());
                return false;
            }
            Ok(r) => {
                tracing::warn!(%event, %rider, status = %r.status(), retry_in = ?delay, "The collector is busy; retrying.")
            }
            Err(e) => {
                tracing::warn!(%event, %rider, error = %velometry_core::influx::error_chain(&e), retry_in = ?delay,
                "Cannot reach the collector; retrying.")
            }
        }
        m::write_retry();
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
