//! `GET /v1/riders/{rider}/track`: the route over a range as a GeoJSON LineString
//! simplified to at most `max_points` vertices (default 1,000), endpoints kept, with each
//! vertex's time. Read from the device that recorded most of the range.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;

use super::{cached_json, main_devices, visible, AppState, Params};
use crate::error::ApiError;
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
    let rider = visible(&state.registry, &headers, &rider)?;
    let range = params.range(Duration::from_secs(24 * 3600))?;
    let max_points = params.max_points(1_000, 2)?;
    let filter = format!(
        "\"rider\" = {} AND time >= {} AND time < {}",
        literal(rider.id.as_str()),
        range.from,
        range.to
    );
    let devices = main_devices(&state.influx, &filter, [("gps", "lat")]).await?;
    let mut vertices = Vec::new();
    if let Some(device) = devices.get("gps") {
        let q = format!(
            "SELECT \"lat\",\"lon\" FROM \"gps\" WHERE {filter} AND \"device\" = {}",
            literal(device)
        );
        let mut chunks = std::pin::pin!(state.influx.query_chunks(&q));
        while let Some(chunk) = chunks.next().await {
            for s in chunk? {
                vertices.extend(s.values.iter().filter_map(|row| {
                    Some(Vertex {
                        time_ns: row.first().and_then(Cell::as_i64)?,
                        lat: row.get(1).and_then(Cell::as_f64)?,
                        lon: row.get(2).and_then(Cell::as_f64)?,
                    })
                }));
            }
            if vertices.len() > state.max_raw_points {
                return Err(ApiError::BadRequest(format!(
                    "the track has more than {} points in this range; ask for a shorter range",
                    state.max_raw_points
                )));
            }
        }
    }
    let simplified = simplify(&vertices, max_points);
    Ok(cached_json(range, rider.public, &feature(rider.id.as_str(), &simplified)))
}
