//! The hub: what each rider is doing now (latest reading per metric, recent trail), who
//! follows them, and the fan-out of each new reading to every follower's queue.
//!
//! Who may follow whom is asked of the riders file in force at each request, so a rider
//! added to it mid-race can be followed as soon as the file is reloaded. A rider's state is
//! made when their first reading or follower comes: the collector publishes only riders of
//! its riders file, and a reading that arrives before this hub has reloaded the file is kept,
//! not lost.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;
use velometry_core::ids::RiderId;
use velometry_core::riders::reload::SharedRegistry;
use velometry_core::riders::{Registry, Viewer};
use velometry_core::time::parse_rfc3339;

use crate::metrics as m;
use crate::protocol::{Frame, RiderInfo, TrailPoint};
use crate::queue::{Key, Queue, Queued};

/// A reading as the collector published it, parsed once for every follower.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Rider id.
    pub rider: RiderId,
    /// `gps` or `heart_rate`.
    pub metric: Arc<str>,
    /// Time of the reading, nanoseconds.
    pub time: i64,
    /// When the collector made it durable, epoch ms.
    pub accepted_at_ms: Option<i64>,
    /// Position, for the trail.
    pub position: Option<(f64, f64)>,
    /// The `reading` frame sent to clients.
    pub frame: Utf8Bytes,
}

impl Reading {
    /// Reads a live message from the collector.
    ///
    /// # Errors
    /// What is missing or malformed.
    pub fn parse(payload: &[u8]) -> Result<Reading, String> {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(payload).map_err(|e| format!("not a JSON object: {e}"))?;
        let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let rider = RiderId::parse(&text("rider").ok_or("no rider")?).map_err(|e| e.to_string())?;
        let metric: Arc<str> = text("metric").ok_or("no metric")?.into();
        let time = parse_rfc3339(&text("time").ok_or("no time")?).map_err(|e| e.to_string())?;
        let accepted_at_ms = object.get("accepted_at_ms").and_then(serde_json::Value::as_i64);
        let number = |key: &str| object.get(key).and_then(serde_json::Value::as_f64);
        let position = number("lat").zip(number("lon"));
        let mut frame = serde_json::Map::with_capacity(object.len() + 1);
        frame.insert("type".into(), "reading".into());
        frame.append(&mut object);
        let frame = serde_json::to_string(&frame).map_err(|e| e.to_string())?;
        Ok(Reading { rider, metric, time, accepted_at_ms, position, frame: frame.into() })
    }
}

#[derive(Default)]
struct Now {
    /// Latest reading per metric: (time, frame).
    latest: BTreeMap<Arc<str>, (i64, Utf8Bytes)>,
    /// Recent positions, oldest first.
    trail: VecDeque<TrailPoint>,
}

#[derive(Default)]
struct RiderState {
    now: Mutex<Now>,
    followers: Mutex<HashMap<u64, Arc<Queue>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data only; a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Positions kept per rider at most, whatever the trail's duration (a device sending at
/// 10 Hz would otherwise make snapshots of megabytes).
const MAX_TRAIL: usize = 3600;

/// Every rider seen, with what they are doing now and who follows them.
pub struct Hub {
    registry: SharedRegistry,
    riders: RwLock<HashMap<RiderId, Arc<RiderState>>>,
    trail: Duration,
    next_id: AtomicU64,
}

/// Why a rider cannot be followed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FollowError {
    /// No such rider in the riders file.
    #[error("unknown rider {0:?}")]
    Unknown(String),
    /// The rider is private and the client's token does not cover them.
    #[error("rider {0:?} is private: connect with a viewer token (?token=… or {{\"op\":\"auth\"}}) that may see them")]
    Private(String),
}

impl Hub {
    /// A hub for the riders of `registry`, keeping `trail` of positions.
    pub fn new(registry: SharedRegistry, trail: Duration) -> Hub {
        Hub { registry, riders: RwLock::default(), trail, next_id: AtomicU64::new(1) }
    }

    /// The riders file in force.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.current()
    }

    /// A rider's state, made on first use.
    fn rider(&self, rider: &RiderId) -> Arc<RiderState> {
        // Plain data only; a panic elsewhere leaves the map consistent.
        if let Some(state) = self.riders.read().unwrap_or_else(PoisonError::into_inner).get(rider) {
            return state.clone();
        }
        self.riders.write().unwrap_or_else(PoisonError::into_inner).entry(rider.clone()).or_default().clone()
    }

    /// A rider's state, if they have one.
    fn existing(&self, rider: &RiderId) -> Option<Arc<RiderState>> {
        self.riders.read().unwrap_or_else(PoisonError::into_inner).get(rider).cloned()
    }

    /// A fresh connection id.
    pub fn connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The riders a viewer (or an anonymous client) may follow, in file order.
    pub fn visible(&self, viewer: Option<&Viewer>) -> Vec<RiderInfo> {
        let registry = self.registry.current();
        registry
            .riders()
            .iter()
            .filter(|r| registry.may_see(viewer, r))
            .map(|r| RiderInfo { id: r.id.to_string(), name: r.name.clone() })
            .collect()
    }

    /// Checks that a client may follow a rider.
    ///
    /// # Errors
    /// [`FollowError`] when the rider is unknown or private to this client.
    pub fn check(&self, viewer: Option<&Viewer>, rider: &str) -> Result<RiderId, FollowError> {
        let unknown = || FollowError::Unknown(rider.to_owned());
        let id = RiderId::parse(rider).map_err(|_| unknown())?;
        let registry = self.registry.current();
        let known = registry.rider(&id).ok_or_else(unknown)?;
        if registry.may_see(viewer, known) {
            Ok(id)
        } else {
            Err(FollowError::Private(rider.to_owned()))
        }
    }

    /// Adds a follower and queues the rider's snapshot for them first, so that no reading
    /// reaches them before the snapshot. Returns false if they already followed.
    pub fn follow(&self, rider: &RiderId, connection: u64, queue: &Arc<Queue>) -> bool {
        let state = self.rider(rider);
        let now = lock(&state.now);
        let mut followers = lock(&state.followers);
        if followers.contains_key(&connection) {
            return false;
        }
        let latest: Vec<&RawValue> = now
            .latest
            .values()
            .filter_map(|(_, frame)| serde_json::from_str::<&RawValue>(frame.as_str()).ok())
            .collect();
        let trail: Vec<TrailPoint> = now.trail.iter().copied().collect();
        let snapshot = Frame::Snapshot { rider: rider.as_str(), latest, trail: &trail }.encode();
        queue.push(Queued { key: Key::Control, text: snapshot, accepted_at_ms: None });
        followers.insert(connection, queue.clone());
        m::subscriptions(1.0);
        true
    }

    /// Removes a follower. Returns false if they did not follow.
    pub fn unfollow(&self, rider: &RiderId, connection: u64) -> bool {
        let removed = self.existing(rider).is_some_and(|s| lock(&s.followers).remove(&connection).is_some());
        if removed {
            m::subscriptions(-1.0);
        }
        removed
    }

    /// Takes in a reading: updates the rider's latest and trail and, if it is the newest of
    /// its metric, queues it for every follower. Returns whether it was the newest.
    pub fn publish(&self, reading: &Reading) -> bool {
        m::received();
        let state = self.rider(&reading.rider);
        {
            let mut now = lock(&state.now);
            // Older than the latest, or the latest itself again: a replica that has just
            // started reads the latest stream and then replays the live one, which holds
            // the same readings; its followers' snapshots already had them.
            if now.latest.get(&reading.metric).is_some_and(|(t, frame)| {
                *t > reading.time || (*t == reading.time && *frame == reading.frame)
            }) {
                return false;
            }
            now.latest.insert(reading.metric.clone(), (reading.time, reading.frame.clone()));
            if let Some((lat, lon)) = reading.position {
                let ms = reading.time.div_euclid(1_000_000);
                if now.trail.back().is_none_or(|last| last.0 < ms) {
                    now.trail.push_back((ms, lat, lon));
                }
                let oldest = ms.saturating_sub(i64::try_from(self.trail.as_millis()).unwrap_or(i64::MAX));
                while now.trail.front().is_some_and(|p| p.0 < oldest) || now.trail.len() > MAX_TRAIL {
                    now.trail.pop_front();
                }
            }
        }
        let key = Key::Reading(Arc::from(reading.rider.as_str()), reading.metric.clone());
        for queue in lock(&state.followers).values() {
            queue.push(Queued {
                key: key.clone(),
                text: reading.frame.clone(),
                accepted_at_ms: reading.accepted_at_ms,
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RIDERS: &str = r#"
[[rider]]
id = "alice"
public = true
[[rider]]
id = "bob"
"#;

    fn hub() -> Hub {
        Hub::new(SharedRegistry::fixed(Registry::parse(RIDERS).expect("valid")), Duration::from_secs(60))
    }

    fn gps(rider: &str, second: i64, lat: f64) -> Reading {
        let payload = serde_json::json!({"rider": rider, "device": "d", "metric": "gps",
            "time": velometry_core::time::format_rfc3339(1_700_000_000_000_000_000 + second * 1_000_000_000),
            "accepted_at_ms": 1, "lat": lat, "lon": 7.0});
        Reading::parse(payload.to_string().as_bytes()).expect("valid")
    }

    #[tokio::test]
    async fn followers_get_a_snapshot_then_newer_readings_only() {
        let hub = hub();
        let alice = RiderId::parse("alice").expect("valid");
        hub.publish(&gps("alice", 1, 45.0));
        hub.publish(&gps("alice", 2, 45.1));
        let queue = Arc::new(Queue::new(16, Duration::from_secs(10)));
        assert!(hub.follow(&alice, 1, &queue));
        assert!(!hub.follow(&alice, 1, &queue), "following twice is one follow");
        assert!(hub.publish(&gps("alice", 3, 45.2)));
        assert!(!hub.publish(&gps("alice", 0, 44.0)), "older than the latest");
        assert!(!hub.publish(&gps("alice", 3, 45.2)), "the latest again (a replay)");
        let frames = queue.take().await.expect("frames");
        let snapshot: serde_json::Value = serde_json::from_str(frames[0].text.as_str()).expect("json");
        assert_eq!(snapshot["type"], "snapshot");
        assert_eq!(snapshot["latest"][0]["lat"], 45.1);
        assert_eq!(snapshot["trail"].as_array().map(Vec::len), Some(2));
        let first = &snapshot["trail"][0];
        assert!(first[0].is_i64(), "trail times are integer milliseconds: {first}");
        assert_eq!(first[0].as_i64(), Some(1_700_000_001_000));
        assert_eq!(frames.len(), 2);
        let reading: serde_json::Value = serde_json::from_str(frames[1].text.as_str()).expect("json");
        assert_eq!((reading["type"].as_str(), reading["lat"].as_f64()), (Some("reading"), Some(45.2)));
        assert!(hub.unfollow(&alice, 1));
    }

    #[test]
    fn private_riders_need_a_viewer_and_unknown_ones_are_named() {
        let hub = hub();
        assert_eq!(hub.check(None, "alice").map(|r| r.to_string()), Ok("alice".into()));
        assert_eq!(hub.check(None, "bob"), Err(FollowError::Private("bob".into())));
        assert_eq!(hub.check(None, "Zed"), Err(FollowError::Unknown("Zed".into())));
        assert_eq!(hub.visible(None).len(), 1);
    }
}
