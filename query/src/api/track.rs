//! `GET /v1/riders/{rider}/track`: the route over a range as a GeoJSON LineString
//! simplified to at most `max_points` vertices (default 1,000), endpoints kept, with each
//! vertex's time. Read from the device that recorded most of the range.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{cached_json, main_devices, visible, AppState, Params};
use crate::error::ApiError;
use crate::influx::shared::widen;
use crate::influx::{literal, Cell};
use crate::track::{feature, simplify, Vertex};

/// The handler.
///
/// # Errors
/// Unknown or invisible rider; bad parameters; too many points; InfluxDB failing.
pub async fn track(
    State(state): State<AppState>,
    Path(rider): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let rider = visible(&registry, &headers, &rider)?;
    let range = params.range(Duration::from_secs(24 * 3600))?;
    let max_points = params.max_points(1_000, 2)?;
    // Whole seconds, so that the same track asked within a second is one read.
    let (from, to) = widen(range.from(), range.to());
    let filter = format!("\"rider\" = {} AND time >= {from} AND time < {to}", literal(rider.id.as_str()));
    let devices = main_devices(&state.influx, &filter, [("gps", "lat")]).await?;
    let mut vertices = Vec::new();
    if let Some(device) = devices.get("gps") {
        // One row past the cap tells a range that holds too many.
        let limit = state.max_raw_points + 1;
        let q = format!(
            "SELECT \"lat\",\"lon\" FROM \"gps\" WHERE {filter} AND \"device\" = {} LIMIT {limit}",
            literal(device)
        );
        let answer = state.influx.read_shared(&q).await?;
        if answer.iter().map(|s| s.values.len()).sum::<usize>() >= limit {
            return Err(ApiError::BadRequest(format!(
                "the track has more than {} points in this range; ask for a shorter range",
                state.max_raw_points
            )));
        }
        vertices.extend(answer.iter().flat_map(|s| s.values.iter()).filter_map(|row| {
            let time_ns = row.first().and_then(Cell::as_i64)?;
            (time_ns >= range.from() && time_ns < range.to()).then_some(Vertex {
                time_ns,
                lat: row.get(1).and_then(Cell::as_f64)?,
                lon: row.get(2).and_then(Cell::as_f64)?,
            })
        }));
    }
    let simplified = simplify(&vertices, max_points);
    Ok(cached_json(range, rider.public, &feature(rider.id.as_str(), &simplified)))
}
