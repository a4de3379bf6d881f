//! Line-protocol batches of 5,000 lines end to end into InfluxDB through the collector,
//! side by side with writing the same batches straight to InfluxDB.
//!
//! `cargo bench -p velometry-collector --bench lineproto_e2e -- [--points N] [--rounds R] [--gps]
//! [--influx-cache-snapshot 25m]`
//!
//! The default mix is a third each `heart_rate`, `power` and four-field `gps` lines;
//! `--gps` sends full six-field GPS fixes only, a heavier line for InfluxDB.
//! `--influx-cache-snapshot` runs InfluxDB with another write-cache size than velometry's
//! (`25m` is InfluxDB's default).
//!
//! Each round starts a fresh InfluxDB for each side and alternates the order, so neither
//! side meets a fuller database. "Direct" is timed until InfluxDB has acknowledged every
//! batch; "collector" until InfluxDB has stored every line (the collector's sink counter),
//! i.e. acknowledgement by the collector *and* delivery.

#[path = "common.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use velometry_core::testkit::{cpu_time, text_flag, InfluxServer, INFLUX_CACHE_SNAPSHOT};

const BATCH: usize = 5_000;
const CLIENTS: usize = 4;

/// One batch, sent as client `client`: without origin tags (to the collector, which adds
/// them) and with them (straight to InfluxDB), so that InfluxDB stores the same points.
struct Batch {
    client: usize,
    bare: Vec<u8>,
    tagged: Vec<u8>,
}

type Batches = Arc<Vec<Batch>>;

/// The measurement and fields of line `n`.
fn line(n: usize, gps_only: bool) -> (&'static str, String) {
    let lat = 45.0 + (n % 1000) as f64 * 1e-5;
    let lon = 7.0 + (n % 777) as f64 * 1e-5;
    if gps_only {
        let fields = format!(
            "lat={lat},lon={lon},alt={},speed={},heading={},accuracy={}",
            200.0 + (n % 500) as f64 * 0.1,
            8.0 + (n % 40) as f64 * 0.05,
            n % 360,
            3 + n % 7
        );
        return ("gps", fields);
    }
    match n % 3 {
        0 => ("heart_rate", format!("bpm={}", 100 + n % 80)),
        1 => ("power", format!("watts={}", 150 + n % 200)),
        _ => ("gps", format!("alt={},lat={lat},lon={lon},speed={}", 200 + n % 50, 8.5)),
    }
}

fn batches(points: usize, gps_only: bool) -> Vec<Batch> {
    let base: i64 = 1_700_000_000_000_000_000;
    (0..points / BATCH)
        .map(|b| {
            let client = b % CLIENTS;
            let mut bare = Vec::with_capacity(BATCH * 80);
            let mut tagged = Vec::with_capacity(BATCH * 120);
            for i in 0..BATCH {
                let n = b * BATCH + i;
                let ts = base + n as i64 * 1_000_000;
                let fields = line(n, gps_only);
                bare.extend_from_slice(format!("{} {} {ts}\n", fields.0, fields.1).as_bytes());
                tagged.extend_from_slice(
                    format!("{},device=d,rider=r{client},source=lineproto {} {ts}\n", fields.0, fields.1)
                        .as_bytes(),
                );
            }
            Batch { client, bare, tagged }
        })
        .collect()
}

async fn send_all(url: &str, batches: &Batches, tagged: bool) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, batches, next) = (url.to_owned(), batches.clone(), next.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    let body = if tagged { batch.tagged.clone() } else { batch.bare.clone() };
                    let resp = http
                        .post(&url)
                        .header("Authorization", format!("Token {}", common::token(batch.client)))
                        .body(body)
                        .send()
                        .await
                        .expect("send");
                    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap_or_default());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    started.elapsed()
}

/// A fresh InfluxDB, with `--influx-cache-snapshot` if given.
async fn start_influx() -> InfluxServer {
    let size = text_flag("--influx-cache-snapshot").unwrap_or_else(|| INFLUX_CACHE_SNAPSHOT.to_owned());
    InfluxServer::start_with_cache_snapshot(&size).await.expect("influxd")
}

/// The direct rate, and InfluxDB's CPU time per million lines (ms).
async fn direct(batches: &Batches) -> (f64, f64) {
    let influx = start_influx().await;
    influx.query("velometry", "CREATE DATABASE velometry").await.expect("create");
    let total = (batches.len() * BATCH) as f64;
    let cpu = cpu_time(influx.pid());
    let elapsed = send_all(&format!("{}/write?db=velometry", influx.url), batches, true).await;
    (total / elapsed.as_secs_f64(), (cpu_time(influx.pid()) - cpu).as_secs_f64() * 1e3 / (total / 1e6))
}

/// The collector's end-to-end rate, its acknowledgement rate, and the CPU time it and
/// InfluxDB spent per million lines (ms).
struct Run {
    stored: f64,
    acked: f64,
    collector_cpu: f64,
    influx_cpu: f64,
}

async fn through_collector(batches: &Batches, gzip: bool) -> Run {
    let influx = start_influx().await;
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_riders(&dir.path().join("riders.toml"), CLIENTS);
    let collector = common::start_collector(
        dir.path(),
        &influx.url,
        &["--rate-limit=100000", "--max-body-bytes=64MiB", &format!("--influx-gzip={gzip}")],
    )
    .await;
    // Let the sink create the database before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = (batches.len() * BATCH) as f64;
    let (collector_cpu, influx_cpu) = (cpu_time(collector.pid()), cpu_time(influx.pid()));
    let started = Instant::now();
    let acked = send_all(&format!("{}/write", collector.url), batches, false).await;
    while common::metric(&collector, "collector_sink_lines_written_total").await < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = started.elapsed();
    let per_million = |spent: Duration| spent.as_secs_f64() * 1e3 / (total / 1e6);
    let collector_cpu = per_million(cpu_time(collector.pid()) - collector_cpu);
    let influx_cpu = per_million(cpu_time(influx.pid()) - influx_cpu);
    let count = influx.count("velometry", "heart_rate", "bpm").await.expect("count")
        + influx.count("velometry", "power", "watts").await.expect("count")
        + influx.count("velometry", "gps", "lat").await.expect("count");
    assert_eq!(count as f64, total, "every line is in InfluxDB");
    Run {
        stored: total / stored.as_secs_f64(),
        acked: total / acked.as_secs_f64(),
        collector_cpu,
        influx_cpu,
    }
}

#[tokio::main]
async fn main() {
    let points = velometry_core::testkit::flag("--points", 2_000_000) as usize;
    let rounds = velometry_core::testkit::flag("--rounds", 3) as usize;
    let gps_only = std::env::args().any(|a| a == "--gps");
    let batches = Arc::new(batches(points, gps_only));
    let mix = if gps_only { "six-field gps fixes" } else { "heart_rate, power and gps lines" };
    println!("{} batches of {BATCH} lines ({mix}), {CLIENTS} clients, {rounds} rounds", batches.len());
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let ((d, d_cpu), c, g) = if round % 2 == 0 {
            let d = direct(&batches).await;
            (d, through_collector(&batches, false).await, through_collector(&batches, true).await)
        } else {
            let c = through_collector(&batches, false).await;
            let g = through_collector(&batches, true).await;
            (direct(&batches).await, c, g)
        };
        println!(
            "round {round}: direct {d:.0} points/s | collector end to end {:.0} points/s ({:.0}%), acknowledged at {:.0}/s | with gzip to InfluxDB {:.0} points/s ({:.0}%)",
            c.stored,
            100.0 * c.stored / d,
            c.acked,
            g.stored,
            100.0 * g.stored / d
        );
        println!(
            "  CPU per million lines: InfluxDB direct {d_cpu:.0} ms | collector {:.0} ms + InfluxDB {:.0} ms | with gzip: collector {:.0} ms + InfluxDB {:.0} ms",
            c.collector_cpu, c.influx_cpu, g.collector_cpu, g.influx_cpu
        );
        ratios.push((c.stored / d, g.stored / d));
    }
    let mut plain: Vec<f64> = ratios.iter().map(|r| r.0).collect();
    let mut gz: Vec<f64> = ratios.iter().map(|r| r.1).collect();
    plain.sort_by(f64::total_cmp);
    gz.sort_by(f64::total_cmp);
    println!(
        "median ratio to direct: {:.0}% (sink without gzip), {:.0}% (sink with gzip)",
        100.0 * plain[plain.len() / 2],
        100.0 * gz[gz.len() / 2]
    );
}
