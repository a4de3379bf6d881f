//! What strict clients rely on: the snapshot's trail decodes into 64-bit integer times, and a
//! message over `--max-message-bytes` closes the socket with 1009 and a reason naming the
//! limit, so a client can tell it from a shutdown and does not send it again.

use std::time::Duration;

use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use velometry_core::testkit::{wait_until, NatsServer, PATIENCE};

use crate::helpers::{hub, nats_client, publish, riders_file, Client};

/// A snapshot frame as a Go or Rust client declares it.
#[derive(Debug, serde::Deserialize)]
struct Snapshot {
    trail: Vec<(i64, f64, f64)>,
}

#[tokio::test]
async fn snapshot_trail_times_are_integer_milliseconds() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &[]).await;
    let publisher = nats_client(&nats).await;
    for i in 0..3 {
        let fields = json!({"lat": 45.01 + f64::from(i) * 0.001, "lon": 7.02});
        publish(&publisher, "alice", "gps", f64::from(30 - i), fields).await;
    }
    let mut client = Client::connect(&hub, "").await;
    // The hub takes the readings in from NATS in the background: subscribe again until the
    // snapshot holds all three positions.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let text = loop {
        client.send(json!({"op": "subscribe", "riders": ["alice"]})).await;
        let frame = client.next_text_of("snapshot").await;
        let trail: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
        if trail["trail"].as_array().map(Vec::len) == Some(3) {
            break frame;
        }
        assert!(tokio::time::Instant::now() < deadline, "the trail never held 3 positions: {frame}");
        client.send(json!({"op": "unsubscribe", "riders": ["alice"]})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let snapshot: Snapshot = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a client decoding times as i64 rejects {text}: {e}"));
    let now_ms = velometry_core::time::now_nanos() / 1_000_000;
    for (ms, lat, lon) in &snapshot.trail {
        assert!((now_ms - 60_000..=now_ms).contains(ms), "{ms} is not a recent epoch millisecond");
        assert!((45.0..45.1).contains(lat) && *lon == 7.02, "{text}");
    }
    assert!(snapshot.trail.windows(2).all(|w| w[0].0 < w[1].0), "oldest first: {text}");
}

#[tokio::test]
async fn a_message_over_the_limit_is_closed_with_1009_and_the_limit() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &["--max-message-bytes=1000"]).await;
    let mut client = Client::connect(&hub, "").await;
    client.next_of("hello").await;
    // Right at the limit is fine: an error frame for the unknown rider, the socket stays.
    let message = |bytes: usize| {
        let overhead = json!({"op": "subscribe", "riders": [""]}).to_string().len();
        json!({"op": "subscribe", "riders": ["z".repeat(bytes - overhead)]}).to_string()
    };
    let at_limit = message(1000);
    assert_eq!(at_limit.len(), 1000);
    client.socket.send(Message::text(at_limit)).await.expect("send");
    client.next_of("error").await;

    client.socket.send(Message::text(message(1001))).await.expect("send");
    let (code, reason) = client.close_frame().await;
    assert_eq!(code, 1009, "Message Too Big, not a normal close: {reason:?}");
    assert!(reason.contains("1000 bytes") && reason.contains("--max-message-bytes"), "{reason:?}");
    // The hub counts the close once it has sent it: the frame may come first.
    let closes = wait_until("the too-big close counted", Duration::from_millis(100), || async {
        let text = hub.metrics().await.map_err(|e| e.to_string())?;
        match velometry_core::testkit::metric(&text, "stream_closes_total{reason=\"too_big\"}") {
            n if n >= 1.0 => Ok(n),
            n => Err(format!("{n}")),
        }
    })
    .await
    .expect("the close counted");
    assert_eq!(closes, 1.0);
}
