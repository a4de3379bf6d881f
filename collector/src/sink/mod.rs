//! Sinks: where the log is drained to. A [`Drainer`] reads committed batches from the WAL,
//! writes them to its sink, retries what may succeed later for as long as it takes, splits
//! a refused batch until it finds the lines at fault, and moves the checkpoint only once a
//! batch is wholly stored or dead-lettered.

pub mod influx_v1;
pub mod influx_v2;
pub mod questdb;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};

use rand::Rng;
use tokio::sync::watch;

use crate::dead_letters::DeadLetters;
use crate::metrics as m;
use crate::wal::WalReader;

/// Why a write to a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: network errors, 5xx, authentication (an operator may fix it).
    #[error("{kind}: {message}")]
    Retry {
        /// Bounded label for metrics: `network`, `server`, `auth`, `missing_database`.
        kind: &'static str,
        /// What happened.
        message: String,
    },
    /// The sink refused the lines as invalid; sending them again cannot help.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// One of the configured sinks.
pub enum Sink {
    /// InfluxDB `/write` (1.x, and 2.x/3.x through their v1 API).
    InfluxV1(influx_v1::InfluxV1),
    /// InfluxDB `/api/v2/write`.
    InfluxV2(influx_v2::InfluxV2),
    /// QuestDB, through `questdb-rs`.
    QuestDb(Box<questdb::QuestDb>),
}

impl Sink {
    /// The label used in metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::InfluxV1(_) => "influx_v1",
            Sink::InfluxV2(_) => "influx_v2",
            Sink::QuestDb(_) => "questdb",
        }
    }

    /// Prepares the destination (creates the database where the server allows it).
    pub async fn prepare(&self) {
        match self {
            Sink::InfluxV1(s) => s.create_database().await,
            Sink::InfluxV2(_) | Sink::QuestDb(_) => {}
        }
    }

    async fn write(&self, body: Bytes) -> Result<(), SinkError> {
        match self {
            Sink::InfluxV1(s) => s.write(body).await,
            Sink::InfluxV2(s) => s.write(body).await,
            Sink::QuestDb(s) => s.write(&body).await,
        }
    }
}

/// Drains the WAL into one sink.
pub struct Drainer {
    /// The destination.
    pub sink: Sink,
    /// The cursor over committed records.
    pub reader: WalReader,
    /// Where refused lines go.
    pub dead_letters: DeadLetters,
    /// Lines per batch (InfluxDB suggests about 5,000).
    pub batch_lines: usize,
    /// Batches in flight at once. Their writes may finish in any order (points are
    /// idempotent); the checkpoint only moves over batches that are all stored.
    pub concurrency: usize,
}

/// The deadline passed during shutdown: the rest stays in the WAL for the next start.
struct Abandoned;

const BATCH_BYTES: usize = 8 << 20;
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

impl Drainer {
    /// Runs until `stopping` turns true and then either the log is drained or
    /// `flush_timeout` has passed.
    pub async fn run(self, mut stopping: watch::Receiver<bool>, flush_timeout: Duration) {
        let Drainer { sink, mut reader, dead_letters, batch_lines, concurrency } = self;
        sink.prepare().await;
        let delivery = Arc::new(Delivery { sink, dead_letters: Mutex::new(dead_letters), flush_timeout });
        let name = delivery.sink.name();
        let mut in_flight = FuturesOrdered::new();
        loop {
            while in_flight.len() < concurrency.max(1) && !reader.caught_up() {
                match reader.read(batch_lines, BATCH_BYTES) {
                    Ok(batch) => {
                        let (delivery, stopping) = (delivery.clone(), stopping.clone());
                        in_flight.push_back(async move {
                            let outcome = delivery.deliver(batch.body, stopping).await;
                            (outcome, batch.end, batch.lines)
                        });
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Cannot read the WAL; retrying in 1 s.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
            if in_flight.is_empty() {
                if *stopping.borrow() {
                    persist(&mut reader);
                    tracing::info!(sink = name, "WAL drained.");
                    return;
                }
                tokio::select! {
                    () = reader.wait() => {}
                    _ = stopping.changed() => {}
                }
                continue;
            }
            tokio::select! {
                Some((outcome, end, lines)) = in_flight.next() => {
                    if outcome.is_err() {
                        persist(&mut reader);
                        tracing::warn!(
                            sink = name,
                            unflushed_lines_in_batch = lines,
                            "Flush timeout passed at shutdown; the rest stays in the WAL and is sent on the next start."
                        );
                        return;
                    }
                    if let Err(e) = reader.commit(end) {
                        // Not fatal: without a checkpoint the batch is sent again, which overwrites.
                        tracing::warn!(error = %e, "Cannot write the WAL checkpoint.");
                    }
                }
                () = reader.wait(), if in_flight.len() < concurrency => {}
                _ = stopping.changed() => {}
            }
        }
    }
}

fn persist(reader: &mut WalReader) {
    if let Err(e) = reader.persist() {
        // Not fatal: what the checkpoint misses is sent again on the next start.
        tracing::warn!(error = %e, "Cannot write the WAL checkpoint.");
    }
}

/// What every batch in flight shares.
struct Delivery {
    sink: Sink,
    dead_letters: Mutex<DeadLetters>,
    flush_timeout: Duration,
}

impl Delivery {
    /// Writes one batch; on refusal, splits it in halves until the refused lines are found.
    async fn deliver(&self, body: Bytes, mut stopping: watch::Receiver<bool>) -> Result<(), Abandoned> {
        let mut deadline = None;
        let mut parts = vec![body];
        while let Some(part) = parts.pop() {
            match self.write_retrying(&part, &mut deadline, &mut stopping).await? {
                Ok(()) => {}
                Err(reason) => match split_lines(&part) {
                    Some(cut) => {
                        parts.push(part.slice(cut..));
                        parts.push(part.slice(..cut));
                    }
                    None => self.dead_letter(&reason, &part, &mut deadline, &mut stopping).await?,
                },
            }
        }
        Ok(())
    }

    /// Writes a refused line to the dead-letter file, trying again until it is on disk (a
    /// full disk): until then the checkpoint stays before it, so the line stays in the WAL.
    async fn dead_letter(
        &self,
        reason: &str,
        line: &[u8],
        deadline: &mut Option<Instant>,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<(), Abandoned> {
        let name = self.sink.name();
        let time = velometry_core::time::format_rfc3339(velometry_core::time::now_nanos());
        // Lines cut as InfluxDB cuts them: a string may hold a newline.
        let entries: Vec<serde_json::Value> = velometry_core::lineproto::lines(line)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let line = String::from_utf8_lossy(line);
                serde_json::json!({"time": time, "sink": name, "reason": reason, "line": line})
            })
            .collect();
        let mut attempt = 0u32;
        loop {
            let written =
                self.dead_letters.lock().unwrap_or_else(std::sync::PoisonError::into_inner).append(&entries);
            match written {
                Ok(()) => {
                    tracing::warn!(sink = name, %reason, "A line was refused; dead-lettered.");
                    m::dead_letters(name, entries.len());
                    return Ok(());
                }
                Err(e) => {
                    attempt += 1;
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::error!(sink = name, error = %e, attempt,
                            "Cannot write the dead-letter file (is the disk full?); the refused line stays in the WAL and is tried again.");
                    }
                    self.pause(attempt, deadline, stopping).await?;
                }
            }
        }
    }

    /// Retries with capped exponential backoff and full jitter until the write succeeds or
    /// is refused. Only a passed shutdown deadline stops it.
    async fn write_retrying(
        &self,
        body: &Bytes,
        deadline: &mut Option<Instant>,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), String>, Abandoned> {
        let name = self.sink.name();
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let error = match self.sink.write(body.clone()).await {
                Ok(()) => {
                    m::sink_batch(name, memchr::memchr_iter(b'\n', body).count(), started.elapsed());
                    return Ok(Ok(()));
                }
                Err(SinkError::Rejected(reason)) => {
                    m::sink_error(name, "rejected");
                    return Ok(Err(reason));
                }
                Err(SinkError::Retry { kind, message }) => {
                    m::sink_error(name, kind);
                    if kind == "missing_database" {
                        self.sink.prepare().await;
                    }
                    message
                }
            };
            attempt += 1;
            if attempt == 1 || attempt.is_multiple_of(10) {
                tracing::warn!(sink = name, attempt, %error, "Sink write failed; retrying.");
            }
            self.pause(attempt, deadline, stopping).await?;
        }
    }

    /// Waits before attempt `attempt + 1`: capped exponential backoff with full jitter, cut
    /// short by shutdown, which then allows `--flush-timeout` in all.
    async fn pause(
        &self,
        attempt: u32,
        deadline: &mut Option<Instant>,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<(), Abandoned> {
        let cap = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(BACKOFF_CAP);
        let wait = Duration::from_millis(rand::rng().random_range(0..=cap.as_millis() as u64));
        if *stopping.borrow() && deadline.is_none() {
            *deadline = Some(Instant::now() + self.flush_timeout);
        }
        match *deadline {
            Some(d) if Instant::now() + wait > d => return Err(Abandoned),
            _ => {}
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopping.changed(), if deadline.is_none() => {}
        }
        Ok(())
    }
}

/// Where to split a multi-line body: after the line boundary nearest its middle. Lines
/// are cut as InfluxDB cuts them: a string may hold a newline.
fn split_lines(body: &[u8]) -> Option<usize> {
    let mut ends = Vec::new();
    let mut lines = velometry_core::lineproto::lines(body);
    while lines.next().is_some() {
        ends.push(lines.position());
    }
    (ends.len() >= 2).then(|| ends[ends.len() / 2 - 1])
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn splits_at_line_boundaries() {
        assert_eq!(split_lines(b"a\nb\nc\nd\n"), Some(4));
        assert_eq!(split_lines(b"a\nb\nc\n"), Some(2));
        assert_eq!(split_lines(b"a\n"), None);
        assert_eq!(split_lines(b"m s=\"x\ny\" 1\n"), None, "a newline in a string ends no line");
        assert_eq!(split_lines(b"m s=\"x\ny\" 1\nm f=1 2\n"), Some(12));
    }
}
