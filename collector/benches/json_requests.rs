//! Single-reading JSON requests against the collector (durable path, InfluxDB running),
//! side by side with a bare axum handler measured in the same run, under `wrk`.
//!
//! `cargo bench -p velometry-collector --bench json_requests -- [--seconds S] [--connections C]`
//!
//! Needs `wrk` (Debian's package). The load comes from 500 device tokens in turn, as from
//! a fleet of phones; every request is one heart-rate reading, fsynced before the answer.

#[path = "common.rs"]
mod common;

use std::process::Stdio;
use std::time::Duration;

use axum::routing::post;
use velometry_core::testkit::InfluxServer;

const DEVICES: usize = 500;
const BODY: &str = r#"[{"metric":"heart_rate","bpm":142}]"#;

struct Run {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn latency_ms(text: &str, label: &str) -> f64 {
    let value = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("0ms");
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

async fn wrk(url: &str, script: &std::path::Path, seconds: u64, connections: u64) -> Run {
    let out = tokio::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let number_after = |label: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(label))
            .map(|l| l.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum())
            .unwrap_or(0)
    };
    let requests_per_s = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Run {
        requests_per_s,
        p50_ms: latency_ms(&text, "50%"),
        p99_ms: latency_ms(&text, "99%"),
        errors: number_after("Non-2xx") + number_after("Socket errors"),
    }
}

fn script(dir: &std::path::Path) -> std::path::PathBuf {
    let tokens: Vec<String> = (0..DEVICES).map(|i| format!("\"{}\"", common::token(i))).collect();
    let lua = format!(
        r#"local tokens = {{{}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/readings", {{["Content-Type"] = "application/json", ["Authorization"] = "Token " .. tokens[(i % #tokens) + 1]}}, '{BODY}')
end
"#,
        tokens.join(",")
    );
    let path = dir.join("post.lua");
    std::fs::write(&path, lua).expect("script");
    path
}

fn print(name: &str, run: &Run) {
    println!(
        "{name:>10}: {:>8.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        run.requests_per_s, run.p50_ms, run.p99_ms, run.errors
    );
}

#[tokio::main]
async fn main() {
    let seconds = velometry_core::testkit::flag("--seconds", 15);
    let connections = velometry_core::testkit::flag("--connections", 32);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = script(dir.path());
    common::write_riders(&dir.path().join("riders.toml"), DEVICES);

    let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let bare_url = format!("http://{}", bare.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/v1/readings",
        post(|_body: axum::body::Bytes| async { axum::Json(serde_json::json!({"accepted": 1})) }),
    );
    tokio::spawn(async move { axum::serve(bare, app).await });

    let influx = InfluxServer::start().await.expect("influxd");
    let collector = common::start_collector(dir.path(), &influx.url, &[]).await;
    let pid = collector.pid().expect("pid");
    let ingest = collector.url.clone();

    println!("wrk: 1 thread, {connections} connections, {seconds} s per run, {DEVICES} device tokens");
    wrk(&ingest, &script, 3, connections).await; // warm-up
    wrk(&bare_url, &script, 3, connections).await;
    for round in 0..2 {
        let (first, second) =
            if round == 0 { ("bare axum", "collector") } else { ("collector", "bare axum") };
        for name in [first, second] {
            let url = if name == "collector" { &ingest } else { &bare_url };
            let run = wrk(url, &script, seconds, connections).await;
            print(name, &run);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = common::metric(&collector, "collector_readings_accepted_total").await;
    let written = common::metric(&collector, "collector_sink_lines_written_total").await;
    println!(
        "collector peak RSS {:.1} MB; readings accepted {accepted:.0}, lines in InfluxDB {written:.0}",
        common::peak_rss(pid) as f64 / 1e6
    );
}
