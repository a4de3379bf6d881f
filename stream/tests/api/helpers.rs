//! Starting hubs against a real NATS, publishing readings as the collector does, and
//! WebSocket clients that read the protocol.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use velometry_core::testkit::{workspace_binary, NatsServer, RidersToml, Service, PATIENCE};

pub const COACH: &str = "velo_test_coach";
pub const ALICE_PHONE: &str = "velo_test_alice_phone";

pub fn riders_toml() -> String {
    RidersToml::new()
        .rider("alice", "Alice", true)
        .device("phone", ALICE_PHONE)
        .rider("bob", "Bob", false)
        .viewer("coach", COACH, &["bob"])
        .build()
}

/// A riders file in a temporary folder.
pub fn riders_file() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("riders.toml"), riders_toml()).expect("riders file");
    dir
}

/// Starts the real collector, publishing on `nats`, with its WAL in `wal`.
pub async fn collector(nats: &NatsServer, riders: &TempDir, wal: &TempDir, influx_url: &str) -> Service {
    Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector binary"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders.path().join("riders.toml").display()),
            format!("--wal-dir={}", wal.path().display()),
            format!("--influx-url={influx_url}"),
            format!("--nats-url={}", nats.url),
        ],
    )
    .await
    .expect("the collector starts")
}

/// Starts a hub on `nats` with extra flags and waits until it follows NATS.
pub async fn hub(nats: &NatsServer, riders: &TempDir, extra: &[&str]) -> Service {
    let hub = Service::start(env!("CARGO_BIN_EXE_stream").into(), hub_args(nats, riders, extra))
        .await
        .expect("the hub starts");
    hub.wait_ready().await.expect("the hub follows NATS");
    hub
}

/// The flags of a hub on `nats`, and `extra`.
pub fn hub_args(nats: &NatsServer, riders: &TempDir, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-listen=127.0.0.1:0".into(),
        format!("--nats-url={}", nats.url),
        format!("--riders={}", riders.path().join("riders.toml").display()),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Publishes a reading on NATS exactly as the collector does after making it durable.
pub async fn publish(nats: &async_nats::Client, rider: &str, metric: &str, seconds_ago: f64, fields: Value) {
    let now = chrono_like_now_ms();
    let time_ms = now - (seconds_ago * 1000.0) as i64;
    let mut message = json!({
        "rider": rider, "device": "phone", "metric": metric,
        "time": velometry_core::time::format_rfc3339(time_ms * 1_000_000),
        "accepted_at_ms": now,
    });
    if let (Some(m), Some(f)) = (message.as_object_mut(), fields.as_object()) {
        m.extend(f.clone());
    }
    nats.publish(format!("velometry.live.{rider}"), message.to_string().into()).await.expect("publish");
    nats.flush().await.expect("flush");
}

pub fn chrono_like_now_ms() -> i64 {
    velometry_core::time::now_nanos() / 1_000_000
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client of the hub.
pub struct Client {
    pub socket: Socket,
}

impl Client {
    pub async fn connect(hub: &Service, query: &str) -> Client {
        let url = format!("{}/v1/live{query}", hub.url.replace("http://", "ws://"));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
        Client { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.expect("send");
    }

    /// The next JSON frame within `within`, skipping pings; `None` when none came (for the
    /// tests that check nothing comes, or poll while they send).
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"))
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))}))
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// The next frame of `kind`, skipping others; fails the test after [`PATIENCE`].
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(frame) if frame["type"] == kind => return frame,
                Some(_) => continue,
                None => panic!("waited {} s for a {kind} frame", PATIENCE.as_secs()),
            }
        }
    }

    /// The text of the next frame of `kind`, skipping others: what a client decodes with
    /// types of its own. Fails the test after [`PATIENCE`].
    pub async fn next_text_of(&mut self, kind: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    if frame["type"] == kind {
                        return text.to_string();
                    }
                }
                Ok(Some(Ok(_))) => continue,
                other => panic!("waited {} s for a {kind} frame: {other:?}", PATIENCE.as_secs()),
            }
        }
    }

    /// The code and reason of the Close frame the hub sends, skipping other frames. Fails the
    /// test after [`PATIENCE`].
    pub async fn close_frame(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return (u16::from(frame.code), frame.reason.to_string())
                }
                Ok(Some(Ok(Message::Close(None)))) => panic!("a Close frame without a code"),
                Ok(Some(Ok(_))) => continue,
                other => panic!("waited {} s for a Close frame: {other:?}", PATIENCE.as_secs()),
            }
        }
    }

    pub async fn subscribe(&mut self, riders: &[&str]) -> Value {
        self.send(json!({"op": "subscribe", "riders": riders})).await;
        self.next_of("subscribed").await
    }
}

pub async fn nats_client(nats: &NatsServer) -> async_nats::Client {
    async_nats::connect(&nats.url).await.expect("NATS client")
}
