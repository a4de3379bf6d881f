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
use velometry_core::event::withdrawn;
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

mod flow;
mod leaderboard;

pub use flow::flow;
pub use leaderboard::{standings, standings_csv};

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

/// `GET /v1/events/{event}/checkpoints`: per checkpoint, and at the finish, who arrived
/// when, who missed it and whose cut-off passed.
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
    // Checkpoints, then the finish.
    let mut table: Vec<Vec<Value>> = vec![Vec::new(); event.finish_index() + 1];
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
                // Withdrawn (`withdrawn::CHECKPOINT_OUTCOME`): a recomputation no longer gives
                // what this point held.
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
    for arrivals in &mut table {
        arrivals.sort_by_key(|a| (a["outcome"] != "arrived", a["time"].as_i64()));
    }
    let finish = table.pop().unwrap_or_default();
    let checkpoints: Vec<Value> = event
        .checkpoints
        .iter()
        .zip(table)
        .enumerate()
        .map(|(index, (c, arrivals))| {
            json!({
                "index": index, "name": c.name, "distance_m": c.distance_m,
                "cutoff_at": cutoff_at(c.cutoff), "cutoff_after_start_s": cutoff_after_start_s(c.cutoff),
                "arrivals": arrivals,
            })
        })
        .collect();
    let finish = json!({
        "index": event.finish_index(), "distance_m": event.length_m(),
        "cutoff_at": cutoff_at(event.finish_cutoff), "cutoff_after_start_s": cutoff_after_start_s(event.finish_cutoff),
        "arrivals": finish,
    });
    let answer = json!({"event": event.id.as_str(), "checkpoints": checkpoints, "finish": finish});
    Ok(json_for(&answer, viewer.is_none(), 5))
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
        "SELECT \"duration_s\",\"lat\",\"lon\",\"at_m\",\"status\" FROM \"stop\" WHERE {} AND \"rider\" = {} \
         AND \"status\" <> {} AND time >= {}",
        event_filter(event),
        literal(rider.id.as_str()),
        withdrawn::STATUS,
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
