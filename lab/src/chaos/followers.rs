//! The live followers of a chaos run: WebSocket clients of one stream replica each,
//! following every rider or one, that reconnect with backoff — to wherever their replica
//! now listens — whenever the connection drops, and subscribe again, as the live page does.
//! Each keeps the receipt time of every live reading, from which the run works out how long
//! followers went without readings after each fault.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// What one follower saw.
#[derive(Debug)]
pub struct Log {
    /// The stream replica it follows through.
    pub replica: usize,
    /// Every live reading received: (receipt, when the collector made it durable, epoch ms).
    receipts: Mutex<Vec<(Instant, i64)>>,
    /// Whether it is connected and subscribed now.
    pub connected: AtomicBool,
    /// Connections made (the first included).
    pub connections: AtomicU64,
}

impl Log {
    /// A log for a follower of `replica`.
    pub fn new(replica: usize) -> Log {
        Log {
            replica,
            receipts: Mutex::default(),
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        }
    }

    /// Live readings received.
    pub fn received(&self) -> usize {
        self.receipts.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// The first receipt, at or after `since`, of a reading made durable at or after
    /// `since_ms` (epoch ms): a reading that is new, not one replayed from before.
    pub fn first_new_reading(&self, since: Instant, since_ms: i64) -> Option<Instant> {
        let receipts = self.receipts.lock().ok()?;
        let from = receipts.partition_point(|(at, _)| *at < since);
        receipts[from..].iter().find(|(_, accepted)| *accepted >= since_ms).map(|(at, _)| *at)
    }

    fn record(&self, accepted_ms: i64) {
        if let Ok(mut receipts) = self.receipts.lock() {
            receipts.push((Instant::now(), accepted_ms));
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Follows `riders` (ids, or `"*"`) through the replica whose current base URL `hub` holds,
/// until `stop` turns true.
pub async fn follow(
    riders: Vec<String>,
    mut hub: watch::Receiver<String>,
    log: Arc<Log>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    let subscribe = json!({"op": "subscribe", "riders": riders}).to_string();
    loop {
        let url = format!("{}/v1/live", hub.borrow_and_update().replacen("http://", "ws://", 1));
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)) => c,
            _ = stopped(&mut stop) => return,
        };
        if let Ok(Ok((mut socket, _))) = connected {
            if socket.send(Message::text(subscribe.clone())).await.is_ok() {
                log.connections.fetch_add(1, Ordering::Relaxed);
                log.connected.store(true, Ordering::Relaxed);
                backoff = FIRST_BACKOFF;
                loop {
                    let message = tokio::select! {
                        m = socket.next() => m,
                        _ = stopped(&mut stop) => {
                            let _ = socket.close(None).await;
                            return;
                        }
                    };
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(accepted) = accepted_at(text.as_str()) {
                                log.record(accepted);
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    }
                }
                log.connected.store(false, Ordering::Relaxed);
            }
        }
        // Back off, but go at once when the replica has come back somewhere else.
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = hub.changed() => {}
            _ = stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `accepted_at_ms` of a `reading` frame; `None` for every other frame.
fn accepted_at(text: &str) -> Option<i64> {
    if !text.contains(r#""type":"reading""#) {
        return None;
    }
    let frame: Value = serde_json::from_str(text).ok()?;
    (frame["type"] == "reading").then(|| frame["accepted_at_ms"].as_i64()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_frames_count() {
        let reading = r#"{"type":"reading","rider":"r0","metric":"heart_rate","time":"2026-11-27T10:00:01.000Z","accepted_at_ms":1795773601009,"bpm":142}"#;
        assert_eq!(accepted_at(reading), Some(1_795_773_601_009));
        let snapshot =
            r#"{"type":"snapshot","rider":"r0","latest":[{"type":"reading","accepted_at_ms":1}],"trail":[]}"#;
        assert_eq!(accepted_at(snapshot), None);
    }

    #[test]
    fn recovery_counts_new_readings_only() {
        let log = Log::new(0);
        let before = Instant::now();
        log.record(1_000);
        let restart = Instant::now();
        log.record(1_500); // replayed by the new hub: durable before the restart
        log.record(2_000);
        let got = log.first_new_reading(restart, 2_000).expect("a new reading");
        assert!(got >= restart);
        assert_eq!(log.first_new_reading(before, 5_000), None);
    }
}
