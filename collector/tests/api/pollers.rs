//! Scheduled pollers against a local HTTP server that answers like the provider: what lands
//! in InfluxDB, what the state remembers across a restart, and what the metrics say about
//! a 429 and a 500.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::helpers::*;

/// A blood-pressure service: answers the measurements newer than `since`; the scripted
/// statuses come first, one per request.
#[derive(Clone, Default)]
struct Cuff {
    seen: Arc<Mutex<Vec<String>>>,
    /// When each request came, and when the 429 was answered.
    at: Arc<Mutex<Vec<std::time::Instant>>>,
    limited_at: Arc<Mutex<Option<std::time::Instant>>>,
    script: Arc<Mutex<Vec<u16>>>,
    measurements: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn measurements(
    State(cuff): State<Cuff>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let since = q.get("since").cloned().unwrap_or_default();
    cuff.seen.lock().expect("lock").push(since.clone());
    cuff.at.lock().expect("lock").push(std::time::Instant::now());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer cuff-secret") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let scripted = {
        let mut script = cuff.script.lock().expect("lock");
        (!script.is_empty()).then(|| script.remove(0))
    };
    match scripted {
        Some(429) => {
            *cuff.limited_at.lock().expect("lock") = Some(std::time::Instant::now());
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "2")]).into_response();
        }
        Some(code) => return StatusCode::from_u16(code).expect("status").into_response(),
        None => {}
    }
    let since = velometry_core::time::parse_rfc3339(&since).unwrap_or(0);
    let items: Vec<_> = cuff
        .measurements
        .lock()
        .expect("lock")
        .iter()
        .filter(|m| {
            m["taken_at"].as_str().and_then(|t| velometry_core::time::parse_rfc3339(t).ok()).unwrap_or(0)
                > since
        })
        .cloned()
        .collect();
    axum::Json(json!({ "measurements": items })).into_response()
}

fn measurement(minutes_ago: i64, sys: u32, dia: u32) -> serde_json::Value {
    let t = velometry_core::time::now_nanos() - minutes_ago * 60_000_000_000;
    json!({ "taken_at": velometry_core::time::format_rfc3339(t), "sys": sys, "dia": dia, "pulse": "64" })
}

#[tokio::test]
async fn a_json_api_is_polled_incrementally_and_survives_429_500_and_a_restart() {
    let cuff = Cuff::default();
    cuff.measurements.lock().expect("lock").extend([measurement(30, 121, 79), measurement(20, 118, 77)]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1/measurements?since={{since}}", listener.local_addr().expect("addr"));
    let app = Router::new().route("/v1/measurements", get(measurements)).with_state(cuff.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sources = format!(
        r#"
[[source]]
name = "cuff"
kind = "json"
rider = "alice"
every = "1s"
url = "{url}"
headers = {{ Authorization = "Bearer ${{VELOMETRY_TEST_CUFF_TOKEN}}" }}
items = "/measurements"
metric = "blood_pressure"
time = "/taken_at"
fields = {{ systolic = "/sys", diastolic = "/dia", pulse = "/pulse" }}
"#
    );
    // The secret comes from the environment, never from the file.
    std::env::set_var("VELOMETRY_TEST_CUFF_TOKEN", "cuff-secret");
    let mut env = Env::with_sources(&sources).await;

    let q = "SELECT \"systolic\", \"diastolic\", \"pulse\" FROM \"blood_pressure\" WHERE \"device\" = 'cuff' AND \"source\" = 'json_api'";
    let rows = env.wait_rows(q, 2).await;
    assert_eq!(rows[0]["systolic"], 121.0);
    assert_eq!(rows[1]["pulse"], 64.0, "a number written as a string");

    // A 429 postpones the next run by its Retry-After; a 500 is counted and retried.
    cuff.script.lock().expect("lock").extend([429, 500]);
    let failed = eventually(|| async {
        let text = env.collector.metrics().await;
        metric(&text, "collector_source_failures_total{source=\"cuff\",reason=\"rate_limited\"}") >= 1.0
            && metric(&text, "collector_source_failures_total{source=\"cuff\",reason=\"server\"}") >= 1.0
    })
    .await;
    assert!(failed, "{}", env.collector.metrics().await);
    let limited = cuff.limited_at.lock().expect("lock").expect("a 429 was answered");
    let next = cuff.at.lock().expect("lock").iter().copied().find(|t| *t > limited).expect("a later run");
    assert!(
        next - limited >= Duration::from_millis(1_900),
        "the run after a 429 waited {:?}, not Retry-After: 2",
        next - limited
    );
    cuff.measurements.lock().expect("lock").push(measurement(5, 131, 85));
    env.wait_rows(q, 3).await;

    // Restarted, it asks only for what is newer than what it stored.
    env.collector.restart().await;
    cuff.measurements.lock().expect("lock").push(measurement(1, 125, 80));
    env.wait_rows(q, 4).await;
    let seen = cuff.seen.lock().expect("lock").clone();
    assert_eq!(seen[0], "", "the first run asks for everything");
    assert!(
        seen.iter().skip(1).all(|s| !s.is_empty()),
        "every later run, restarted or not, says since: {seen:?}"
    );
    let text = env.collector.metrics().await;
    assert!(metric(&text, "collector_source_readings_total{source=\"cuff\"}") >= 1.0, "{text}");
    assert!(metric(&text, "collector_source_last_success_timestamp_seconds{source=\"cuff\"}") > 1.7e9);
    let count = env.influx.count(DB, "blood_pressure", "systolic").await.expect("count");
    assert_eq!(count, 4, "each measurement once");
}

#[tokio::test]
async fn a_bad_sources_file_stops_the_collector_with_what_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("rider = \"carol\"\nevery = \"1m\"", "rider \"carol\" is not in the riders file"),
        ("rider = \"alice\"", "give exactly one of every"),
        ("rider = \"alice\"\ncron = \"every day\"", "cron \"every day\""),
        (
            "rider = \"alice\"\nevery = \"1m\"\nheaders = { A = \"${VELOMETRY_TEST_UNSET}\" }",
            "VELOMETRY_TEST_UNSET is not set",
        ),
    ];
    for (extra, message) in cases {
        let path = dir.path().join("sources.toml");
        std::fs::write(
            &path,
            format!(
                "[[source]]\nname = \"cuff\"\nkind = \"json\"\nurl = \"http://127.0.0.1:9/\"\nmetric = \"blood_pressure\"\n\
                 time = \"/t\"\nfields = {{ systolic = \"/s\" }}\n{extra}\n"
            ),
        )
        .expect("write");
        let riders = dir.path().join("riders.toml");
        std::fs::write(&riders, riders_toml()).expect("riders");
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_collector"))
            .args([
                "serve".to_owned(),
                "--listen=127.0.0.1:0".into(),
                "--metrics-listen=127.0.0.1:0".into(),
                format!("--riders={}", riders.display()),
                format!("--wal-dir={}", dir.path().join("wal").display()),
                format!("--sources={}", path.display()),
            ])
            .output()
            .await
            .expect("runs");
        assert!(!output.status.success(), "{extra}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message) && stderr.contains("sources.toml"), "{extra}: {stderr}");
    }
}
