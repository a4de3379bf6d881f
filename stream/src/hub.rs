//! The hub: what each rider is doing now (latest reading per metric, recent trail), who
//! follows them and who follows each event, and the fan-out of each new reading to every
//! follower's queue. An event's followers get the progress of its entrants (the progress
//! service's `course_progress`, `course_status` and `checkpoint` readings) after a snapshot
//! of the standings ranked from what the hub holds: gathered, and sent a few times a second
//! as one `progress` frame of every entrant's new readings (see [`Hub::send_progress`]), so
//! that a thousand entrants cost a spectator a frame, not a hundred, each second.
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
use velometry_core::event::ride::RideStatus;
use velometry_core::event::standings::{standings, Facts, Progress};
use velometry_core::event::status::event_code;
use velometry_core::event::Event;
use velometry_core::ids::{EventId, RiderId};
use velometry_core::riders::reload::SharedRegistry;
use velometry_core::riders::{Registry, Viewer};
use velometry_core::time::{now_nanos, parse_rfc3339};

use crate::metrics as m;
use crate::protocol::{Frame, RiderInfo, TrailPoint};
use crate::queue::{Key, Queue, Queued};

/// A reading as the collector published it, parsed once for every follower.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Rider id.
    pub rider: RiderId,
    /// A live metric (`gps`, `heart_rate`, `power`, `cadence`, or an entrant's progress).
    pub metric: Arc<str>,
    /// Time of the reading, nanoseconds.
    pub time: i64,
    /// When the collector made it durable, epoch ms.
    pub accepted_at_ms: Option<i64>,
    /// Position, for the trail.
    pub position: Option<(f64, f64)>,
    /// The code of the event a derived reading is of (its `event` field).
    pub event: Option<f64>,
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
        let event = number("event");
        let mut frame = serde_json::Map::with_capacity(object.len() + 1);
        frame.insert("type".into(), "reading".into());
        frame.append(&mut object);
        let frame = serde_json::to_string(&frame).map_err(|e| e.to_string())?;
        Ok(Reading { rider, metric, time, accepted_at_ms, position, event, frame: frame.into() })
    }

    /// The `reading` frame with the event's code replaced by its id.
    fn frame_in(&self, event: &EventId) -> Utf8Bytes {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.frame.as_str()).unwrap_or_default();
        object.insert("event".into(), event.as_str().into());
        Utf8Bytes::from(serde_json::to_string(&object).unwrap_or_default())
    }
}

/// The readings of an event's progress that its followers get.
const PROGRESS_METRICS: [&str; 3] = ["course_progress", "course_status", "checkpoint"];

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

/// A follower of an event: their queue, and who they are (which entrants they may see).
struct EventFollower {
    queue: Arc<Queue>,
    viewer: Option<Viewer>,
}

/// A reading of an entrant's progress, waiting for the event's next `progress` frame.
struct Pending {
    rider: RiderId,
    /// The reading as an element of the frame's `readings` (no `type`, no `event`).
    entry: Box<RawValue>,
    accepted_at_ms: Option<i64>,
}

/// Every rider seen, with what they are doing now and who follows them.
pub struct Hub {
    registry: SharedRegistry,
    riders: RwLock<HashMap<RiderId, Arc<RiderState>>>,
    events: Mutex<HashMap<EventId, HashMap<u64, EventFollower>>>,
    /// Progress readings of followed events since the last `progress` frames, in order.
    pending: Mutex<HashMap<EventId, Vec<Pending>>>,
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
    /// No such event in the riders file.
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    /// The event is private and the client's token does not list it.
    #[error(
        "event {0:?} is private: connect with a viewer token (?token=… or {{\"op\":\"auth\"}}) that lists it"
    )]
    PrivateEvent(String),
}

impl Hub {
    /// A hub for the riders of `registry`, keeping `trail` of positions.
    pub fn new(registry: SharedRegistry, trail: Duration) -> Hub {
        Hub {
            registry,
            riders: RwLock::default(),
            events: Mutex::default(),
            pending: Mutex::default(),
            trail,
            next_id: AtomicU64::new(1),
        }
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

    /// Checks that a client may follow an event.
    ///
    /// # Errors
    /// [`FollowError`] when the event is unknown or private to this client.
    pub fn check_event(&self, viewer: Option<&Viewer>, event: &str) -> Result<EventId, FollowError> {
        let unknown = || FollowError::UnknownEvent(event.to_owned());
        let id = EventId::parse(event).map_err(|_| unknown())?;
        let registry = self.registry.current();
        let known = registry.event(&id).ok_or_else(unknown)?;
        if registry.may_see_event(viewer, known) {
            Ok(id)
        } else {
            Err(FollowError::PrivateEvent(event.to_owned()))
        }
    }

    /// The events a viewer (or an anonymous client) may follow, in file order.
    pub fn visible_events(&self, viewer: Option<&Viewer>) -> Vec<String> {
        let registry = self.registry.current();
        registry
            .events()
            .iter()
            .filter(|e| registry.may_see_event(viewer, e))
            .map(|e| e.id.as_str().to_owned())
            .collect()
    }

    /// Adds a follower of an event and queues the standings snapshot for them first: every
    /// entrant they may see, ranked from the latest progress the hub holds. Returns false if
    /// they already followed.
    pub fn follow_event(
        &self,
        event: &EventId,
        viewer: Option<&Viewer>,
        connection: u64,
        queue: &Arc<Queue>,
    ) -> bool {
        let registry = self.registry.current();
        let Some(known) = registry.event(event) else { return false };
        let mut events = lock(&self.events);
        let followers = events.entry(event.clone()).or_default();
        if followers.contains_key(&connection) {
            return false;
        }
        let facts = self.facts(&registry, known, viewer);
        let now = now_nanos();
        let rows = standings(known, &facts, now, |_| None);
        let snapshot =
            Frame::Standings { event: event.as_str(), as_of: now.div_euclid(1_000_000), standings: &rows }
                .encode();
        queue.push(Queued { key: Key::Control, text: snapshot, accepted_at_ms: None });
        followers.insert(connection, EventFollower { queue: queue.clone(), viewer: viewer.cloned() });
        m::subscriptions(1.0);
        true
    }

    /// Removes a follower of an event. Returns false if they did not follow it.
    pub fn unfollow_event(&self, event: &EventId, connection: u64) -> bool {
        let mut events = lock(&self.events);
        let removed = events.get_mut(event).is_some_and(|f| f.remove(&connection).is_some());
        if events.get(event).is_some_and(HashMap::is_empty) {
            events.remove(event);
        }
        if removed {
            m::subscriptions(-1.0);
        }
        removed
    }

    /// What the hub holds of the entrants of `event` that `viewer` may see: their latest
    /// progress and change of status in this event.
    fn facts(&self, registry: &Registry, event: &Event, viewer: Option<&Viewer>) -> Vec<Facts> {
        let latest_of = |state: &RiderState, metric: &str| -> Option<(i64, serde_json::Value)> {
            let now = lock(&state.now);
            let (time, frame) = now.latest.get(metric)?;
            let value: serde_json::Value = serde_json::from_str(frame.as_str()).ok()?;
            (value["event"] == event.id.as_str()).then_some((*time, value))
        };
        event
            .entrants
            .iter()
            .filter_map(|e| registry.rider(&e.rider).map(|r| (r, e.start)))
            .filter(|(r, _)| registry.may_see(viewer, r))
            .map(|(r, start)| {
                let state = self.existing(&r.id);
                let progress = state
                    .as_deref()
                    .and_then(|s| latest_of(s, "course_progress"))
                    .and_then(|(t, v)| Progress::from_fields(t, |name| v[name].as_f64()));
                let status = state
                    .as_deref()
                    .and_then(|s| latest_of(s, "course_status"))
                    .and_then(|(t, v)| Some((RideStatus::from_code(v["status"].as_f64()?)?, t)));
                Facts {
                    rider: r.id.as_str().to_owned(),
                    name: r.name.clone(),
                    start,
                    progress,
                    status,
                    checkpoints_reached: None,
                }
            })
            .collect()
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
        // A reading of an event's progress names the event by its id, not its code.
        let event = reading.event.filter(|_| PROGRESS_METRICS.contains(&&*reading.metric)).and_then(|code| {
            let registry = self.registry.current();
            registry.events().iter().find(|e| event_code(&e.id) == code).map(|e| e.id.clone())
        });
        let frame = match &event {
            Some(id) => reading.frame_in(id),
            None => reading.frame.clone(),
        };
        let state = self.rider(&reading.rider);
        {
            let mut now = lock(&state.now);
            // Older than the latest, or the latest itself again: a replica that has just
            // started reads the latest stream and then replays the live one, which holds
            // the same readings; its followers' snapshots already had them.
            if now
                .latest
                .get(&reading.metric)
                .is_some_and(|(t, latest)| *t > reading.time || (*t == reading.time && *latest == frame))
            {
                return false;
            }
            now.latest.insert(reading.metric.clone(), (reading.time, frame.clone()));
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
                text: frame.clone(),
                accepted_at_ms: reading.accepted_at_ms,
            });
        }
        if let Some(id) = event {
            self.publish_progress(reading, &id);
        }
        true
    }

    /// Keeps a reading of an event's progress for the event's next `progress` frame, if
    /// anyone follows the event.
    fn publish_progress(&self, reading: &Reading, event: &EventId) {
        if lock(&self.events).get(event).is_none_or(HashMap::is_empty) {
            return;
        }
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(reading.frame.as_str()).unwrap_or_default();
        object.remove("type");
        object.remove("event");
        let Ok(entry) = serde_json::value::to_raw_value(&object) else { return };
        lock(&self.pending).entry(event.clone()).or_default().push(Pending {
            rider: reading.rider.clone(),
            entry,
            accepted_at_ms: reading.accepted_at_ms,
        });
    }

    /// Queues, for every follower of each event, one `progress` frame of the readings kept
    /// since the last call that the follower may see. The frame is made once per kind of
    /// follower (anonymous, or each viewer), whatever their number.
    ///
    /// In a queue that is full, an event's newer frame replaces the older one not yet sent:
    /// a follower that slow misses progress, as a slow follower of a rider misses readings,
    /// and the standings of their next subscribe bring them up to date.
    pub fn send_progress(&self) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.is_empty() {
            return;
        }
        let registry = self.registry.current();
        let events = lock(&self.events);
        for (event, entries) in &pending {
            let Some(followers) = events.get(event) else { continue };
            let key = Key::Reading(Arc::from(event.as_str()), Arc::from("progress"));
            let mut made: HashMap<Option<&str>, Option<(Utf8Bytes, Option<i64>)>> = HashMap::new();
            for follower in followers.values() {
                let viewer = follower.viewer.as_ref();
                let frame = made.entry(viewer.map(|v| v.name.as_str())).or_insert_with(|| {
                    let seen: Vec<&Pending> = entries
                        .iter()
                        .filter(|p| registry.rider(&p.rider).is_some_and(|r| registry.may_see(viewer, r)))
                        .collect();
                    if seen.is_empty() {
                        return None;
                    }
                    let readings: Vec<&RawValue> = seen.iter().map(|p| &*p.entry).collect();
                    let text = Frame::Progress { event: event.as_str(), readings }.encode();
                    Some((text, seen.iter().filter_map(|p| p.accepted_at_ms).min()))
                });
                if let Some((text, accepted_at_ms)) = frame {
                    follower.queue.push(Queued {
                        key: key.clone(),
                        text: text.clone(),
                        accepted_at_ms: *accepted_at_ms,
                    });
                }
            }
        }
    }
}

/// Sends the events' `progress` frames every `every` until `stop`.
pub async fn send_progress(hub: Arc<Hub>, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => hub.send_progress(),
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

#[cfg(test)]
mod tests;
