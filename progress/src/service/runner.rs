//! The runner: per event of the riders file, per entrant, the engine's state, fed by live
//! fixes, the sync, late markers and organisers' status changes, in one task (a fix costs
//! microseconds; the task waits on InfluxDB and NATS, not on the CPU).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use velometry_core::event::status::event_code;
use velometry_core::event::Event as EventConfig;
use velometry_core::ids::{EventId, RiderId};
use velometry_core::riders::reload::SharedRegistry;
use velometry_core::riders::Registry;
use velometry_core::shutdown::stopped;
use velometry_core::time::{now_nanos, Nanos};

use super::derived::{event_points, readings, withdrawal, Stored};
use super::history::{History, HistoryError};
use super::members::Owners;
use super::metrics as m;
use super::writer::{Batch, Writer};
use crate::checkpoints::Checkpoint;
use crate::engine::{Config, Engine, Input, Plan, RiderState};
use crate::fix::Fix;
use crate::snapshots::Snapshots;

/// How far back the late markers are read again at each sync, for markers stamped by a
/// collector whose clock is a little behind ours.
const LATE_LOOKBACK: Nanos = 5 * 60 * 1_000_000_000;

/// One entrant of one event.
struct Entrant {
    rider: RiderId,
    start: Nanos,
    plan: Arc<Plan>,
    state: RiderState,
    snapshots: Snapshots,
    /// Fix times taken lately (within the sync window), to tell a fix seen twice from one
    /// that came late.
    recent: BTreeSet<Nanos>,
    /// Organisers' status changes taken.
    statuses: Vec<Input>,
}

impl Entrant {
    fn new(rider: RiderId, start: Nanos, plan: Arc<Plan>) -> Entrant {
        Entrant {
            rider,
            start,
            plan,
            state: RiderState::default(),
            snapshots: Snapshots::new(500, 1_800, 96),
            recent: BTreeSet::new(),
            statuses: Vec::new(),
        }
    }
}

/// One event: what its plans are made of, and its entrants.
struct EventRun {
    config: EventConfig,
    code: f64,
    entrants: BTreeMap<RiderId, Entrant>,
}

impl EventRun {
    /// Whether `other` rides the same course with the same checkpoints.
    fn same_course(&self, other: &EventConfig) -> bool {
        *self.config.course == *other.course && self.config.checkpoints == other.checkpoints
    }
}

/// What every step needs besides the entrant: the engine's thresholds, InfluxDB, the
/// collector.
struct Ctx {
    config: Config,
    history: History,
    writer: Writer,
}

/// Everything the runner needs besides its state.
pub struct Runner {
    ctx: Ctx,
    registry: SharedRegistry,
    owners: watch::Receiver<Option<Arc<Owners>>>,
    window: Duration,
    applied: Option<(Arc<Registry>, Arc<Owners>)>,
    events: BTreeMap<EventId, EventRun>,
    late_cursor: Nanos,
    late_seen: HashSet<(Nanos, RiderId)>,
}

/// The plan of an entrant who starts at `start`: the course, and the checkpoints and the
/// finish with their cut-offs for that start.
pub(super) fn plan(event: &EventConfig, start: Nanos) -> Result<Plan, String> {
    let checkpoints = event
        .checkpoints
        .iter()
        .map(|c| Checkpoint {
            name: c.name.clone(),
            distance_m: c.distance_m,
            cutoff: c.cutoff.map(|x| x.for_start(start)),
        })
        .collect();
    Plan::new((*event.course).clone(), checkpoints)
        .map(|plan| plan.with_finish_cutoff(event.finish_cutoff.map(|c| c.for_start(start))))
        .map_err(|e| format!("event {:?}: {e}", event.id.as_str()))
}

/// Steps `inputs` (in time order) from `entrant`'s state, and sends the readings of those
/// at or after `write_from`. Gives the points (measurement and time) of every event stepped.
async fn step_all(
    ctx: &Ctx,
    event: &EventConfig,
    code: f64,
    entrant: &mut Entrant,
    inputs: &[Input],
    write_from: Nanos,
    path: &'static str,
) -> HashSet<(&'static str, Nanos)> {
    let engine = Engine::new(&entrant.plan, &ctx.config);
    let mut out = Vec::new();
    let mut given = HashSet::new();
    let mut fixes = 0;
    for input in inputs {
        let Ok(output) = engine.step(&mut entrant.state, input) else { continue };
        given.extend(event_points(&output));
        entrant.snapshots.offer(&entrant.state);
        if let Input::Fix(f) = input {
            fixes += 1;
            entrant.recent.insert(f.time);
        }
        if input.time() >= write_from {
            let etas = output.progress.as_ref().and_then(|p| engine.eta(&entrant.state, p.time));
            out.extend(readings(code, &output, etas.as_ref()));
        }
    }
    m::fixes(path, fixes);
    ctx.writer.send(Batch { event: event.id.clone(), rider: entrant.rider.clone(), readings: out }).await;
    given
}

/// Fixes and status changes merged in time order.
pub(super) fn merged(fixes: Vec<Fix>, statuses: impl Iterator<Item = Input>) -> Vec<Input> {
    let mut inputs: Vec<Input> = fixes.into_iter().map(Input::Fix).chain(statuses).collect();
    inputs.sort_by_key(Input::time);
    inputs.dedup_by_key(|i| i.time());
    inputs
}

impl Runner {
    /// A runner over the events of `registry`, for the entrants `owners` gives this replica.
    pub fn new(
        config: Config,
        registry: SharedRegistry,
        owners: watch::Receiver<Option<Arc<Owners>>>,
        history: History,
        writer: Writer,
        window: Duration,
    ) -> Runner {
        Runner {
            ctx: Ctx { config, history, writer },
            registry,
            owners,
            window,
            applied: None,
            events: BTreeMap::new(),
            late_cursor: now_nanos(),
            late_seen: HashSet::new(),
        }
    }

    /// Runs until `stop`: once the replicas' list has settled, a first sync (the history of
    /// every entrant this replica owns), then live fixes as they come, a sync every `every`,
    /// and the entrants taken and given up when the list changes. `ready` turns true after
    /// the first sync.
    pub async fn run(
        mut self,
        live: impl Stream<Item = (RiderId, Fix)>,
        every: Duration,
        ready: Arc<AtomicBool>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut owners = self.owners.clone();
        tokio::select! {
            settled = owners.wait_for(Option::is_some) => if settled.is_err() { return },
            _ = stopped(&mut stop) => return,
        }
        let mut delay = Duration::from_millis(200);
        loop {
            match self.sync().await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?delay, "Cannot read the history yet; retrying.")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => return,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        ready.store(true, Ordering::Relaxed);
        tracing::info!(
            events = self.events.len(),
            entrants = self.entrant_count(),
            "Following the entrants of every event."
        );
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(live);
        loop {
            tokio::select! {
                next = live.next() => match next {
                    Some((rider, fix)) => self.live(&rider, fix).await,
                    None => return,
                },
                _ = tick.tick() => if let Err(error) = self.sync().await {
                    tracing::warn!(%error, "A sync with InfluxDB failed; the next one tries again.");
                },
                changed = owners.changed() => match changed {
                    Ok(()) => if let Err(error) = self.sync().await {
                        tracing::warn!(%error, "Cannot take the riders the replicas' list gives; the next sync tries again.");
                    },
                    Err(_) => return,
                },
                _ = stopped(&mut stop) => return,
            }
        }
    }

    fn entrant_count(&self) -> usize {
        self.events.values().map(|e| e.entrants.len()).sum()
    }

    /// A live fix of `rider`, for every event they ride.
    async fn live(&mut self, rider: &RiderId, fix: Fix) {
        for run in self.events.values_mut() {
            let Some(entrant) = run.entrants.get_mut(rider) else { continue };
            if fix.time < entrant.start || entrant.recent.contains(&fix.time) {
                continue;
            }
            if entrant.state.last_time().is_none_or(|last| fix.time > last) {
                step_all(&self.ctx, &run.config, run.code, entrant, &[Input::Fix(fix)], fix.time, "live")
                    .await;
            } else if let Err(error) =
                recompute(&self.ctx, &run.config, run.code, entrant, fix.time, vec![fix]).await
            {
                tracing::warn!(%error, %rider, "Cannot recompute a rider's progress for a late fix; the sync tries again.");
                entrant.recent.remove(&fix.time);
            }
        }
    }

    /// Puts a changed riders file in force, then reads what live delivery cannot bring:
    /// organisers' status changes, fixes it missed, late markers.
    async fn sync(&mut self) -> Result<(), HistoryError> {
        let result = self.sync_once().await;
        m::sync(result.is_ok());
        m::entrants(self.entrant_count());
        result
    }

    async fn sync_once(&mut self) -> Result<(), HistoryError> {
        self.apply_registry().await?;
        let now = now_nanos();
        let window_start = now - self.window.as_nanos() as Nanos;
        for run in self.events.values_mut() {
            let statuses = self.ctx.history.statuses(run.code).await?;
            let riders: Vec<RiderId> = run.entrants.keys().cloned().collect();
            let recent = self.ctx.history.recent_fixes(&riders, window_start).await?;
            for entrant in run.entrants.values_mut() {
                let new_statuses: Vec<Input> = statuses
                    .get(&entrant.rider)
                    .into_iter()
                    .flatten()
                    .filter(|s| s.time() >= entrant.start && !entrant.statuses.contains(s))
                    .copied()
                    .collect();
                entrant.statuses.extend(new_statuses.iter().copied());
                let missed: Vec<Fix> = recent
                    .get(&entrant.rider)
                    .into_iter()
                    .flatten()
                    .filter(|f| f.time >= entrant.start && !entrant.recent.contains(&f.time))
                    .copied()
                    .collect();
                let inputs = merged(missed.clone(), new_statuses.iter().copied());
                let Some(first) = inputs.first().map(Input::time) else { continue };
                if entrant.state.last_time().is_none_or(|last| first > last) {
                    step_all(&self.ctx, &run.config, run.code, entrant, &inputs, first, "sync").await;
                } else {
                    m::recomputed(if new_statuses.is_empty() { "missed" } else { "status" });
                    recompute(&self.ctx, &run.config, run.code, entrant, first, missed).await?;
                }
                entrant.recent.retain(|t| *t >= window_start);
            }
        }
        self.late().await
    }

    /// Recomputes the riders the collector's late markers name, from before their late fixes.
    async fn late(&mut self) -> Result<(), HistoryError> {
        let markers = self.ctx.history.late_fixes(self.late_cursor - LATE_LOOKBACK).await?;
        for (time, rider, from) in markers {
            self.late_cursor = self.late_cursor.max(time);
            if !self.late_seen.insert((time, rider.clone())) {
                continue;
            }
            for run in self.events.values_mut() {
                let Some(entrant) = run.entrants.get_mut(&rider) else { continue };
                let from = from.max(entrant.start);
                m::recomputed("late");
                recompute(&self.ctx, &run.config, run.code, entrant, from, Vec::new()).await?;
            }
        }
        let oldest = self.late_cursor - 2 * LATE_LOOKBACK;
        self.late_seen.retain(|(t, _)| *t >= oldest);
        Ok(())
    }

    /// Puts the riders file and the replicas' list in force if either changed: new events and
    /// entrants this replica owns are caught up from their history, changed courses
    /// recomputed, removed ones and those another replica owns now forgotten.
    async fn apply_registry(&mut self) -> Result<(), HistoryError> {
        let registry = self.registry.current();
        let Some(owners) = self.owners.borrow().clone() else { return Ok(()) };
        if self.applied.as_ref().is_some_and(|(r, o)| Arc::ptr_eq(r, &registry) && Arc::ptr_eq(o, &owners)) {
            return Ok(());
        }
        let before = self.entrant_count();
        let mut taken = 0;
        let mut events = BTreeMap::new();
        for config in registry.events() {
            let mut run = match self.events.remove(&config.id) {
                Some(run) if run.same_course(config) => EventRun { config: config.clone(), ..run },
                _ => EventRun {
                    config: config.clone(),
                    code: event_code(&config.id),
                    entrants: BTreeMap::new(),
                },
            };
            // Entrants kept share their plans with new ones of the same start.
            let mut plans: BTreeMap<Nanos, Arc<Plan>> =
                run.entrants.values().map(|en| (en.start, en.plan.clone())).collect();
            // Organisers' status changes, read once for the event if anyone is new.
            let mut statuses = None;
            let mut kept = BTreeMap::new();
            for e in config.entrants.iter().filter(|e| owners.owns(&e.rider)) {
                let entrant = match run.entrants.remove(&e.rider) {
                    Some(entrant) if entrant.start == e.start => entrant,
                    _ => {
                        let plan = match plans.entry(e.start) {
                            Entry::Occupied(o) => o.get().clone(),
                            Entry::Vacant(v) => match plan(config, e.start) {
                                Ok(p) => v.insert(Arc::new(p)).clone(),
                                Err(error) => {
                                    tracing::error!(%error, "An event's course cannot be followed.");
                                    continue;
                                }
                            },
                        };
                        if statuses.is_none() {
                            statuses = Some(self.ctx.history.statuses(run.code).await?);
                        }
                        let theirs =
                            statuses.as_ref().and_then(|s| s.get(&e.rider)).cloned().unwrap_or_default();
                        let mut entrant = Entrant::new(e.rider.clone(), e.start, plan);
                        catch_up(&self.ctx, config, run.code, &mut entrant, theirs).await?;
                        taken += 1;
                        entrant
                    }
                };
                kept.insert(e.rider.clone(), entrant);
            }
            run.entrants = kept;
            events.insert(config.id.clone(), run);
        }
        self.events = events;
        self.applied = Some((registry, owners.clone()));
        let now = self.entrant_count();
        if taken > 0 || now != before {
            tracing::info!(
                replicas = owners.replicas(),
                entrants = now,
                taken,
                given_up = (before + taken).saturating_sub(now),
                "Following this replica's entrants."
            );
        }
        Ok(())
    }
}

/// A new entrant: their history from their start (with the organisers' `statuses` of
/// them), with what is newer than the last `course_progress` already stored written.
async fn catch_up(
    ctx: &Ctx,
    event: &EventConfig,
    code: f64,
    entrant: &mut Entrant,
    statuses: Vec<Input>,
) -> Result<(), HistoryError> {
    let written = ctx.history.last_progress(&entrant.rider, code).await?;
    let fixes = ctx.history.fixes(&entrant.rider, entrant.start - 1, now_nanos()).await?;
    let statuses: Vec<Input> = statuses.into_iter().filter(|s| s.time() >= entrant.start).collect();
    entrant.statuses = statuses.clone();
    let inputs = merged(fixes, statuses.into_iter());
    let write_from = written.map_or(Nanos::MIN, |t| t + 1);
    step_all(ctx, event, code, entrant, &inputs, write_from, "history").await;
    let oldest = now_nanos() - LATE_LOOKBACK * 2;
    entrant.recent.retain(|t| *t >= oldest);
    Ok(())
}

/// Runs an entrant again from the last snapshot before `from`: their history after it, with
/// `extra` fixes not yet in InfluxDB, and writes the readings from `from` on; the derived
/// points stored after the snapshot that the run no longer gives are withdrawn.
async fn recompute(
    ctx: &Ctx,
    event: &EventConfig,
    code: f64,
    entrant: &mut Entrant,
    from: Nanos,
    extra: Vec<Fix>,
) -> Result<(), HistoryError> {
    let snapshot = entrant.snapshots.before(from);
    let after = snapshot.last_time().unwrap_or(entrant.start - 1);
    let mut fixes = ctx.history.fixes(&entrant.rider, after, now_nanos()).await?;
    fixes.extend(extra);
    let statuses: Vec<Input> = entrant.statuses.iter().filter(|s| s.time() > after).copied().collect();
    let inputs = merged(fixes, statuses.into_iter());
    entrant.snapshots.forget_from(from);
    entrant.state = snapshot;
    let given = step_all(ctx, event, code, entrant, &inputs, from, "recompute").await;
    let stale = withdrawals(&ctx.history, &entrant.rider, code, after, &given).await?;
    for w in &stale {
        m::withdrawn(w.metric);
    }
    let stale: Vec<Value> = stale.iter().map(|w| withdrawal(code, w)).collect();
    if !stale.is_empty() {
        ctx.writer
            .send(Batch { event: event.id.clone(), rider: entrant.rider.clone(), readings: stale })
            .await;
    }
    Ok(())
}

/// The derived points of `rider` stored after `after` that are not among the points
/// `given`: those to withdraw.
pub(super) async fn withdrawals(
    history: &History,
    rider: &RiderId,
    code: f64,
    after: Nanos,
    given: &HashSet<(&'static str, Nanos)>,
) -> Result<Vec<Stored>, HistoryError> {
    let mut stored = history.derived_after(rider, code, after).await?;
    stored.retain(|p| !given.contains(&(p.metric, p.time)));
    Ok(stored)
}
