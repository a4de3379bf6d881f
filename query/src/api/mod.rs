//! The HTTP API: the router, who may see which rider, and the parameters every route
//! shares (time ranges, point budgets). One module per resource.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use velometry_core::ids::RiderId;
use velometry_core::riders::{Registry, Rider};
use velometry_core::time::{format_rfc3339, now_nanos, parse_str_or_millis, Nanos};

use crate::error::ApiError;
use crate::influx::Influx;
use crate::rollup::Watermark;

pub mod export;
pub mod openapi;
pub mod riders;
pub mod series;
pub mod summary;
pub mod track;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Riders and viewers.
    pub registry: Arc<Registry>,
    /// Where the readings are.
    pub influx: Influx,
    /// How far the rollup tiers are complete.
    pub watermark: Watermark,
    /// Raw points one request may read at most.
    pub max_raw_points: usize,
}

/// The router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let api = Router::new()
        .route("/v1/riders", get(riders::list))
        .route("/v1/riders/{rider}/series/{metric}", get(series::series))
        .route("/v1/riders/{rider}/track", get(track::track))
        .route("/v1/riders/{rider}/latest", get(riders::latest))
        .route("/v1/riders/{rider}/summary", get(summary::summary))
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(|| async { "ok" }))
        // Exports stream for as long as they take; everything else has a deadline.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ));
    let router = Router::new()
        .route("/v1/riders/{rider}/export.gpx", get(export::gpx))
        .route("/v1/riders/{rider}/export.csv", get(export::csv))
        .merge(api);
    velometry_core::server::with_request_metrics(router, crate::metrics::http_request).with_state(state)
}

/// The rider `id`, if the caller may see it: public riders are seen by anyone, private ones
/// need a viewer token (`Authorization: Bearer …`) that lists them.
///
/// # Errors
/// 404 for an unknown rider, 401 without a valid token, 403 when the token does not list
/// the rider.
pub fn visible<'r>(registry: &'r Registry, headers: &HeaderMap, id: &str) -> Result<&'r Rider, ApiError> {
    let unknown =
        || ApiError::NotFound(format!("no rider {id:?}; GET /v1/riders lists the riders you may see"));
    let rider = RiderId::parse(id).ok().and_then(|id| registry.rider(&id)).ok_or_else(unknown)?;
    if rider.public {
        return Ok(rider);
    }
    let Some(token) = bearer(headers) else {
        return Err(ApiError::Unauthorized(format!(
            "rider {id:?} is private: send a viewer token as Authorization: Bearer <token>"
        )));
    };
    let viewer = registry
        .authenticate_viewer(token)
        .ok_or_else(|| ApiError::Unauthorized("unknown viewer token".into()))?;
    if registry.may_see(Some(viewer), rider) {
        Ok(rider)
    } else {
        Err(ApiError::Forbidden(format!("viewer {:?} may not see rider {id:?}", viewer.name)))
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")).then(|| token.trim())
}

/// Query parameters, read one by one so each bad one gets its own message.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The time range from `from` and `to` (RFC 3339 or epoch milliseconds); `to` defaults
    /// to now and `from` to `default_span` before `to`.
    ///
    /// # Errors
    /// A bad time, or `from` not before `to`.
    pub fn range(&self, default_span: Duration) -> Result<TimeRange, ApiError> {
        let time = |name: &str| {
            self.get(name)
                .map(|v| {
                    parse_str_or_millis(v).map_err(|e| {
                        ApiError::BadRequest(format!(
                            "{name}={v:?} is not a time ({e}); give RFC 3339 (2026-11-27T10:00:00Z) or epoch milliseconds"
                        ))
                    })
                })
                .transpose()
        };
        let to = time("to")?.unwrap_or_else(now_nanos);
        let from = time("from")?.unwrap_or(to - default_span.as_nanos() as i64);
        if from >= to {
            return Err(ApiError::BadRequest(format!(
                "from ({}) must be before to ({})",
                format_rfc3339(from),
                format_rfc3339(to)
            )));
        }
        Ok(TimeRange { from, to })
    }

    /// The point budget `max_points`: `default` when absent, at least `min`, at most 10,000.
    ///
    /// # Errors
    /// Not a number, or out of bounds.
    pub fn max_points(&self, default: usize, min: usize) -> Result<usize, ApiError> {
        let Some(raw) = self.get("max_points") else { return Ok(default) };
        match raw.parse::<usize>() {
            Ok(n) if (min..=MAX_POINTS).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "max_points={raw:?} must be a whole number from {min} to {MAX_POINTS}"
            ))),
        }
    }
}

/// The largest point budget a request may ask for.
pub const MAX_POINTS: usize = 10_000;

/// A half-open time range `[from, to)` in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Nanos,
    /// Exclusive end.
    pub to: Nanos,
}

impl TimeRange {
    /// `Cache-Control` for an answer about this range: ranges that ended more than ten
    /// minutes ago change only when late readings arrive, so caches may keep them a while.
    pub fn cache_control(&self, public: bool) -> HeaderValue {
        let settled = self.to < now_nanos() - 600_000_000_000;
        HeaderValue::from_static(match (settled, public) {
            (true, true) => "public, max-age=300",
            (true, false) => "private, max-age=300",
            (false, _) => "no-cache",
        })
    }
}

/// A JSON answer with caching headers for `range`.
pub fn cached_json<T: serde::Serialize>(range: TimeRange, public: bool, body: &T) -> Response {
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, range.cache_control(public));
    response
}

/// Nanoseconds to the epoch milliseconds of the API's answers.
pub fn millis(ns: Nanos) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Per measurement (given with a field every reading of it has), the device with the most
/// readings matching `filter`. A rider with a bike computer and a phone recording at once
/// would otherwise get both tracks interleaved.
///
/// # Errors
/// InfluxDB failing.
pub async fn main_devices<const N: usize>(
    influx: &Influx,
    filter: &str,
    measurements: [(&'static str, &str); N],
) -> Result<BTreeMap<&'static str, String>, ApiError> {
    let statements: Vec<String> = measurements
        .iter()
        .map(|(m, field)| {
            format!(
                "SELECT count({}) FROM {} WHERE {filter} GROUP BY \"device\"",
                crate::influx::ident(field),
                crate::influx::ident(m)
            )
        })
        .collect();
    let mut best: BTreeMap<&'static str, (i64, String)> = BTreeMap::new();
    for s in influx.query_shared(&statements.join("; ")).await?.iter() {
        let Some(&(measurement, _)) = measurements.iter().find(|(m, _)| *m == s.name) else { continue };
        let (Some(device), Some(count)) =
            (s.tags.get("device"), s.values.first().and_then(|r| r.get(1)?.as_i64()))
        else {
            continue;
        };
        let entry = best.entry(measurement).or_insert((0, String::new()));
        if count > entry.0 || (count == entry.0 && *device < entry.1) {
            *entry = (count, device.clone());
        }
    }
    Ok(best.into_iter().filter(|(_, (n, _))| *n > 0).map(|(m, (_, d))| (m, d)).collect())
}
