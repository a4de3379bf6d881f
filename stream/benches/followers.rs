//! Thousands of WebSocket followers on one hub, riders sending gps and heart_rate at 1 Hz
//! through the real collector: end-to-end latency (collector acknowledgement to client
//! receipt), readings delivered per second, hub memory per connection; then more followers
//! in steps until p99 passes 250 ms (the ceiling).
//!
//! `cargo bench -p velometry-stream --bench followers -- [--followers N] [--riders R] [--seconds S] [--ceiling]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use velometry_core::testkit::{workspace_binary, InfluxServer, NatsServer, RidersToml, Service};

fn token(i: u64) -> String {
    format!("velo_bench_rider_{i}")
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

struct Shared {
    latencies_ms: Mutex<Vec<u32>>,
    delivered: AtomicU64,
    recording: AtomicBool,
}

async fn follow(url: String, rider: u64, shared: Arc<Shared>, ready: Arc<AtomicU64>) {
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async_with_config(url, Some(config), false).await
    else {
        return;
    };
    let subscribe = json!({"op": "subscribe", "riders": [format!("r{rider}")]});
    if socket.send(Message::text(subscribe.to_string())).await.is_err() {
        return;
    }
    ready.fetch_add(1, Ordering::Relaxed);
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        if !text.contains(r#""type":"reading""#) {
            continue;
        }
        let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
        if frame["type"] != "reading" || !shared.recording.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(accepted) = frame["accepted_at_ms"].as_i64() {
            let now = velometry_core::time::now_nanos() / 1_000_000;
            shared.latencies_ms.lock().expect("lock").push((now - accepted).max(0) as u32);
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Round {
    followers: u64,
    p50: u32,
    p99: u32,
    max: u32,
    delivered_per_s: f64,
    bytes_per_connection: f64,
}

async fn round(
    hub: &Service,
    collector: &Service,
    riders: u64,
    followers: u64,
    seconds: u64,
    baseline: u64,
) -> Round {
    let shared = Arc::new(Shared {
        latencies_ms: Mutex::default(),
        delivered: AtomicU64::new(0),
        recording: AtomicBool::new(false),
    });
    let ready = Arc::new(AtomicU64::new(0));
    let url = format!("{}/v1/live", hub.url.replace("http://", "ws://"));
    let mut tasks = Vec::new();
    for i in 0..followers {
        tasks.push(tokio::spawn(follow(url.clone(), i % riders, shared.clone(), ready.clone())));
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::Relaxed) < followers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connected = ready.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = hub.pid().expect("hub pid");
    let bytes_per_connection = rss_bytes(pid).saturating_sub(baseline) as f64 / connected.max(1) as f64;

    // Riders: one request per rider per second (gps + heart_rate), spread over the second.
    shared.recording.store(true, Ordering::Relaxed);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut second = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let tick = Instant::now();
        for r in 0..riders {
            let body = json!([
                {"metric": "gps", "lat": 45.0 + (second as f64) * 1e-4, "lon": 7.0 + (r as f64) * 1e-3, "speed": 8.0},
                {"metric": "heart_rate", "bpm": 120 + (second + r) % 50},
            ]);
            let (http, url, token) = (http.clone(), format!("{}/v1/readings", collector.url), token(r));
            tokio::spawn(async move {
                let _ =
                    http.post(url).header("Authorization", format!("Token {token}")).json(&body).send().await;
            });
            tokio::time::sleep(Duration::from_micros(1_000_000 / riders)).await;
        }
        second += 1;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    shared.recording.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for task in tasks {
        task.abort();
    }
    let mut latencies = std::mem::take(&mut *shared.latencies_ms.lock().expect("lock"));
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Round {
        followers: connected,
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or(0),
        delivered_per_s: shared.delivered.load(Ordering::Relaxed) as f64 / elapsed,
        bytes_per_connection,
    }
}

#[tokio::main]
async fn main() {
    let followers = velometry_core::testkit::flag("--followers", 10_000);
    let riders = velometry_core::testkit::flag("--riders", 100);
    let seconds = velometry_core::testkit::flag("--seconds", 30);
    let ceiling = std::env::args().any(|a| a == "--ceiling");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = (0..riders).fold(RidersToml::new(), |f, i| {
        f.rider(&format!("r{i}"), &format!("Rider {i}"), true).device("d", &token(i))
    });
    let riders_file = dir.path().join("riders.toml");
    std::fs::write(&riders_file, file.build()).expect("riders file");
    let nats = NatsServer::start().await.expect("nats");
    let influx = InfluxServer::start().await.expect("influxd");
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--wal-dir={}", dir.path().join("wal").display()),
            format!("--influx-url={}", influx.url),
            format!("--nats-url={}", nats.url),
        ],
    )
    .await
    .expect("collector");
    let hub = Service::start(
        env!("CARGO_BIN_EXE_stream").into(),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--nats-url={}", nats.url),
            "--max-connections=60000".into(),
        ],
    )
    .await
    .expect("hub");
    hub.wait_ready().await.expect("the hub follows NATS");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = rss_bytes(hub.pid().expect("pid"));
    println!("{riders} riders at 1 Hz (gps + heart_rate through the collector), {seconds} s per round");
    let mut n = followers;
    loop {
        let r = round(&hub, &collector, riders, n, seconds, baseline).await;
        println!(
            "{:>6} followers: p50 {} ms, p99 {} ms, max {} ms, {:.0} readings delivered/s, hub {:.1} KB per connection",
            r.followers,
            r.p50,
            r.p99,
            r.max,
            r.delivered_per_s,
            r.bytes_per_connection / 1024.0
        );
        if !ceiling || r.p99 > 250 || r.followers < n {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        n += 5_000;
    }
}
