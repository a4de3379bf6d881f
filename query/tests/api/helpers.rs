//! Starting the query service against a real InfluxDB holding test data, and asking it.

use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use velometry_core::testkit::{metric, InfluxServer, RidersToml, Service, PATIENCE};

pub const DB: &str = "velometry";
pub const COACH: &str = "velo_test_coach";
pub const STRANGER: &str = "velo_test_stranger";
pub const ALICE_EDGE: &str = "velo_test_alice_edge";
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// alice is public (max_hr 190), bob private (seen by the coach only).
pub fn riders_file() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = RidersToml::new()
        .rider("alice", "Alice", true)
        .max_hr(190)
        .device("edge", ALICE_EDGE)
        .rider("bob", "Bob", false)
        .viewer("coach", COACH, &["bob"])
        .viewer("stranger", STRANGER, &["alice"])
        .build();
    std::fs::write(dir.path().join("riders.toml"), text).expect("riders file");
    dir
}

/// A query service on `influx`, rolling up every second.
pub async fn query(influx: &InfluxServer, riders: &TempDir, extra: &[&str]) -> Service {
    let mut args = vec![
        "serve".to_owned(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-listen=127.0.0.1:0".into(),
        format!("--influx-url={}", influx.url),
        format!("--riders={}", riders.path().join("riders.toml").display()),
        "--rollup-interval=1s".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Service::start(env!("CARGO_BIN_EXE_query").into(), args).await.expect("the query service starts")
}

/// A GET answered with JSON: status and body.
pub async fn get(service: &Service, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, _, body) = get_raw(service, path, token).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// A GET: status, headers and body text.
pub async fn get_raw(
    service: &Service,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", service.url));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// One line of heart rate as the collector stores it.
pub fn heart_rate(rider: &str, device: &str, t: i64, bpm: f64) -> String {
    format!("heart_rate,device={device},rider={rider},source=lineproto bpm={bpm} {t}\n")
}

/// `n` seconds of 1 Hz heart rate from `start`: a random walk with spikes, runs of equal
/// values and a few gaps, deterministic.
pub fn heart_rate_walk(rider: &str, start: i64, n: usize, seed: u64) -> (String, Vec<(i64, f64)>) {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut v: f64 = 120.0;
    let mut lines = String::new();
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let r = next();
        if r % 500 == 0 {
            continue; // a dropped sample
        }
        v = (v + ((r >> 8) % 7) as f64 - 3.0).clamp(60.0, 200.0);
        let bpm = match r % 997 {
            0 => 240.0,
            1 => 30.0,
            _ => v,
        };
        let t = start + i as i64 * SECOND;
        lines.push_str(&heart_rate(rider, "edge", t, bpm));
        points.push((t, bpm));
    }
    (lines, points)
}

/// Waits until the rollup watermark (as persisted in InfluxDB) reaches `at_least`.
pub async fn wait_for_watermark(influx: &InfluxServer, at_least: i64) -> i64 {
    let mut last = 0;
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        let rows = influx
            .rows(DB, "SELECT last(\"watermark_ns\") FROM \"velometry_rollup_state\"")
            .await
            .unwrap_or_default();
        last = rows.first().and_then(|r| r.get("last")).and_then(Value::as_i64).unwrap_or(0);
        if last >= at_least {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "waited {} s for the rollup watermark to reach {at_least}; it stayed at {last}",
        PATIENCE.as_secs()
    );
}

/// A counter of the service's metrics.
pub async fn counter(service: &Service, name_and_labels: &str) -> f64 {
    metric(&service.metrics().await.expect("metrics"), name_and_labels)
}

/// The `points` of a series answer.
pub fn points(body: &Value) -> Vec<(i64, f64)> {
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {body}"))
        .iter()
        .map(|p| (p[0].as_i64().expect("time"), p[1].as_f64().expect("value")))
        .collect()
}
