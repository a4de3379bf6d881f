//! The checks at the end of a chaos run, and the ones after a restart: the collector's log
//! drained, every acknowledged reading stored in InfluxDB (and once), the query service
//! answering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use velometry_core::testkit::{metric, InfluxServer, Service};

/// The database the collector writes (its default).
const DB: &str = "velometry";
/// Rows read from InfluxDB per query, below any `max-row-limit` it may have.
const PAGE: usize = 5_000;

/// Waits until the collector reports an empty write-ahead log; returns how long that took.
///
/// # Errors
/// When it is still not empty after `timeout`.
pub async fn wal_drained(collector: &Service, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = String::from("no scrape yet");
    while started.elapsed() < timeout {
        match collector.metrics().await {
            Ok(text) if text.contains("collector_wal_bytes") => {
                let bytes = metric(&text, "collector_wal_bytes ");
                if bytes == 0.0 {
                    return Ok(started.elapsed());
                }
                last = format!("{bytes} bytes");
            }
            Ok(_) => last = "no collector_wal_bytes in its metrics".into(),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(anyhow!("the collector's write-ahead log did not drain within {timeout:?} ({last})"))
}

/// What InfluxDB holds of one measurement, compared with what was acknowledged.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Stored {
    /// Acknowledged readings found.
    pub found: u64,
    /// Acknowledged readings not found.
    pub missing: u64,
    /// Extra rows at a time already seen for the rider (another series at the same time).
    pub duplicates: u64,
    /// Readings stored that were never acknowledged (their request failed after the log
    /// took them); harmless, since the rider sent them again.
    pub unacknowledged: u64,
}

impl std::ops::AddAssign for Stored {
    fn add_assign(&mut self, other: Stored) {
        self.found += other.found;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.unacknowledged += other.unacknowledged;
    }
}

/// Compares the acknowledged times of every rider with the `field` of `measurement` in
/// InfluxDB; returns the totals and a few missing readings as examples.
///
/// # Errors
/// When InfluxDB cannot be queried.
pub async fn stored(
    influx: &InfluxServer,
    acked: &BTreeMap<String, BTreeSet<i64>>,
    measurement: &str,
    field: &str,
) -> anyhow::Result<(Stored, Vec<String>)> {
    let mut total = Stored::default();
    let mut examples = Vec::new();
    for (rider, times) in acked {
        let (rows, duplicates) = times_in_influx(influx, measurement, field, rider).await?;
        let found = times.intersection(&rows).count() as u64;
        total += Stored {
            found,
            missing: times.len() as u64 - found,
            duplicates,
            unacknowledged: rows.difference(times).count() as u64,
        };
        examples
            .extend(times.difference(&rows).take(3).map(|t| format!("{measurement} of {rider} at {t} ms")));
    }
    Ok((total, examples))
}

/// The distinct times (ms) of `measurement` rows of `rider`, and how many rows repeated one.
async fn times_in_influx(
    influx: &InfluxServer,
    measurement: &str,
    field: &str,
    rider: &str,
) -> anyhow::Result<(BTreeSet<i64>, u64)> {
    let (mut times, mut duplicates) = (BTreeSet::new(), 0);
    let mut after: i64 = 0;
    loop {
        let q = format!(
            "SELECT \"{field}\" FROM \"{measurement}\" WHERE \"rider\" = '{rider}' AND time > {after} \
             ORDER BY time LIMIT {PAGE}"
        );
        let rows = influx.rows(DB, &q).await.map_err(|e| anyhow!("InfluxDB: {e}"))?;
        for row in &rows {
            let ns =
                row.get("time").and_then(serde_json::Value::as_i64).ok_or_else(|| anyhow!("{q}: no time"))?;
            if !times.insert(ns / 1_000_000) {
                duplicates += 1;
            }
            after = after.max(ns);
        }
        if rows.len() < PAGE {
            return Ok((times, duplicates));
        }
    }
}

/// Asks the query service for the latest of `rider` until it answers 200; returns how long
/// that took.
///
/// # Errors
/// When it has not answered 200 within `timeout`.
pub async fn query_answers(
    http: &reqwest::Client,
    query_url: &str,
    rider: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let url = format!("{}/v1/riders/{rider}/latest", query_url.trim_end_matches('/'));
    let mut last = String::new();
    while started.elapsed() < timeout {
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => return Ok(started.elapsed()),
            Ok(r) => last = format!("{}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(anyhow!("GET {url} did not answer 200 within {timeout:?} (last: {last})"))
}

/// Lines in the collector's dead-letter files (`<wal-dir>/dead-letters.<sink>.jsonl`).
pub fn dead_letters(wal_dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(wal_dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("dead-letters."))
        .map(|e| std::fs::read_to_string(e.path()).map_or(0, |t| t.lines().count() as u64))
        .sum()
}
