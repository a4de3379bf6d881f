//! A year of history through the query service: one rider's 1 Hz heart rate for a year
//! (31.5 million points) in a real InfluxDB, rolled up by the service, then asked for at
//! 1,000 points, side by side with the raw InfluxQL `GROUP BY time()` that computes the same
//! buckets; and an hour of raw data to 1,000 points.
//!
//! `cargo bench -p velometry-query --bench history -- [--days 365] [--requests 200]
//! [--influx-cache-snapshot 25m]`: the last runs InfluxDB with another write-cache size than
//! velometry's (`25m` is InfluxDB's default).

use std::time::{Duration, Instant};

use futures::StreamExt;
use velometry_core::testkit::{
    cpu_time, flag, text_flag, InfluxServer, RidersToml, Service, INFLUX_CACHE_SNAPSHOT,
};

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;

/// The `p` quantile of sorted durations, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

async fn timed<F, Fut>(requests: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    times.sort();
    times
}

/// Writes `days` of 1 Hz heart rate ending now, four writers at once.
async fn fill(influx: &InfluxServer, start: i64, days: i64) {
    influx.write("velometry", "").await.ok();
    let http = reqwest::Client::new();
    let url = format!("{}/write?db=velometry&precision=s", influx.url);
    let hours: Vec<i64> = (0..days * 24).collect();
    let written = std::sync::atomic::AtomicUsize::new(0);
    let total = hours.len();
    futures::stream::iter(hours)
        .for_each_concurrent(4, |hour| {
            let (http, url, written) = (&http, &url, &written);
            async move {
                let mut body = String::with_capacity(3600 * 64);
                let t0 = (start + hour * HOUR) / SECOND;
                for s in 0..3600_i64 {
                    let t = t0 + s;
                    // A day's rhythm, effort, and now and then a spike.
                    let x = (t as f64 / 86_400.0 * std::f64::consts::TAU).sin() * 25.0
                        + ((t * 7919) % 23) as f64
                        + if t % 9_973 == 0 { 60.0 } else { 0.0 };
                    body.push_str(&format!(
                        "heart_rate,device=strap,rider=alice,source=lineproto bpm={} {t}\n",
                        (95.0 + x).round()
                    ));
                }
                let response = http.post(url).body(body).send().await.expect("InfluxDB answers");
                assert!(
                    response.status().is_success(),
                    "write refused: {}",
                    response.text().await.unwrap_or_default()
                );
                let n = written.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 500 == 0 || n == total {
                    eprint!("\r  written {n}/{total} hours");
                }
            }
        })
        .await;
    eprintln!();
}

#[tokio::main]
async fn main() {
    let days = flag("--days", 365) as i64;
    let requests = flag("--requests", 200) as usize;
    let cache_snapshot =
        text_flag("--influx-cache-snapshot").unwrap_or_else(|| INFLUX_CACHE_SNAPSHOT.to_owned());
    let influx = InfluxServer::start_with_cache_snapshot(&cache_snapshot).await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let start = (now - days * DAY).div_euclid(HOUR) * HOUR;
    let end = start + days * DAY;
    eprintln!("Writing {days} days of 1 Hz heart rate ({} points)…", days * 86_400);
    let started = Instant::now();
    fill(&influx, start, days).await;
    let fill_time = started.elapsed();

    let dir = tempfile::tempdir().expect("tempdir");
    let riders = dir.path().join("riders.toml");
    std::fs::write(&riders, RidersToml::new().rider("alice", "Alice", true).build()).expect("riders");
    let service = Service::start(
        env!("CARGO_BIN_EXE_query").into(),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--influx-url={}", influx.url),
            format!("--riders={}", riders.display()),
            // Every request here is the same: measure InfluxDB's read each time, not a shared
            // answer.
            "--read-cache-ttl=0s".into(),
        ],
    )
    .await
    .expect("the query service starts");
    eprintln!("Rolling up…");
    let started = Instant::now();
    loop {
        let rows = influx
            .rows("velometry", "SELECT last(\"watermark_ns\") FROM \"velometry_rollup_state\"")
            .await
            .unwrap_or_default();
        let watermark =
            rows.first().and_then(|r| r.get("last")).and_then(serde_json::Value::as_i64).unwrap_or(0);
        if watermark >= end - 5 * 60 * SECOND {
            break;
        }
        eprint!("\r  watermark at day {:.0} of {days}", (watermark - start).max(0) as f64 / DAY as f64);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rollup_time = started.elapsed();
    eprintln!();
    // A year written at once leaves InfluxDB compacting for minutes; measuring meanwhile
    // would measure the compactions.
    eprintln!("Waiting for InfluxDB to finish compacting…");
    loop {
        let before = cpu_time(influx.pid());
        tokio::time::sleep(Duration::from_secs(5)).await;
        if cpu_time(influx.pid()) - before < Duration::from_millis(250) {
            break;
        }
    }
    eprintln!("Measuring…");

    let http = reqwest::Client::new();
    let series = |path: String| {
        let (http, url) = (&http, &service.url);
        async move {
            let body: serde_json::Value =
                http.get(format!("{url}{path}")).send().await.expect("answers").json().await.expect("JSON");
            assert!(body["points"].as_array().is_some_and(|p| !p.is_empty()), "{body}");
            body
        }
    };
    // An hour of raw data first, each request beside InfluxDB's own read of the same hour,
    // alternately, so that both meet the same InfluxDB (the raw year below leaves its heap
    // large for a while).
    let hour_from = end - 2 * HOUR;
    let hour = format!(
        "/v1/riders/alice/series/heart_rate?from={}&to={}&max_points=1000",
        hour_from / 1_000_000,
        (hour_from + HOUR) / 1_000_000
    );
    let hour_probe = series(hour.clone()).await;
    let hour_raw_query = format!(
        "SELECT \"bpm\" FROM \"heart_rate\" WHERE \"rider\" = 'alice' AND time >= {hour_from} AND time < {}",
        hour_from + HOUR
    );
    let (mut one_hour, mut hour_raw) = (Vec::new(), Vec::new());
    for _ in 0..requests {
        let started = Instant::now();
        series(hour.clone()).await;
        one_hour.push(started.elapsed());
        let started = Instant::now();
        influx.query("velometry", &hour_raw_query).await.expect("InfluxDB answers");
        hour_raw.push(started.elapsed());
    }
    one_hour.sort();
    hour_raw.sort();

    let year = format!(
        "/v1/riders/alice/series/heart_rate?from={}&to={}&max_points=1000",
        start / 1_000_000,
        end / 1_000_000
    );
    let probe = series(year.clone()).await;
    let tier = probe["tier"].as_str().unwrap_or("?").to_owned();
    let bucket_s = probe["bucket_ms"].as_i64().unwrap_or(0) / 1000;
    let points = probe["points"].as_array().map_or(0, Vec::len);
    let cpu_before = cpu_time(service.pid());
    let ours = timed(requests, || async {
        series(year.clone()).await;
    })
    .await;
    let cpu_per_request = (cpu_time(service.pid()) - cpu_before).as_secs_f64() * 1e3 / requests as f64;

    // The same buckets straight from the raw points, as a dashboard without rollups would.
    let raw_query = format!(
        "SELECT first(\"bpm\"), min(\"bpm\"), max(\"bpm\"), last(\"bpm\") FROM \"heart_rate\" \
         WHERE \"rider\" = 'alice' AND time >= {start} AND time < {end} GROUP BY time({bucket_s}s)"
    );
    let raw_requests = (requests / 20).max(5);
    let raw = timed(raw_requests, || async {
        let body = influx.query("velometry", &raw_query).await.expect("InfluxDB answers");
        assert!(body.pointer("/results/0/series/0/values").is_some(), "{body}");
    })
    .await;

    println!(
        "{days} days of 1 Hz heart rate ({} points); written in {:.0} s, rolled up in {:.0} s; \
         InfluxDB's cache-snapshot-memory-size {cache_snapshot}",
        days * 86_400,
        fill_time.as_secs_f64(),
        rollup_time.as_secs_f64()
    );
    println!("| request | runs | p50 ms | p95 ms |");
    println!("|---|---|---|---|");
    println!(
        "| query service: {days} days at 1,000 points (M4, tier {tier}, {bucket_s} s buckets, {points} points) | {requests} | {:.1} | {:.1} |",
        percentile(&ours, 0.5),
        percentile(&ours, 0.95)
    );
    println!(
        "| InfluxDB raw: first/min/max/last GROUP BY time({bucket_s}s) over the same range | {raw_requests} | {:.1} | {:.1} |",
        percentile(&raw, 0.5),
        percentile(&raw, 0.95)
    );
    println!(
        "| query service: 1 hour at 1,000 points (tier {}, {} points) | {requests} | {:.1} | {:.1} |",
        hour_probe["tier"].as_str().unwrap_or("?"),
        hour_probe["points"].as_array().map_or(0, Vec::len),
        percentile(&one_hour, 0.5),
        percentile(&one_hour, 0.95)
    );
    println!(
        "| InfluxDB alone: SELECT of that hour's 3,600 raw points | {requests} | {:.1} | {:.1} |",
        percentile(&hour_raw, 0.5),
        percentile(&hour_raw, 0.95)
    );
    println!("ratio (raw p95 / ours p95): {:.0}×", percentile(&raw, 0.95) / percentile(&ours, 0.95));
    println!("query service CPU per {days}-day request: {cpu_per_request:.1} ms (the rest is InfluxDB reading the tier)");
}
