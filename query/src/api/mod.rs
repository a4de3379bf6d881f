//! The HTTP API: the router, who may see which rider, and the parameters every route
//! shares (time ranges, point budgets). One module per resource.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use velometry_core::ids::RiderId;
use velometry_core::riders::reload::SharedRegistry;
use velometry_core::riders::{Registry, Rider};
use velometry_core::time::Nanos;

use crate::error::ApiError;
use crate::influx::Influx;
use crate::rollup::Watermark;

pub mod events;
pub mod export;
pub mod openapi;
pub mod range;
pub mod riders;
pub mod series;
pub mod summary;
pub mod track;

pub use range::{TimeRange, EARLIEST, LATEST};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Riders and viewers: the riders file in force (ask it at each request).
    pub registry: SharedRegistry,
    /// Where the readings are.
    pub influx: Influx,
    /// How far the rollup tiers are complete.
    pub watermark: Watermark,
    /// Raw points one request may read at most.
    pub max_raw_points: usize,
    /// Readings one export may hold at most.
    pub max_export_points: i64,
    /// Answers made for many callers at once (an event's standings and race flow), shared
    /// for a moment.
    pub answers: std::sync::Arc<crate::influx::shared::Shared<Encoded>>,
}

/// A JSON answer encoded once for many callers: as is and gzipped.
#[derive(Debug)]
pub struct Encoded {
    json: bytes::Bytes,
    gzip: bytes::Bytes,
}

impl Encoded {
    /// `value` as JSON, and gzipped (fast: made once a second for a thousand callers, it is
    /// the bytes on the wire that count).
    pub fn new<T: serde::Serialize>(value: &T) -> Encoded {
        use std::io::Write;
        // Our answers are plain structs with string keys, which always serialize; writing to a
        // `Vec` never fails.
        let json = serde_json::to_vec(value).expect("an answer serializes to JSON");
        let mut gz =
            flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 6), flate2::Compression::fast());
        gz.write_all(&json).expect("writing to a Vec cannot fail");
        let gzip = gz.finish().expect("writing to a Vec cannot fail");
        Encoded { gzip: gzip.into(), json: json.into() }
    }

    /// The response to a request with `headers`: gzipped when the caller accepts it.
    pub fn respond(&self, headers: &HeaderMap, cache_control: &'static str) -> Response {
        let vary = (header::VARY, "Accept-Encoding");
        let kind = (header::CONTENT_TYPE, "application/json");
        let cache = (header::CACHE_CONTROL, cache_control);
        if accepts_gzip(headers) {
            ([kind, cache, vary, (header::CONTENT_ENCODING, "gzip")], self.gzip.clone()).into_response()
        } else {
            ([kind, cache, vary], self.json.clone()).into_response()
        }
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts
                .any(|p| p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().ok() == Some(0.0)));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// The router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let api = Router::new()
        .route("/v1/riders", get(riders::list))
        .route("/v1/riders/{rider}/series/{metric}", get(series::series))
        .route("/v1/riders/{rider}/track", get(track::track))
        .route("/v1/riders/{rider}/latest", get(riders::latest))
        .route("/v1/riders/{rider}/summary", get(summary::summary))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{event}", get(events::detail))
        .route("/v1/events/{event}/course", get(events::course))
        .route("/v1/events/{event}/profile", get(events::profile))
        .route("/v1/events/{event}/standings", get(events::standings))
        .route("/v1/events/{event}/standings.csv", get(events::standings_csv))
        .route("/v1/events/{event}/flow", get(events::flow))
        .route("/v1/events/{event}/checkpoints", get(events::checkpoints))
        .route("/v1/events/{event}/riders/{rider}/stops", get(events::stops))
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(|| async { "ok" }))
        .layer(compression())
        // Exports stream for as long as they take; everything else has a deadline.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ));
    let router = Router::new()
        .route("/v1/riders/{rider}/export.gpx", get(export::gpx))
        .route("/v1/riders/{rider}/export.csv", get(export::csv))
        .merge(api);
    velometry_core::server::with_request_metrics(router, crate::metrics::http_request)
        .layer(cors())
        .with_state(state)
}

/// JSON answers gzipped for every caller that takes it (a race flow of a thousand riders is
/// megabytes of numbers, a fifth of that gzipped), unless the handler gzipped it already (the
/// shared answers, [`Encoded`]). Exports stream as they are.
fn compression() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    let json = |_: StatusCode, _: axum::http::Version, headers: &HeaderMap, _: &axum::http::Extensions| {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("application/geo+json"))
    };
    tower_http::compression::CompressionLayer::new()
        .no_br()
        .no_deflate()
        .no_zstd()
        .quality(tower_http::CompressionLevel::Fastest)
        .compress_when(SizeAbove::new(1024).and(json))
}

/// Cross-origin reads: every answer may be read by a page of any origin (a spectator page,
/// a club's site), since what it holds depends only on the viewer token a request carries,
/// never on cookies. Pages may send `Authorization` and read the headers a client acts on.
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER, header::CONTENT_DISPOSITION])
        .max_age(Duration::from_secs(86_400))
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

    /// The time range of `from` and `to` (see [`TimeRange::parse`]).
    ///
    /// # Errors
    /// A bad time, one out of bounds, or `from` not before `to`.
    pub fn range(&self, default_span: Duration) -> Result<TimeRange, ApiError> {
        TimeRange::parse(self.get("from"), self.get("to"), default_span)
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    }

    /// The instant `at`, if given (RFC 3339 or epoch milliseconds).
    ///
    /// # Errors
    /// A bad time, or one out of bounds.
    pub fn at(&self) -> Result<Option<Nanos>, ApiError> {
        self.get("at")
            .map(|v| range::parse_instant("at", v).map_err(|e| ApiError::BadRequest(e.to_string())))
            .transpose()
    }

    /// The point budget `max_points`: `default` when absent, at least `min`, at most 10,000.
    /// It is an integer written as a JSON number (`1000`, or `1e3`), as the OpenAPI document
    /// declares it.
    ///
    /// # Errors
    /// Not a number, not whole, or out of bounds.
    pub fn max_points(&self, default: usize, min: usize) -> Result<usize, ApiError> {
        let Some(raw) = self.get("max_points") else { return Ok(default) };
        let bounds = min as f64..=MAX_POINTS as f64;
        match range::json_number(raw) {
            // Whole and within 10..=10,000 after the checks, so the cast is exact.
            Some(n) if n.fract() == 0.0 && bounds.contains(&n) => Ok(n as usize),
            _ => Err(ApiError::BadRequest(format!(
                "max_points={raw:?} must be a whole number from {min} to {MAX_POINTS}"
            ))),
        }
    }
}

/// The largest point budget a request may ask for.
pub const MAX_POINTS: usize = 10_000;

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
    let counted = main_devices_counted(influx, filter, measurements).await?;
    Ok(counted.into_iter().map(|(m, (device, _))| (m, device)).collect())
}

/// Like [`main_devices`], with the number of readings of each device chosen.
///
/// # Errors
/// InfluxDB failing.
pub async fn main_devices_counted<const N: usize>(
    influx: &Influx,
    filter: &str,
    measurements: [(&'static str, &str); N],
) -> Result<BTreeMap<&'static str, (String, i64)>, ApiError> {
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
    let mut best: BTreeMap<&'static str, (String, i64)> = BTreeMap::new();
    for s in influx.query_shared(&statements.join("; ")).await?.iter() {
        let Some(&(measurement, _)) = measurements.iter().find(|(m, _)| *m == s.name) else { continue };
        let (Some(device), Some(count)) =
            (s.tags.get("device"), s.values.first().and_then(|r| r.get(1)?.as_i64()))
        else {
            continue;
        };
        let entry = best.entry(measurement).or_insert((String::new(), 0));
        if count > entry.1 || (count == entry.1 && *device < entry.0) {
            *entry = (device.clone(), count);
        }
    }
    Ok(best.into_iter().filter(|(_, (_, n))| *n > 0).collect())
}
