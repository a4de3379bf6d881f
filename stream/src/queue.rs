//! The bounded queue between the fan-out and one connection's socket.
//!
//! Fan-out never waits on a socket: it pushes here under a short lock and moves on. When
//! the queue is full the newest reading wins: it replaces the queued one of the same rider
//! and metric (coalesced), or, if there is none, the oldest entry is dropped. A queue that
//! stays full for longer than the slow-client timeout is marked slow, and its connection
//! is closed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use crate::metrics as m;

/// What a queued frame is, for coalescing: a rider's metric, or a frame never replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A reading: the newest of a rider's metric replaces older ones when full.
    Reading(Arc<str>, Arc<str>),
    /// Snapshots, errors, acknowledgements: kept in order.
    Control,
}

/// A frame waiting to be sent.
#[derive(Debug, Clone)]
pub struct Queued {
    /// For coalescing.
    pub key: Key,
    /// The encoded frame.
    pub text: Utf8Bytes,
    /// When the collector accepted the reading (epoch ms), for the latency metric.
    pub accepted_at_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Queued>,
    full_since: Option<Instant>,
    slow: bool,
}

/// One connection's queue.
#[derive(Debug)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    slow_after: Duration,
}

impl Queue {
    /// A queue of `capacity` frames whose connection counts as slow once it has stayed full
    /// for `slow_after`.
    pub fn new(capacity: usize, slow_after: Duration) -> Queue {
        Queue { inner: Mutex::default(), notify: Notify::new(), capacity: capacity.max(1), slow_after }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Only plain data is held under this lock; a panic elsewhere leaves it consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame without waiting.
    pub fn push(&self, frame: Queued) {
        {
            let mut inner = self.lock();
            if inner.frames.len() < self.capacity || frame.key == Key::Control {
                inner.frames.push_back(frame);
            } else {
                let now = Instant::now();
                let since = *inner.full_since.get_or_insert(now);
                if now.duration_since(since) >= self.slow_after {
                    inner.slow = true;
                }
                match inner.frames.iter_mut().find(|q| q.key == frame.key) {
                    Some(older) => {
                        *older = frame;
                        m::coalesced();
                    }
                    None => {
                        // Control frames are never dropped; the oldest reading goes.
                        if let Some(oldest) = inner.frames.iter().position(|q| q.key != Key::Control) {
                            inner.frames.remove(oldest);
                            m::dropped();
                        }
                        inner.frames.push_back(frame);
                    }
                }
            }
        }
        self.notify.notify_one();
    }

    /// Waits for frames and takes them all. Returns `None` once the connection is slow.
    pub async fn take(&self) -> Option<Vec<Queued>> {
        loop {
            {
                let mut inner = self.lock();
                if inner.slow {
                    return None;
                }
                if !inner.frames.is_empty() {
                    inner.full_since = None;
                    return Some(inner.frames.drain(..).collect());
                }
            }
            self.notify.notified().await;
        }
    }

    /// Whether the connection has been full for too long.
    pub fn is_slow(&self) -> bool {
        self.lock().slow
    }

    /// Wakes the writer (to notice it is slow, or to stop).
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(rider: &str, metric: &str, text: &str) -> Queued {
        Queued { key: Key::Reading(rider.into(), metric.into()), text: text.into(), accepted_at_ms: None }
    }

    fn texts(frames: Vec<Queued>) -> Vec<String> {
        frames.into_iter().map(|q| q.text.as_str().to_owned()).collect()
    }

    #[tokio::test]
    async fn when_full_the_newest_reading_of_a_kind_replaces_the_queued_one() {
        let queue = Queue::new(2, Duration::from_secs(60));
        queue.push(reading("a", "gps", "gps1"));
        queue.push(reading("a", "heart_rate", "hr1"));
        queue.push(reading("a", "gps", "gps2"));
        queue.push(reading("a", "heart_rate", "hr2"));
        assert_eq!(texts(queue.take().await.expect("frames")), ["gps2", "hr2"]);
        queue.push(reading("a", "gps", "gps3"));
        assert_eq!(texts(queue.take().await.expect("frames")), ["gps3"]);
    }

    #[tokio::test]
    async fn control_frames_are_never_coalesced_and_a_new_kind_drops_the_oldest() {
        let queue = Queue::new(1, Duration::from_secs(60));
        queue.push(Queued { key: Key::Control, text: "snapshot".into(), accepted_at_ms: None });
        queue.push(reading("a", "gps", "gps1"));
        queue.push(reading("b", "gps", "gps-b"));
        assert_eq!(texts(queue.take().await.expect("frames")), ["snapshot", "gps-b"]);
    }

    #[tokio::test]
    async fn a_queue_full_for_too_long_is_slow() {
        let queue = Queue::new(1, Duration::ZERO);
        queue.push(reading("a", "gps", "1"));
        assert!(!queue.is_slow());
        queue.push(reading("a", "gps", "2"));
        assert!(queue.is_slow());
        assert!(queue.take().await.is_none());
    }
}
