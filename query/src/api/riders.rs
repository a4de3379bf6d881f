//! `GET /v1/riders` (the riders the caller may see, with the time span of their data) and
//! `GET /v1/riders/{rider}/latest` (the latest value of every metric).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use velometry_core::reading::Metric;
use velometry_core::time::format_rfc3339;

use super::{bearer, visible, AppState};
use crate::error::ApiError;
use crate::influx::{ident, literal, Cell};

/// One rider in the list.
#[derive(Debug, Serialize)]
pub struct RiderEntry {
    /// The rider's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether anyone may follow the rider.
    pub public: bool,
    /// The earliest reading (RFC 3339), if any.
    pub first: Option<String>,
    /// The latest reading (RFC 3339), if any.
    pub last: Option<String>,
}

/// The handler of `GET /v1/riders`.
///
/// # Errors
/// An unknown token; InfluxDB failing.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let viewer = match bearer(&headers) {
        Some(token) => Some(
            registry
                .authenticate_viewer(token)
                .ok_or_else(|| ApiError::Unauthorized("unknown viewer token".into()))?,
        ),
        None => None,
    };
    let riders: Vec<_> = registry.riders().iter().filter(|r| registry.may_see(viewer, r)).collect();
    // The first and last reading of each measurement, per rider, in one request.
    let mut statements = Vec::new();
    for metric in Metric::ALL {
        let Some(field) = metric.fields().first() else { continue };
        for selector in ["first", "last"] {
            statements.push(format!(
                "SELECT {selector}({}) FROM {} GROUP BY \"rider\"",
                ident(field.name),
                ident(metric.name())
            ));
        }
    }
    let mut spans: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for s in state.influx.query(&statements.join("; ")).await? {
        let (Some(rider), Some(t)) =
            (s.tags.get("rider"), s.values.first().and_then(|r| r.first()?.as_i64()))
        else {
            continue;
        };
        let span = spans.entry(rider.clone()).or_insert((t, t));
        span.0 = span.0.min(t);
        span.1 = span.1.max(t);
    }
    let body: Vec<RiderEntry> = riders
        .into_iter()
        .map(|r| {
            let span = spans.get(r.id.as_str());
            RiderEntry {
                id: r.id.as_str().to_owned(),
                name: r.name.clone(),
                public: r.public,
                first: span.map(|s| format_rfc3339(s.0)),
                last: span.map(|s| format_rfc3339(s.1)),
            }
        })
        .collect();
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response())
}

/// The latest reading of one metric.
#[derive(Debug, Serialize)]
pub struct Latest {
    /// When it was taken (RFC 3339).
    pub time: String,
    /// The device that sent it.
    pub device: Option<String>,
    /// Its fields.
    pub fields: BTreeMap<String, f64>,
}

/// The answer of `GET /v1/riders/{rider}/latest`.
#[derive(Debug, Serialize)]
pub struct LatestAnswer {
    /// The rider.
    pub rider: String,
    /// Per metric with any reading, the latest one.
    pub metrics: BTreeMap<&'static str, Latest>,
}

/// The handler of `GET /v1/riders/{rider}/latest`.
///
/// # Errors
/// Unknown or invisible rider; InfluxDB failing.
pub async fn latest(
    State(state): State<AppState>,
    Path(rider): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let rider = visible(&registry, &headers, &rider)?;
    let statements: Vec<String> = Metric::ALL
        .iter()
        .map(|m| {
            format!(
                "SELECT * FROM {} WHERE \"rider\" = {} ORDER BY time DESC LIMIT 1",
                ident(m.name()),
                literal(rider.id.as_str())
            )
        })
        .collect();
    let mut metrics = BTreeMap::new();
    for s in state.influx.query_shared(&statements.join("; ")).await?.iter() {
        let (Some(metric), Some(row)) = (Metric::from_name(&s.name), s.values.first()) else { continue };
        let Some(time) = row.first().and_then(Cell::as_i64) else { continue };
        let mut fields = BTreeMap::new();
        let mut device = None;
        for (column, cell) in s.columns.iter().zip(row) {
            if metric.field(column).is_some() {
                if let Some(v) = cell.as_f64() {
                    fields.insert(column.clone(), v);
                }
            } else if column == "device" {
                if let Cell::Str(d) = cell {
                    device = Some(d.clone());
                }
            }
        }
        metrics.insert(metric.name(), Latest { time: format_rfc3339(time), device, fields });
    }
    let body = LatestAnswer { rider: rider.id.as_str().to_owned(), metrics };
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response())
}
