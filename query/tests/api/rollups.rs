//! The rollup job: it resumes from its persisted watermark after `kill -9`, and readings that
//! arrive late through the collector reach the tiers within a cycle.

use std::time::Duration;

use velometry_core::testkit::{workspace_binary, InfluxServer, Service, PATIENCE};

use crate::helpers::*;

const WINDOWS_1M: &str = "query_rollup_windows_written_total{tier=\"1m\"}";

async fn wait_for_cycles(service: &Service, at_least: f64) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if counter(service, "query_rollup_cycles_total{outcome=\"ok\"}").await >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("waited {} s for {at_least} rollup cycles: {}", PATIENCE.as_secs(), service.logs());
}

#[tokio::test]
async fn a_restarted_job_resumes_from_its_watermark() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let (lines, _) = heart_rate_walk("alice", now - 2 * DAY, 86_400, 3);
    for chunk in lines.lines().collect::<Vec<_>>().chunks(50_000) {
        influx.write(DB, &(chunk.join("\n") + "\n")).await.expect("write");
    }
    let riders = riders_file();
    let mut service = query(&influx, &riders, &[]).await;
    let watermark = wait_for_watermark(&influx, now - 5 * MINUTE).await;
    wait_for_cycles(&service, 1.0).await;
    let first_run = counter(&service, WINDOWS_1M).await;
    assert!(first_run >= 1_440.0, "a day of minutes rolled up: {first_run}");

    service.restart().await.expect("restarts after kill -9");
    wait_for_cycles(&service, 1.0).await;
    let second_run = counter(&service, WINDOWS_1M).await;
    assert!(
        second_run < 200.0,
        "after a restart only the last quarter hour (and its hour) is recomputed, not the day: {second_run} windows"
    );
    assert!(wait_for_watermark(&influx, watermark).await >= watermark);
}

#[tokio::test]
async fn late_readings_through_the_collector_reach_the_rollups_within_a_cycle() {
    let influx = InfluxServer::start().await.expect("influxd");
    let riders = riders_file();
    let wal = tempfile::tempdir().expect("tempdir");
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector binary"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders.path().join("riders.toml").display()),
            format!("--wal-dir={}", wal.path().display()),
            format!("--influx-url={}", influx.url),
        ],
    )
    .await
    .expect("the collector starts");
    let now = velometry_core::time::now_nanos();
    // Something recent so the job starts near now.
    influx.write(DB, &heart_rate("alice", "edge", now - MINUTE, 100.0)).await.expect("write");
    let service = query(&influx, &riders, &[]).await;
    wait_for_watermark(&influx, now - 2 * MINUTE).await;

    // Two hours of a ride from three days ago, synced by the device now.
    let start = now - 3 * DAY;
    let (_, raw) = heart_rate_walk("alice", start, 7_200, 11);
    let body: String = raw.iter().map(|(t, v)| format!("heart_rate bpm={v} {t}\n")).collect();
    let response = reqwest::Client::new()
        .post(format!("{}/write?precision=ns", collector.url))
        .header("Authorization", format!("Token {ALICE_EDGE}"))
        .body(body)
        .send()
        .await
        .expect("the collector answers");
    assert_eq!(response.status(), 204);

    let path = format!(
        "/v1/riders/alice/series/heart_rate?from={}&to={}&max_points=100",
        start / 1_000_000,
        (start + 2 * HOUR) / 1_000_000
    );
    let mut last = serde_json::Value::Null;
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        let (_, auto) = get(&service, &path, None).await;
        let (_, raw_answer) = get(&service, &format!("{path}&tier=raw"), None).await;
        if auto["tier"] == "1m" && !points(&raw_answer).is_empty() && points(&auto) == points(&raw_answer) {
            assert!(counter(&service, "query_rollup_late_ranges_total").await >= 1.0);
            return;
        }
        last = auto;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "waited {} s for the late readings to reach the 1m tier: {last}\n{}\n{}",
        PATIENCE.as_secs(),
        service.logs(),
        collector.logs()
    );
}
