//! `GET /v1/live`: one WebSocket per follower. The reader side handles the client's
//! messages; a writer task drains the connection's queue into the socket, pings, and closes
//! the connection when the client cannot keep up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{watch, OwnedSemaphorePermit};
use velometry_core::ids::{EventId, RiderId};
use velometry_core::riders::Viewer;

use velometry_core::shutdown::stopped;

use crate::metrics as m;
use crate::protocol::{ClientMessage, Frame};
use crate::queue::{Key, Queue, Queued};
use crate::state::{AppState, Limits};

/// Close code for a client that could not keep up (Centrifugo uses 3008 alike).
pub const CLOSE_SLOW: u16 = 4008;
/// Close code for a client that sent nothing, not even a pong, for the idle timeout.
pub const CLOSE_IDLE: u16 = 4001;
/// Close code for a message over `--max-message-bytes` (RFC 6455 § 7.4.1, "Message Too Big"):
/// a client that sees it knows that sending the same message again cannot help.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// How the hub ends a connection: the close code and text the client sees, and the reason
/// counted in `stream_closes_total`.
#[derive(Debug, Clone)]
struct Ending {
    code: u16,
    text: Utf8Bytes,
    reason: &'static str,
}

impl Ending {
    fn new(code: u16, text: &'static str, reason: &'static str) -> Ending {
        Ending { code, text: Utf8Bytes::from_static(text), reason }
    }

    fn slow() -> Ending {
        Ending::new(CLOSE_SLOW, "too slow: could not keep up with the live feed", "slow")
    }

    /// The close for a message over `limit` bytes. The text names the limit and the flag, in
    /// fewer than the 123 bytes a close reason may hold.
    fn too_big(limit: usize) -> Ending {
        let text = format!("message too big: at most {limit} bytes (--max-message-bytes)");
        Ending { code: CLOSE_TOO_BIG, text: Utf8Bytes::from(text), reason: "too_big" }
    }
}

/// Whether a read failed because the client's message (or one frame of it) is over the
/// size limit. tungstenite reports it as a capacity error inside axum's error; the crate
/// must be the version axum uses, which the integration test of code 1009 checks.
fn too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    error
        .source()
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Query parameters of `/v1/live`.
#[derive(Debug, Deserialize)]
pub struct LiveParams {
    token: Option<String>,
}

/// `GET /v1/live`: upgrades to a WebSocket, or refuses with a status that says why.
pub async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<LiveParams>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let (Some(allowed), Some(origin)) = (&state.allowed_origins, headers.get(header::ORIGIN)) {
        let origin = origin.to_str().unwrap_or_default();
        if !allowed.iter().any(|a| a == origin) {
            m::refused("origin");
            return (StatusCode::FORBIDDEN, format!("origin {origin:?} is not allowed (--allowed-origins)"))
                .into_response();
        }
    }
    let token = params.token.filter(|t| !t.is_empty());
    if let Some(token) = &token {
        if state.hub.registry().authenticate_viewer(token).is_none() {
            return (StatusCode::UNAUTHORIZED, "unknown viewer token").into_response();
        }
    }
    let Ok(permit) = state.permits.clone().try_acquire_owned() else {
        m::refused("full");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "this hub is full (--max-connections); retry in a few seconds or use another replica",
        )
            .into_response();
    };
    let limits = state.limits;
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .on_upgrade(move |socket| connection(socket, state, token, permit))
}

/// The viewer a connection's token stands for in the riders file in force: asked again at
/// each use, so that a reload that changes what a viewer may see (or removes them) holds
/// for open connections too.
fn viewer(state: &AppState, token: Option<&str>) -> Option<Viewer> {
    token.and_then(|t| state.hub.registry().authenticate_viewer(t).cloned())
}

async fn connection(
    socket: WebSocket,
    state: AppState,
    mut token: Option<String>,
    permit: OwnedSemaphorePermit,
) {
    m::connections(1.0);
    let id = state.hub.connection_id();
    let queue = Arc::new(Queue::new(state.limits.queue, state.limits.slow_after));
    let (sink, mut stream) = socket.split();
    // The reader tells the writer to end the connection.
    let (close_tx, close_rx) = watch::channel(None::<Ending>);
    let mut writer = tokio::spawn(write(sink, queue.clone(), state.limits, close_rx, state.stop.clone()));
    let mut writer_reason = None;
    let mut followed: BTreeSet<RiderId> = BTreeSet::new();
    let mut followed_events: BTreeSet<EventId> = BTreeSet::new();
    let hello = |viewer: Option<&Viewer>, queue: &Queue| {
        let riders = state.hub.visible(viewer);
        let events = state.hub.visible_events(viewer);
        queue.push(control(Frame::Hello { riders: &riders, events: &events }.encode()));
    };
    hello(viewer(&state, token.as_deref()).as_ref(), &queue);
    let mut stop = state.stop.clone();
    let reason = loop {
        let next = tokio::select! {
            next = tokio::time::timeout(state.limits.idle_timeout, stream.next()) => next,
            _ = stopped(&mut stop) => break "shutdown",
            // The writer ends the connection when the client cannot keep up.
            ended = &mut writer => {
                writer_reason = Some(ended.ok().flatten().unwrap_or("client"));
                break "client";
            }
        };
        let message = match next {
            Err(_) => {
                let _ = close_tx.send(Some(Ending::new(CLOSE_IDLE, "idle timeout", "idle")));
                break "idle";
            }
            Ok(Some(Err(e))) if too_big(&e) => {
                let _ = close_tx.send(Some(Ending::too_big(state.limits.max_message_bytes)));
                break "too_big";
            }
            Ok(None) | Ok(Some(Err(_))) => break "client",
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break "client",
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                queue.push(error("send JSON text messages, not binary ones"));
                continue;
            }
        };
        match ClientMessage::parse(text.as_str()) {
            Err(message) => queue.push(error(&message)),
            Ok(ClientMessage::Auth { token: presented }) => match viewer(&state, Some(&presented)) {
                Some(v) => {
                    token = Some(presented);
                    hello(Some(&v), &queue);
                }
                None => queue.push(error("unknown viewer token")),
            },
            Ok(ClientMessage::Subscribe { riders, events }) => {
                let viewer = viewer(&state, token.as_deref());
                for name in expand(&state, viewer.as_ref(), &riders) {
                    match state.hub.check(viewer.as_ref(), &name) {
                        Ok(rider) => {
                            if state.hub.follow(&rider, id, &queue) {
                                followed.insert(rider);
                            }
                        }
                        Err(e) => queue.push(error(&e.to_string())),
                    }
                }
                for name in expand_events(&state, viewer.as_ref(), &events) {
                    match state.hub.check_event(viewer.as_ref(), &name) {
                        Ok(event) => {
                            if state.hub.follow_event(&event, viewer.as_ref(), id, &queue) {
                                followed_events.insert(event);
                            }
                        }
                        Err(e) => queue.push(error(&e.to_string())),
                    }
                }
                queue.push(subscribed(&followed, &followed_events));
            }
            Ok(ClientMessage::Unsubscribe { riders, events }) => {
                let viewer = viewer(&state, token.as_deref());
                for name in expand(&state, viewer.as_ref(), &riders) {
                    if let Ok(rider) = RiderId::parse(&name) {
                        state.hub.unfollow(&rider, id);
                        followed.remove(&rider);
                    }
                }
                for name in expand_events(&state, viewer.as_ref(), &events) {
                    if let Ok(event) = EventId::parse(&name) {
                        state.hub.unfollow_event(&event, id);
                        followed_events.remove(&event);
                    }
                }
                queue.push(subscribed(&followed, &followed_events));
            }
        }
        if queue.is_slow() {
            break "slow";
        }
    };
    for rider in &followed {
        state.hub.unfollow(rider, id);
    }
    for event in &followed_events {
        state.hub.unfollow_event(event, id);
    }
    if reason == "client" && writer_reason.is_none() {
        // The client closed or went away: the writer answers its Close (or finds the socket
        // gone) and ends, which releases the connection.
        let _ = close_tx.send(Some(Ending::new(1000, "", "client")));
    }
    queue.wake();
    let reason = match writer_reason {
        Some(ended) => ended,
        None => match writer.await {
            Ok(Some(ended)) => ended,
            _ => reason,
        },
    };
    m::closed(reason);
    m::connections(-1.0);
    drop(permit);
}

/// Rider names with `"*"` expanded to every rider the client may see.
fn expand(state: &AppState, viewer: Option<&Viewer>, riders: &[String]) -> Vec<String> {
    let mut names = Vec::with_capacity(riders.len());
    for name in riders {
        if name == "*" {
            names.extend(state.hub.visible(viewer).into_iter().map(|r| r.id));
        } else {
            names.push(name.clone());
        }
    }
    names
}

/// Event names with `"*"` expanded to every event the client may see.
fn expand_events(state: &AppState, viewer: Option<&Viewer>, events: &[String]) -> Vec<String> {
    let mut names = Vec::with_capacity(events.len());
    for name in events {
        if name == "*" {
            names.extend(state.hub.visible_events(viewer));
        } else {
            names.push(name.clone());
        }
    }
    names
}

fn control(text: Utf8Bytes) -> Queued {
    Queued { key: Key::Control, text, accepted_at_ms: None }
}

fn error(message: &str) -> Queued {
    control(Frame::Error { message }.encode())
}

fn subscribed(followed: &BTreeSet<RiderId>, events: &BTreeSet<EventId>) -> Queued {
    control(
        Frame::Subscribed {
            riders: followed.iter().map(RiderId::as_str).collect(),
            events: events.iter().map(EventId::as_str).collect(),
        }
        .encode(),
    )
}

/// Drains the queue into the socket. Returns the close reason when it ends the connection.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    queue: Arc<Queue>,
    limits: Limits,
    mut close: watch::Receiver<Option<Ending>>,
    mut stop: watch::Receiver<bool>,
) -> Option<&'static str> {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + limits.ping_every, limits.ping_every);
    let ending = loop {
        tokio::select! {
            frames = queue.take() => {
                let Some(frames) = frames else {
                    break Ending::slow();
                };
                let sent = send_all(&mut sink, frames, limits.slow_after).await;
                match sent {
                    Ok(()) => {}
                    Err(SendError::Slow) => break Ending::slow(),
                    Err(SendError::Gone) => return None,
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(limits.slow_after, sink.send(Message::Ping(Default::default()))).await {
                    Err(_) => break Ending::slow(),
                    Ok(Err(_)) => return None,
                    Ok(Ok(())) => {}
                }
            }
            changed = close.changed() => {
                let asked = close.borrow().clone();
                match (changed, asked) {
                    (Ok(()), Some(ending)) => break ending,
                    _ => return None,
                }
            }
            _ = stopped(&mut stop) => break Ending::new(1001, "the hub is restarting; reconnect", "shutdown"),
        }
        if queue.is_slow() {
            break Ending::slow();
        }
    };
    let frame = CloseFrame { code: ending.code, reason: ending.text };
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
    Some(ending.reason)
}

enum SendError {
    Slow,
    Gone,
}

async fn send_all(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: Vec<Queued>,
    slow_after: Duration,
) -> Result<(), SendError> {
    let count = frames.iter().filter(|f| f.key != Key::Control).count() as u64;
    let now_ms = velometry_core::time::now_nanos() / 1_000_000;
    for frame in frames {
        if let Some(accepted) = frame.accepted_at_ms {
            m::latency(Duration::from_millis(now_ms.saturating_sub(accepted).max(0) as u64));
        }
        let started = Instant::now();
        match tokio::time::timeout(slow_after, sink.feed(Message::Text(frame.text))).await {
            Err(_) => return Err(SendError::Slow),
            Ok(Err(_)) => return Err(SendError::Gone),
            Ok(Ok(())) => {}
        }
        let left = slow_after.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(SendError::Slow);
        }
    }
    match tokio::time::timeout(slow_after, sink.flush()).await {
        Err(_) => Err(SendError::Slow),
        Ok(Err(_)) => Err(SendError::Gone),
        Ok(Ok(())) => {
            m::delivered(count);
            Ok(())
        }
    }
}
