//! Events: `GET /v1/events` (the events the caller may see), `GET /v1/events/{event}` (its
//! checkpoints and entrants), its course as GeoJSON simplified to a budget
//! (`/course`), its elevation profile (`/profile`), the standings (`/standings`, and
//! `/standings.csv`), the race flow (`/flow`), the checkpoint arrivals (`/checkpoints`) and a
//! rider's stops (`/riders/{rider}/stops`). Everything after the course is read from the
//! progress service's readings (docs/schema.md, "Derived readings").

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use velometry_core::event::ride::RideStatus;
use velometry_core::event::standings::{self, Facts, Progress, Standing};
use velometry_core::event::status::event_code;
use velometry_core::event::{Cutoff, Event};
use velometry_core::ids::EventId;
use velometry_core::reading::Metric;
use velometry_core::riders::{Registry, Viewer};
use velometry_core::time::{format_rfc3339, now_nanos, Nanos};

use super::series::plan;
use super::{bearer, millis, AppState, Encoded, Params};
use crate::downsample::{regroup, windows, Point, Window};
use crate::error::ApiError;
use crate::influx::shared::widen;
use crate::influx::{ident, literal, Cell, Influx, Series};
use crate::race;
use crate::rollup::{self, Tier};

/// Who is asking: anonymous, or a viewer.
fn caller<'r>(registry: &'r Registry, headers: &HeaderMap) -> Result<Option<&'r Viewer>, ApiError> {
    match bearer(headers) {
        Some(token) => registry
            .authenticate_viewer(token)
            .map(Some)
            .ok_or_else(|| ApiError::Unauthorized("unknown viewer token".into())),
        None => Ok(None),
    }
}

/// The event `id` and the caller, if the caller may see it.
///
/// # Errors
/// 404 for an unknown event, 401 for a private one without a valid token, 403 when the
/// token does not list it.
fn visible_event<'r>(
    registry: &'r Registry,
    headers: &HeaderMap,
    id: &str,
) -> Result<(&'r Event, Option<&'r Viewer>), ApiError> {
    let unknown =
        || ApiError::NotFound(format!("no event {id:?}; GET /v1/events lists the events you may see"));
    let event = EventId::parse(id).ok().and_then(|id| registry.event(&id)).ok_or_else(unknown)?;
    let viewer = caller(registry, headers)?;
    if registry.may_see_event(viewer, event) {
        return Ok((event, viewer));
    }
    match viewer {
        None => Err(ApiError::Unauthorized(format!(
            "event {id:?} is private: send a viewer token as Authorization: Bearer <token>"
        ))),
        Some(v) => Err(ApiError::Forbidden(format!("viewer {:?} may not see event {id:?}", v.name))),
    }
}

/// The entrants of `event` the caller may see, with their starts.
fn entrants<'r>(
    registry: &'r Registry,
    viewer: Option<&Viewer>,
    event: &'r Event,
) -> Vec<(&'r velometry_core::riders::Rider, Nanos)> {
    event
        .entrants
        .iter()
        .filter_map(|e| registry.rider(&e.rider).map(|r| (r, e.start)))
        .filter(|(r, _)| registry.may_see(viewer, r))
        .collect()
}

/// A JSON answer that may be kept by browsers for `max_age` (privately when the event or
/// a rider in it needs a token).
fn json_for<T: Serialize>(body: &T, public: bool, max_age: u32) -> Response {
    let mut response = Json(body).into_response();
    let scope = if public { "public" } else { "private" };
    if let Ok(v) = HeaderValue::from_str(&format!("{scope}, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

fn cutoff_at(c: Option<Cutoff>) -> Option<i64> {
    match c {
        Some(Cutoff::At(t)) => Some(millis(t)),
        _ => None,
    }
}

fn cutoff_after_start_s(c: Option<Cutoff>) -> Option<u64> {
    match c {
        Some(Cutoff::AfterStart(d)) => Some(d.as_secs()),
        _ => None,
    }
}

/// The earliest start of the event's entrants.
fn first_start(event: &Event) -> Nanos {
    event.entrants.iter().map(|e| e.start).min().unwrap_or(0)
}

/// `GET /v1/events`.
///
/// # Errors
/// An unknown token.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let viewer = caller(&registry, &headers)?;
    let events: Vec<Value> = registry
        .events()
        .iter()
        .filter(|e| registry.may_see_event(viewer, e))
        .map(|e| {
            json!({
                "id": e.id.as_str(),
                "code": event_code(&e.id) as u64,
                "name": e.name,
                "public": e.public,
                "length_m": e.length_m(),
                "start": millis(first_start(e)),
                "entrants": entrants(&registry, viewer, e).len(),
                "checkpoints": e.checkpoints.len(),
            })
        })
        .collect();
    Ok(json_for(&json!({ "events": events }), viewer.is_none(), 10))
}

/// `GET /v1/events/{event}`.
///
/// # Errors
/// Unknown or invisible event.
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let checkpoints: Vec<Value> = event
        .checkpoints
        .iter()
        .enumerate()
        .map(|(index, c)| {
            json!({
                "index": index, "name": c.name, "distance_m": c.distance_m, "lat": c.lat, "lon": c.lon,
                "cutoff_at": cutoff_at(c.cutoff), "cutoff_after_start_s": cutoff_after_start_s(c.cutoff),
            })
        })
        .collect();
    let entrants: Vec<Value> = entrants(&registry, viewer, event)
        .into_iter()
        .map(|(r, start)| json!({"rider": r.id.as_str(), "name": r.name, "start": millis(start)}))
        .collect();
    let body = json!({
        "id": event.id.as_str(),
        "code": event_code(&event.id) as u64,
        "name": event.name,
        "public": event.public,
        "length_m": event.length_m(),
        "checkpoints": checkpoints,
        "finish_cutoff_at": cutoff_at(event.finish_cutoff),
        "finish_cutoff_after_start_s": cutoff_after_start_s(event.finish_cutoff),
        "entrants": entrants,
    });
    Ok(json_for(&body, viewer.is_none(), 10))
}

/// `GET /v1/events/{event}/course`: a GeoJSON FeatureCollection of the course (a LineString
/// of at most `max_points` positions, with their distances along the course) and one Point
/// per checkpoint.
///
/// # Errors
/// Unknown or invisible event; a bad budget.
pub async fn course(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let max_points = params.max_points(2_000, 2)?;
    let line = race::course_line(event, max_points);
    let mut features = vec![json!({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": line.iter().map(|&(lon, lat, _)| [lon, lat]).collect::<Vec<_>>()},
        "properties": {
            "kind": "course", "event": event.id.as_str(), "length_m": event.length_m(),
            "distances_m": line.iter().map(|&(_, _, d)| d).collect::<Vec<_>>(),
        },
    })];
    features.extend(event.checkpoints.iter().enumerate().map(|(index, c)| {
        json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
            "properties": {"kind": "checkpoint", "index": index, "name": c.name, "distance_m": c.distance_m},
        })
    }));
    Ok(json_for(&json!({"type": "FeatureCollection", "features": features}), viewer.is_none(), 60))
}

/// `GET /v1/events/{event}/profile`: elevation against distance, M4 over distance.
///
/// # Errors
/// Unknown or invisible event; a bad budget.
pub async fn profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let max_points = params.max_points(1_000, 4)?;
    let points = race::profile(event, max_points);
    let body = json!({"event": event.id.as_str(), "length_m": event.length_m(), "points": points});
    Ok(json_for(&body, viewer.is_none(), 60))
}

/// `"event" = <code>`, the filter of an event's derived readings.
fn event_filter(event: &Event) -> String {
    format!("\"event\" = {}", event_code(&event.id) as u64)
}

fn cell_f64(s: &Series, row: &[Cell], name: &str) -> Option<f64> {
    row.get(s.column(name)?)?.as_f64()
}

/// What InfluxDB holds of every entrant of `event` (all of them: who may see whom is the
/// caller's business), read in one request that identical requests share.
async fn facts(influx: &Influx, registry: &Registry, event: &Event) -> Result<Vec<Facts>, ApiError> {
    let filter = format!("{} AND time >= {}", event_filter(event), first_start(event));
    let q = [
        format!("SELECT * FROM \"course_progress\" WHERE {filter} GROUP BY \"rider\" ORDER BY time DESC LIMIT 1"),
        format!(
            "SELECT \"status\" FROM \"course_status\" WHERE {filter} GROUP BY \"rider\" ORDER BY time DESC LIMIT 1"
        ),
        format!(
            "SELECT count(\"outcome\") FROM \"checkpoint\" WHERE {filter} AND \"outcome\" = 0 GROUP BY \"rider\""
        ),
    ]
    .join("; ");
    let answer = influx.read_shared(&q).await?;
    let mut progress: BTreeMap<&str, Progress> = BTreeMap::new();
    let mut statuses: BTreeMap<&str, (RideStatus, Nanos)> = BTreeMap::new();
    let mut reached: BTreeMap<&str, u32> = BTreeMap::new();
    for s in answer.iter() {
        let (Some(rider), Some(row)) = (s.tags.get("rider"), s.values.first()) else { continue };
        let Some(time) = row.first().and_then(Cell::as_i64) else { continue };
        match s.name.as_str() {
            "course_progress" => {
                if let Some(p) = Progress::from_fields(time, |name| cell_f64(s, row, name)) {
                    progress.insert(rider, p);
                }
            }
            "course_status" => {
                if let Some(status) = row.get(1).and_then(Cell::as_f64).and_then(RideStatus::from_code) {
                    statuses.insert(rider, (status, time));
                }
            }
            "checkpoint" => {
                let n = row.get(1).and_then(Cell::as_i64).unwrap_or(0);
                reached.insert(rider, u32::try_from(n).unwrap_or(0));
            }
            _ => {}
        }
    }
    Ok(event
        .entrants
        .iter()
        .map(|e| {
            let id = e.rider.as_str();
            Facts {
                rider: id.to_owned(),
                name: registry.rider(&e.rider).map_or_else(|| id.to_owned(), |r| r.name.clone()),
                start: e.start,
                progress: progress.get(id).copied(),
                status: statuses.get(id).copied(),
                checkpoints_reached: Some(reached.get(id).copied().unwrap_or(0)),
            }
        })
        .collect())
}

/// The race flow of `riders` over `[from, to)`: per rider, per bucket of `plan`, the point
/// (time, distance) at which they first reached the furthest distance of the bucket. Read
/// from the rollup tier where the plan has one (below the watermark), raw elsewhere.
async fn flow_points(
    state: &AppState,
    event: &Event,
    riders: &[&str],
    from: Nanos,
    to: Nanos,
    buckets: i64,
) -> Result<(i64, &'static str, BTreeMap<String, Vec<Point>>), ApiError> {
    let range = super::TimeRange::new(from, to).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let plan = plan(range, buckets, None)?;
    let only = |name: &str| riders.contains(&name);
    let mut windows_of: BTreeMap<String, Vec<Window>> = BTreeMap::new();
    let raw = |a: Nanos, b: Nanos| {
        let one = (riders.len() == 1).then(|| riders[0]);
        raw_flow(state, event, one, a, b)
    };
    let (head_to, tail_from, tier) = match plan.tier {
        Some(tier) => {
            let w = tier.width;
            let inner_from = (from + w - 1).div_euclid(w) * w;
            let inner_to = to.min(state.watermark.get()).div_euclid(w) * w;
            if inner_from < inner_to {
                (inner_from, inner_to, Some(tier))
            } else {
                (to, to, None)
            }
        }
        None => (to, to, None),
    };
    let width = tier.map_or(plan.bucket, |t| t.width);
    for (rider, points) in raw(from, head_to).await? {
        if only(&rider) {
            windows_of.entry(rider).or_default().extend(windows(&points, 0, width));
        }
    }
    if let Some(tier) = tier {
        let rider_filter = match riders {
            [one] => format!("\"rider\" = {} AND ", literal(one)),
            _ => String::new(),
        };
        let q = format!(
            "SELECT {} FROM {} WHERE {rider_filter}time >= {head_to} AND time < {tail_from} GROUP BY \"rider\"",
            rollup::columns("progress_m"),
            ident(&Tier::measurement(tier, Metric::CourseProgress)),
        );
        for s in state.influx.read_shared(&q).await?.iter() {
            let Some(rider) = s.tags.get("rider").filter(|r| only(r)) else { continue };
            windows_of
                .entry(rider.clone())
                .or_default()
                .extend(rollup::decode(std::slice::from_ref(s), "progress_m"));
        }
        for (rider, points) in raw(tail_from, to).await? {
            if only(&rider) {
                windows_of.entry(rider).or_default().extend(windows(&points, 0, width));
            }
        }
    }
    let flows = windows_of
        .into_iter()
        .map(|(rider, ws)| {
            let mut furthest = f64::NEG_INFINITY;
            let points = regroup(&ws, 0, plan.bucket)
                .into_iter()
                .map(|b| b.max)
                .filter(|&(_, d)| {
                    let further = d > furthest;
                    furthest = furthest.max(d);
                    further
                })
                .collect();
            (rider, points)
        })
        .collect();
    Ok((plan.bucket, tier.map_or("raw", |t| t.name), flows))
}

/// Raw `progress_m` of the event's entrants (or of `one`) in `[from, to)`, per rider.
async fn raw_flow(
    state: &AppState,
    event: &Event,
    one: Option<&str>,
    from: Nanos,
    to: Nanos,
) -> Result<Vec<(String, Vec<Point>)>, ApiError> {
    if from >= to {
        return Ok(Vec::new());
    }
    let (a, b) = widen(from, to);
    let rider = one.map(|r| format!(" AND \"rider\" = {}", literal(r))).unwrap_or_default();
    let limit = state.max_raw_points + 1;
    let q = format!(
        "SELECT \"progress_m\" FROM \"course_progress\" WHERE {}{rider} AND time >= {a} AND time < {b} GROUP BY \"rider\" LIMIT {limit}",
        event_filter(event)
    );
    let answer = state.influx.read_shared(&q).await?;
    if answer.iter().map(|s| s.values.len()).sum::<usize>() >= limit {
        return Err(ApiError::BadRequest(format!(
            "the race flow needs more than {} raw points here; ask for a shorter range, or retry in a \
             few minutes when the rollups have reached it",
            state.max_raw_points
        )));
    }
    Ok(answer
        .iter()
        .filter_map(|s| {
            let rider = s.tags.get("rider")?.clone();
            let points = s
                .values
                .iter()
                .filter_map(|row| Some((row.first()?.as_i64()?, row.get(1)?.as_f64()?)))
                .filter(|&(t, _)| t >= from && t < to)
                .collect();
            Some((rider, points))
        })
        .collect())
}

/// The standings answer.
#[derive(Debug, Serialize)]
struct StandingsAnswer<'a> {
    event: &'a str,
    name: &'a str,
    length_m: f64,
    /// When the answer was made (epoch ms).
    as_of: i64,
    standings: Vec<Standing>,
}

/// The standings of `event` for the entrants the caller may see.
async fn standings_of(
    state: &AppState,
    registry: &Registry,
    event: &Event,
    viewer: Option<&Viewer>,
) -> Result<(i64, Vec<Standing>), ApiError> {
    let visible: Vec<&str> =
        entrants(registry, viewer, event).into_iter().map(|(r, _)| r.id.as_str()).collect();
    let all = facts(&state.influx, registry, event).await?;
    let facts: Vec<Facts> = all.into_iter().filter(|f| visible.contains(&f.rider.as_str())).collect();
    let now = now_nanos();
    // The leader's race flow, for the gaps in time: asked only when someone is behind them.
    let leader = standings::standings(event, &facts, now, |_| None).into_iter().find(|s| s.rank == Some(1));
    let mut flow = Vec::new();
    if let Some(leader) = leader.filter(|l| l.finished.is_none() || facts.len() > 1) {
        if let Some(f) = facts.iter().find(|f| f.rider == leader.rider) {
            let end = f.progress.map_or(now, |p| p.time).max(f.start) + 1;
            let (_, _, mut flows) =
                flow_points(state, event, &[f.rider.as_str()], f.start, end, 2_500).await?;
            flow = flows.remove(&f.rider).unwrap_or_default();
        }
    }
    let rows = standings::standings(event, &facts, now, |d| standings::time_at(&flow, d));
    Ok((millis(now), rows))
}

/// `GET /v1/events/{event}/standings`.
///
/// # Errors
/// Unknown or invisible event; InfluxDB failing.
pub async fn standings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let public = viewer.is_none();
    // Everyone without a token sees the same standings: one answer a second serves them all.
    let key = format!("{}\u{0}{}", event.id.as_str(), viewer.map_or("", |v| v.name.as_str()));
    let (body, _) = state
        .answers
        .get_or_stale(&key, || async {
            let (as_of, rows) = standings_of(&state, &registry, event, viewer).await?;
            let answer = StandingsAnswer {
                event: event.id.as_str(),
                name: &event.name,
                length_m: event.length_m(),
                as_of,
                standings: rows,
            };
            Ok::<_, ApiError>(Encoded::new(&answer))
        })
        .await?;
    Ok(body.respond(&headers, if public { "public, max-age=1" } else { "private, max-age=1" }))
}

/// `GET /v1/events/{event}/standings.csv`: the standings, one row per entrant.
///
/// # Errors
/// Unknown or invisible event; InfluxDB failing.
pub async fn standings_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let (_, rows) = standings_of(&state, &registry, event, viewer).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let time = |ms: Option<i64>| ms.map(|t| format_rfc3339(t * 1_000_000)).unwrap_or_default();
    let number = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    let encode = |out: &mut csv::Writer<Vec<u8>>, record: Vec<String>| {
        out.write_record(record).map_err(|e| ApiError::BadRequest(format!("cannot write the CSV: {e}")))
    };
    encode(
        &mut out,
        [
            "rank",
            "rider",
            "name",
            "status",
            "status_since",
            "distance_m",
            "to_go_m",
            "gap_m",
            "gap_s",
            "last_fix",
            "next_checkpoint",
            "eta_next_p10",
            "eta_next_p50",
            "eta_next_p90",
            "eta_finish_p10",
            "eta_finish_p50",
            "eta_finish_p90",
            "checkpoints_reached",
            "finished",
        ]
        .map(String::from)
        .to_vec(),
    )?;
    for r in &rows {
        let next = r.next_checkpoint.as_ref();
        let next_eta = next.and_then(|n| n.eta);
        encode(
            &mut out,
            vec![
                r.rank.map(|n| n.to_string()).unwrap_or_default(),
                r.rider.clone(),
                r.name.clone(),
                r.status.to_owned(),
                time(r.status_since),
                format!("{:.1}", r.distance_m),
                format!("{:.1}", r.to_go_m),
                number(r.gap_m),
                number(r.gap_s),
                time(r.last_fix),
                next.map(|n| n.name.clone()).unwrap_or_default(),
                time(next_eta.map(|e| e.p10)),
                time(next_eta.map(|e| e.p50)),
                time(next_eta.map(|e| e.p90)),
                time(r.eta_finish.map(|e| e.p10)),
                time(r.eta_finish.map(|e| e.p50)),
                time(r.eta_finish.map(|e| e.p90)),
                r.checkpoints_reached.map(|n| n.to_string()).unwrap_or_default(),
                time(r.finished),
            ],
        )?;
    }
    let body = out.into_inner().map_err(|e| ApiError::BadRequest(format!("cannot write the CSV: {e}")))?;
    let disposition = format!("attachment; filename=\"{}-standings.csv\"", event.id.as_str());
    let scope = if viewer.is_none() { "public, max-age=1" } else { "private, max-age=1" };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, scope.to_owned()),
        ],
        body,
    )
        .into_response())
}

/// `GET /v1/events/{event}/flow`: distance along the course against time for every entrant
/// the caller may see, at most `max_points` points each.
///
/// # Errors
/// Unknown or invisible event; bad parameters; InfluxDB failing.
pub async fn flow(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let since_start = (now_nanos() - first_start(event)).max(3_600_000_000_000);
    let range = params.range(Duration::from_nanos(since_start.unsigned_abs()))?;
    let max_points = params.max_points(500, 10)?;
    let riders: Vec<&str> =
        entrants(&registry, viewer, event).into_iter().map(|(r, _)| r.id.as_str()).collect();
    let (bucket, tier, mut flows) =
        flow_points(&state, event, &riders, range.from(), range.to(), max_points as i64).await?;
    let series: Vec<Value> = riders
        .iter()
        .map(|r| {
            let points: Vec<(i64, f64)> =
                flows.remove(*r).unwrap_or_default().into_iter().map(|(t, d)| (millis(t), d)).collect();
            json!({"rider": r, "points": points})
        })
        .collect();
    let body = json!({
        "event": event.id.as_str(), "tier": tier, "bucket_ms": millis(bucket),
        "from": millis(range.from()), "to": millis(range.to()), "riders": series,
    });
    Ok(json_for(&body, viewer.is_none(), 5))
}

/// `GET /v1/events/{event}/checkpoints`: per checkpoint, who arrived when, who missed it and
/// whose cut-off passed.
///
/// # Errors
/// Unknown or invisible event; InfluxDB failing.
pub async fn checkpoints(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let visible = entrants(&registry, viewer, event);
    let q = format!(
        "SELECT \"checkpoint\",\"outcome\",\"late\" FROM \"checkpoint\" WHERE {} AND time >= {} GROUP BY \"rider\"",
        event_filter(event),
        first_start(event)
    );
    let mut table: Vec<Vec<Value>> = vec![Vec::new(); event.checkpoints.len()];
    for s in state.influx.read_shared(&q).await?.iter() {
        let Some(rider) = s.tags.get("rider") else { continue };
        let Some(&(_, start)) = visible.iter().find(|(r, _)| r.id.as_str() == rider) else { continue };
        for row in &s.values {
            let (Some(t), Some(index), Some(outcome)) = (
                row.first().and_then(Cell::as_i64),
                row.get(1).and_then(Cell::as_f64),
                row.get(2).and_then(Cell::as_f64),
            ) else {
                continue;
            };
            let Some(arrivals) = table.get_mut(index as usize) else { continue };
            let outcome = match outcome as u8 {
                0 => "arrived",
                1 => "missed",
                2 => "cutoff",
                // Withdrawn: a recomputation no longer gives what this point held.
                _ => continue,
            };
            let late = row.get(3).and_then(Cell::as_f64) == Some(1.0);
            // The point's time carries the checkpoint and outcome in its nanoseconds.
            let at = t.div_euclid(1_000_000) * 1_000_000;
            arrivals.push(json!({
                "rider": rider, "outcome": outcome, "time": millis(at), "late": late,
                "elapsed_s": ((at - start) as f64 / 1e9).round(),
            }));
        }
    }
    let checkpoints: Vec<Value> = event
        .checkpoints
        .iter()
        .zip(table)
        .enumerate()
        .map(|(index, (c, mut arrivals))| {
            arrivals.sort_by_key(|a| (a["outcome"] != "arrived", a["time"].as_i64()));
            json!({
                "index": index, "name": c.name, "distance_m": c.distance_m,
                "cutoff_at": cutoff_at(c.cutoff), "cutoff_after_start_s": cutoff_after_start_s(c.cutoff),
                "arrivals": arrivals,
            })
        })
        .collect();
    Ok(json_for(&json!({"event": event.id.as_str(), "checkpoints": checkpoints}), viewer.is_none(), 5))
}

/// `GET /v1/events/{event}/riders/{rider}/stops`: a rider's stops in the event, once ended.
///
/// # Errors
/// Unknown or invisible event or rider, or a rider who is not an entrant; InfluxDB failing.
pub async fn stops(
    State(state): State<AppState>,
    Path((id, rider)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let rider = velometry_core::ids::RiderId::parse(&rider)
        .ok()
        .and_then(|r| registry.rider(&r))
        .filter(|r| event.entrant(&r.id).is_some() && registry.may_see(viewer, r))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no entrant {rider:?} in event {id:?}; GET /v1/events/{id} lists the entrants you may see"
            ))
        })?;
    let q = format!(
        "SELECT \"duration_s\",\"lat\",\"lon\",\"at_m\",\"status\" FROM \"stop\" WHERE {} AND \"rider\" = {} AND time >= {}",
        event_filter(event),
        literal(rider.id.as_str()),
        first_start(event)
    );
    let answer = state.influx.read_shared(&q).await?;
    let stops: Vec<Value> = answer
        .iter()
        .flat_map(|s| s.values.iter())
        .filter_map(|row| {
            let t = row.first()?.as_i64()?;
            let duration = row.get(1)?.as_f64()?;
            let status = row.get(5).and_then(Cell::as_f64).and_then(RideStatus::from_code);
            Some(json!({
                "start": millis(t), "end": millis(t + (duration * 1e9) as i64), "duration_s": duration,
                "lat": row.get(2)?.as_f64()?, "lon": row.get(3)?.as_f64()?,
                "at_m": row.get(4).and_then(Cell::as_f64), "status": status.map_or("stopped", RideStatus::name),
            }))
        })
        .collect();
    let public = viewer.is_none() && rider.public;
    Ok(json_for(&json!({"event": event.id.as_str(), "rider": rider.id.as_str(), "stops": stops}), public, 10))
}
