//! Live publishing on NATS after a reading is durable.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use velometry_core::testkit::{InfluxServer, NatsServer, PATIENCE};

use crate::helpers::{metric, ms_ago, Collector, Env, ALICE_PHONE};

#[tokio::test]
async fn durable_gps_and_heart_rate_are_published_on_the_riders_subject() {
    let influx = InfluxServer::start().await.expect("influxd");
    let nats = NatsServer::start().await.expect("nats-server");
    let collector = Collector::start(&influx.url, &[&format!("--nats-url={}", nats.url)]).await;
    let client = async_nats::connect(&nats.url).await.expect("connect");
    let mut live = client.subscribe("velometry.live.alice").await.expect("subscribe");
    client.flush().await.expect("flush");
    // The collector connects to NATS in the background; wait until a publish gets through.
    let http = reqwest::Client::new();
    let mut message = None;
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        let body = json!([
            {"metric": "gps", "time": ms_ago(0), "lat": 45.1, "lon": 7.6, "speed": 8.3},
            {"metric": "power", "time": ms_ago(0), "watts": 250},
            {"metric": "temperature", "time": ms_ago(0), "celsius": 21.5},
            {"metric": "heart_rate", "time": "2011-06-01T10:00:00Z", "bpm": 130},
        ]);
        let resp = http
            .post(format!("{}/v1/readings", collector.url))
            .header("Authorization", format!("Token {ALICE_PHONE}"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200);
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), live.next()).await {
            message = Some(m);
            break;
        }
    }
    let message = message.unwrap_or_else(|| {
        panic!("waited {} s for a live message: {}", PATIENCE.as_secs(), collector.logs())
    });
    let reading: serde_json::Value = serde_json::from_slice(&message.payload).expect("JSON");
    assert_eq!(reading["rider"], json!("alice"));
    assert_eq!(reading["device"], json!("phone"));
    assert_eq!(reading["metric"], json!("gps"));
    assert_eq!((reading["lat"].clone(), reading["speed"].clone()), (json!(45.1), json!(8.3)));
    assert!(reading["accepted_at_ms"].as_i64().is_some() && reading["time"].as_str().is_some());
    // Power is live (the spectator page shows it as it comes); a temperature is not, and a
    // 2011 heart rate is history: neither is published.
    let mut power = false;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let wait = if power { Duration::from_millis(500) } else { deadline - tokio::time::Instant::now() };
        let Ok(Some(m)) = tokio::time::timeout(wait, live.next()).await else { break };
        let r: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
        assert!(
            r["metric"] == json!("gps") || r["metric"] == json!("power"),
            "only fresh gps and power follow: {r}"
        );
        power |= r["metric"] == json!("power") && r["watts"] == json!(250.0);
    }
    assert!(power, "a fresh power reading is published live");
    let metrics = collector.metrics().await;
    assert!(metric(&metrics, "collector_live_published_total") >= 1.0, "{metrics}");
}

#[tokio::test]
async fn nats_down_never_blocks_or_fails_ingest() {
    let port = velometry_core::testkit::free_port().expect("port");
    let env = Env::start(&[&format!("--nats-url=nats://127.0.0.1:{port}")]).await;
    for i in 0..20 {
        let resp = env
            .post_json(ALICE_PHONE, &json!([{"metric": "heart_rate", "time": ms_ago(i), "bpm": 100 + i}]))
            .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(env.wait_rows("SELECT bpm FROM heart_rate", 20).await.len(), 20);
}
