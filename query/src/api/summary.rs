//! `GET /v1/riders/{rider}/summary`: distance, moving time, climbing, speed, heart rate with
//! zones, and power over a range, computed from the raw readings: ranges up to a day read
//! whole and shared by identical requests made within a second, longer ones as they stream
//! out of InfluxDB (a three-week ride is never held in memory).
//!
//! When a rider carried several devices of one kind at once (a bike computer and a phone),
//! their readings would interleave and double distances and zone times: each measurement is
//! read from the device that recorded most of it in the range.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;
use serde::Serialize;

use super::{cached_json, main_devices, millis, visible, AppState, Params};
use crate::error::ApiError;
use crate::influx::shared::widen;
use crate::influx::{ident, literal, Cell, Series};
use crate::summary::{Summary, SummaryBuilder};

/// The answer.
#[derive(Debug, Serialize)]
pub struct SummaryAnswer {
    /// The rider.
    pub rider: String,
    /// Start of the range (epoch ms).
    pub from: i64,
    /// End of the range, exclusive (epoch ms).
    pub to: i64,
    /// The device each measurement was read from.
    pub devices: BTreeMap<&'static str, String>,
    /// The figures.
    #[serde(flatten)]
    pub summary: Summary,
}

const READ: [(&str, &[&str]); 3] =
    [("gps", &["lat", "lon", "alt", "speed"]), ("heart_rate", &["bpm"]), ("power", &["watts"])];

/// Summaries of ranges up to this long (ns) are read whole and shared by identical requests
/// (a day of 1 Hz gps is about 15 MB of rows); longer ones are streamed.
const SHARED_SPAN: i64 = 24 * 3_600 * 1_000_000_000;

/// The handler.
///
/// # Errors
/// Unknown or invisible rider; a bad range; InfluxDB failing.
pub async fn summary(
    State(state): State<AppState>,
    Path(rider): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let rider = visible(&registry, &headers, &rider)?;
    let range = params.range(Duration::from_secs(24 * 3600))?;
    // Whole seconds, so that the same summary asked within a second is one read; rows
    // outside the range asked are dropped below.
    let (from, to) = widen(range.from(), range.to());
    let only = format!("\"rider\" = {} AND time >= {from} AND time < {to}", literal(rider.id.as_str()));
    let devices = main_devices(&state.influx, &only, READ.map(|(m, f)| (m, f[0]))).await?;
    let mut builder = SummaryBuilder::new(rider.max_hr);
    for (measurement, fields) in READ {
        let Some(device) = devices.get(measurement) else { continue };
        let select = fields.iter().map(|f| ident(f)).collect::<Vec<_>>().join(",");
        let q = format!(
            "SELECT {select} FROM {} WHERE {only} AND \"device\" = {}",
            ident(measurement),
            literal(device)
        );
        let mut take = |series: &[Series]| {
            for row in series.iter().flat_map(|s| s.values.iter()) {
                let value = |i: usize| row.get(i).and_then(Cell::as_f64);
                let Some(t) = row.first().and_then(Cell::as_i64) else { continue };
                if t < range.from() || t >= range.to() {
                    continue;
                }
                match (measurement, value(1)) {
                    ("gps", Some(lat)) => {
                        if let Some(lon) = value(2) {
                            builder.gps(t, lat, lon, value(3), value(4));
                        }
                    }
                    ("heart_rate", Some(bpm)) => builder.heart_rate(t, bpm),
                    ("power", Some(watts)) => builder.power(t, watts),
                    _ => {}
                }
            }
        };
        if range.to() - range.from() <= SHARED_SPAN {
            take(&state.influx.read_shared(&q).await?);
        } else {
            // Long ranges stream through, a chunk at a time, rather than sit in memory.
            let mut chunks = std::pin::pin!(state.influx.query_chunks(&q));
            while let Some(chunk) = chunks.next().await {
                take(&chunk?);
            }
        }
    }
    let body = SummaryAnswer {
        rider: rider.id.as_str().to_owned(),
        from: millis(range.from()),
        to: millis(range.to()),
        devices,
        summary: builder.finish(),
    };
    Ok(cached_json(range, rider.public, &body))
}
