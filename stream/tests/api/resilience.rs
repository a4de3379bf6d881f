//! A stalled follower never slows the others, and a restarted hub knows the latest at once.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpSocket;
use velometry_core::testkit::{metric, NatsServer, PATIENCE};

use crate::helpers::{hub, nats_client, publish, riders_file, Client};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_stalled_client_neither_delays_the_others_nor_stays_connected() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    // A stalled client may stay behind for 10 s: had the hub waited on it, the healthy one
    // would lag by about as long.
    let hub = hub(&nats, &riders, &["--queue=16", "--slow-after=10s"]).await;
    let publisher = nats_client(&nats).await;

    // The stalled client: a tiny receive buffer, and it never reads after subscribing.
    let addr = hub.url.trim_start_matches("http://").parse().expect("addr");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket.connect(addr).await.expect("connect");
    let (stalled, _) = tokio_tungstenite::client_async(
        format!("{}/v1/live", hub.url.replace("http://", "ws://")),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("handshake");
    let mut stalled = Client { socket: stalled };
    stalled.subscribe(&["alice"]).await;

    let mut healthy = Client::connect(&hub, "").await;
    healthy.subscribe(&["alice"]).await;
    // The healthy client reads everything and records how long each reading took.
    let reader = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let mut count = 0u32;
        while let Some(frame) = healthy.next(15 * SECOND).await {
            if frame["type"] != "reading" {
                continue;
            }
            let sent = frame["sent_at_ms"].as_i64().expect("sent_at_ms");
            let lag = crate::helpers::chrono_like_now_ms() - sent;
            worst = worst.max(Duration::from_millis(lag.max(0) as u64));
            count += 1;
        }
        (worst, count)
    });

    // A ride's worth of readings, until the stalled client's socket is full and it is cut off.
    let pad = "x".repeat(16 * 1024);
    let started = Instant::now();
    let mut closed = false;
    let mut i = 0;
    while started.elapsed() < PATIENCE {
        for _ in 0..20 {
            let now = crate::helpers::chrono_like_now_ms();
            publish(
                &publisher,
                "alice",
                "gps",
                0.0,
                json!({"lat": 45.0, "lon": 7.0 + f64::from(i) * 1e-6, "sent_at_ms": now, "pad": pad}),
            )
            .await;
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = hub.metrics().await.expect("metrics");
        if metric(&text, "stream_closes_total{reason=\"slow\"}") >= 1.0 {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "waited {} s for the stalled client to be closed: {}",
        PATIENCE.as_secs(),
        hub.metrics().await.unwrap_or_default()
    );
    let _ = stalled.next(SECOND).await;
    // A little more live data after the cut, then let the healthy reader finish.
    for _ in 0..10 {
        publish(
            &publisher,
            "alice",
            "gps",
            0.0,
            json!({"lat": 45.0, "lon": 7.5, "sent_at_ms": crate::helpers::chrono_like_now_ms()}),
        )
        .await;
    }
    let (worst, count) = reader.await.expect("reader");
    assert!(count > 100, "the healthy follower received {count} readings");
    // Half the time the stalled one was allowed: room for a busy machine's scheduling, far
    // below what waiting on the stalled client would cost.
    assert!(worst < 5 * SECOND, "the healthy follower waited up to {worst:?} behind a stalled one");
}

#[tokio::test]
async fn a_restarted_hub_serves_the_latest_at_once_and_carries_on() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let mut hub = hub(&nats, &riders, &[]).await;
    let publisher = nats_client(&nats).await;
    let mut client = Client::connect(&hub, "").await;
    client.subscribe(&["alice"]).await;
    publish(&publisher, "alice", "heart_rate", 1.0, json!({"bpm": 133})).await;
    assert_eq!(client.next_of("reading").await["bpm"].as_f64(), Some(133.0));

    hub.restart().await.expect("the hub restarts");
    let closed = client.next(PATIENCE).await;
    assert!(closed.is_none() || closed.as_ref().is_some_and(|f| f["type"] == "closed"), "{closed:?}");

    // As the page does: reconnect and subscribe again.
    let mut snapshot = json!(null);
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let mut again = Client::connect(&hub, "").await;
        again.send(json!({"op": "subscribe", "riders": ["alice"]})).await;
        snapshot = again.next_of("snapshot").await;
        if !snapshot["latest"].as_array().is_none_or(Vec::is_empty) {
            client = again;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(snapshot["latest"][0]["bpm"].as_f64(), Some(133.0), "{snapshot}\n{}", hub.logs());
    publish(&publisher, "alice", "heart_rate", 0.0, json!({"bpm": 141})).await;
    assert_eq!(client.next_of("reading").await["bpm"].as_f64(), Some(141.0));
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &["--idle-timeout=1s", "--ping=30s"]).await;
    let mut client = Client::connect(&hub, "").await;
    // Say nothing (not even a pong: no ping comes before the timeout) until the hub closes.
    let mut closed = None;
    while let Some(frame) = client.next(PATIENCE).await {
        if frame["type"] == "closed" {
            closed = Some(frame);
            break;
        }
    }
    assert_eq!(closed.expect("a close frame")["code"], json!(4001));
    let text = hub.metrics().await.expect("metrics");
    assert_eq!(metric(&text, "stream_closes_total{reason=\"idle\"}"), 1.0, "{text}");
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_connection() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &["--max-connections=2"]).await;
    for round in 0..3 {
        let mut polite = Client::connect(&hub, "").await;
        polite.next(PATIENCE).await.expect("hello");
        polite.socket.send(Message::Close(None)).await.expect("close");
        // The hub completes the closing handshake: the client's stream ends.
        let ended = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(message)) = polite.socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "round {round}: the connection ends after the client's Close");
        // Another simply drops its TCP connection.
        let rude = Client::connect(&hub, "").await;
        drop(rude);
    }
    let mut text = String::new();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        text = hub.metrics().await.expect("metrics");
        if metric(&text, "stream_connections ") == 0.0
            && metric(&text, "stream_closes_total{reason=\"client\"}") >= 6.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&text, "stream_connections "), 0.0, "{text}");
    assert_eq!(metric(&text, "stream_closes_total{reason=\"client\"}"), 6.0, "{text}");
    // Six clients came and went through a cap of two: the slots were freed.
    let mut last = Client::connect(&hub, "").await;
    assert_eq!(last.next(PATIENCE).await.expect("hello")["type"], "hello");
}
