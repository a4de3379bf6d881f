//! What every handler shares. Its own module, below both the router and the handlers, so
//! that dependencies run one way: `app` (start-up) → `http` (the router) → `ws` (the
//! handlers) → `state`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::feed::FeedState;
use crate::hub::Hub;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Riders, followers, fan-out.
    pub hub: Arc<Hub>,
    /// One permit per open WebSocket.
    pub permits: Arc<Semaphore>,
    /// Per-connection limits.
    pub limits: Limits,
    /// Allowed browser origins.
    pub allowed_origins: Option<Arc<Vec<String>>>,
    /// Turns true at shutdown.
    pub stop: watch::Receiver<bool>,
    /// What the NATS feed is doing.
    pub feed: watch::Receiver<FeedState>,
    /// The spectator page, rendered once at start.
    pub page: Arc<crate::page::Page>,
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Frames queued per connection before the newest start replacing older ones.
    pub queue: usize,
    /// How long a queue may stay full, or one send may take, before the client is cut off.
    pub slow_after: Duration,
    /// Interval of server pings.
    pub ping_every: Duration,
    /// A client silent for this long (no message, no pong) is closed.
    pub idle_timeout: Duration,
    /// Largest client message.
    pub max_message_bytes: usize,
}
