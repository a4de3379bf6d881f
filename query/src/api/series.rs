//! `GET /v1/riders/{rider}/series/{metric}`: one field of one measurement over any range, at
//! most `max_points` points, read from the coarsest rollup tier that answers exactly what the
//! raw points would.
//!
//! The range is cut into buckets aligned to multiples of their width. The width is the
//! narrowest that keeps within the budget, rounded up to whole minutes or hours when that
//! costs at most a quarter of the resolution: then a tier's windows tile the buckets, and
//! merging them gives the buckets of the raw points. Parts of the range the tier cannot
//! cover (the partial windows at both ends, and what lies past the rollup watermark) are
//! read raw and gathered into the same windows.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use velometry_core::reading::Metric;

use super::{cached_json, millis, visible, AppState, Params, TimeRange};
use crate::downsample::{lttb, m4_of, minmax_lttb, regroup, windows, Point, Window};
use crate::error::ApiError;
use crate::influx::shared::widen;
use crate::influx::{ident, literal, Cell, Influx};
use crate::rollup::{self, Tier, TIERS};

const MILLI: i64 = 1_000_000;

/// How a series is reduced to its point budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Per bucket: first, last, minimum, maximum (pixel-identical charts).
    M4,
    /// Largest-Triangle-Three-Buckets over the raw points, MinMaxLTTB over a tier.
    Lttb,
    /// Per bucket: the mean, at the bucket's start.
    Mean,
}

impl Method {
    fn parse(value: Option<&str>) -> Result<Method, ApiError> {
        match value {
            None | Some("m4") => Ok(Method::M4),
            Some("lttb") => Ok(Method::Lttb),
            Some("mean") => Ok(Method::Mean),
            Some(other) => {
                Err(ApiError::BadRequest(format!("method={other:?} is not one of m4, lttb, mean")))
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Method::M4 => "m4",
            Method::Lttb => "lttb",
            Method::Mean => "mean",
        }
    }

    /// Buckets a budget of `max_points` allows.
    fn buckets(self, max_points: usize) -> i64 {
        match self {
            Method::M4 => (max_points / 4) as i64,
            Method::Lttb | Method::Mean => max_points as i64,
        }
    }
}

/// Where the answer comes from and how it is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Bucket width (ns).
    pub bucket: i64,
    /// The tier read, or `None` for raw points.
    pub tier: Option<Tier>,
}

/// The plan for `range` with `buckets` buckets at most; `forced` is the caller's `tier`
/// parameter (`Some(None)` for raw).
///
/// # Errors
/// A forced tier whose windows do not tile the buckets.
pub fn plan(range: TimeRange, buckets: i64, forced: Option<Option<Tier>>) -> Result<Plan, ApiError> {
    let span = range.to() - range.from();
    // With `b` aligned buckets of width ≥ span / (b - 1), at most `b` touch the range.
    let narrowest = (span + buckets - 2) / (buckets - 1).max(1);
    let fitting = TIERS.iter().rev().copied().find(|t| {
        let width = ceil_to(narrowest, t.width);
        narrowest >= t.width && width - narrowest <= narrowest / 4
    });
    let bucket = fitting.map_or_else(|| ceil_to(narrowest.max(1), MILLI), |t| ceil_to(narrowest, t.width));
    let tier = match forced {
        None => fitting,
        Some(None) => None,
        Some(Some(t)) if bucket % t.width == 0 => Some(t),
        Some(Some(t)) => {
            return Err(ApiError::BadRequest(format!(
                "tier {} cannot answer this request: its buckets are {} wide; use tier=raw{}",
                t.name,
                humantime::format_duration(Duration::from_nanos(bucket as u64)),
                fitting.map(|f| format!(" or tier={}", f.name)).unwrap_or_default()
            )))
        }
    };
    Ok(Plan { bucket, tier })
}

fn ceil_to(t: i64, width: i64) -> i64 {
    (t + width - 1).div_euclid(width) * width
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct SeriesAnswer {
    /// The rider.
    pub rider: String,
    /// The measurement.
    pub metric: &'static str,
    /// The field.
    pub field: &'static str,
    /// The reduction used.
    pub method: &'static str,
    /// Where the points came from: `raw`, `1m` or `1h`.
    pub tier: &'static str,
    /// Bucket width in milliseconds (for M4 and means).
    pub bucket_ms: i64,
    /// Start of the range (epoch ms).
    pub from: i64,
    /// End of the range, exclusive (epoch ms).
    pub to: i64,
    /// `[time (epoch ms), value]`, in time order.
    pub points: Vec<(i64, f64)>,
}

/// The handler.
///
/// # Errors
/// Unknown rider, metric or field; bad parameters; InfluxDB failing.
pub async fn series(
    State(state): State<AppState>,
    Path((rider, metric)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let rider = visible(&registry, &headers, &rider)?;
    let metric = Metric::from_name(&metric).ok_or_else(|| {
        let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        ApiError::NotFound(format!("no metric {metric:?}; the metrics are {}", known.join(", ")))
    })?;
    let field = match params.get("field") {
        Some(name) => metric.field(name),
        None => metric.fields().first(),
    }
    .ok_or_else(|| {
        let fields: Vec<&str> = metric.fields().iter().map(|f| f.name).collect();
        ApiError::NotFound(format!(
            "{metric} has no field {:?}; its fields are {}",
            params.get("field").unwrap_or_default(),
            fields.join(", ")
        ))
    })?;
    let range = params.range(Duration::from_secs(24 * 3600))?;
    let max_points = params.max_points(1_000, 10)?;
    let method = Method::parse(params.get("method"))?;
    let forced = match params.get("tier") {
        None | Some("auto") => None,
        Some("raw") => Some(None),
        Some(name) => Some(Some(Tier::named(name).ok_or_else(|| {
            ApiError::BadRequest(format!("tier={name:?} is not one of auto, raw, 1m, 1h"))
        })?)),
    };
    let plan = plan(range, method.buckets(max_points), forced)?;
    let source = Source {
        influx: &state.influx,
        metric,
        field: field.name,
        rider: rider.id.as_str(),
        cap: state.max_raw_points,
    };
    let (tier, points) =
        answer(&source, range, plan, method, max_points, forced.is_some(), state.watermark.get()).await?;
    crate::metrics::series_answer(tier);
    let body = SeriesAnswer {
        rider: rider.id.as_str().to_owned(),
        metric: metric.name(),
        field: field.name,
        method: method.name(),
        tier,
        bucket_ms: millis(plan.bucket),
        from: millis(range.from()),
        to: millis(range.to()),
        points: points.into_iter().map(|(t, v)| (millis(t), v)).collect(),
    };
    Ok(cached_json(range, rider.public, &body))
}

/// One field of one rider's measurement in InfluxDB.
pub(crate) struct Source<'a> {
    pub influx: &'a Influx,
    pub metric: Metric,
    pub field: &'static str,
    pub rider: &'a str,
    pub cap: usize,
}

impl Source<'_> {
    /// The raw points of `[from, to)`, in time order.
    pub async fn raw(&self, from: i64, to: i64) -> Result<Vec<Point>, ApiError> {
        if from >= to {
            return Ok(Vec::new());
        }
        // Whole seconds, so that the same chart asked within a second is one read; one row
        // past the cap tells a range that holds too many.
        let (a, b) = widen(from, to);
        let limit = self.cap + 1;
        let q = format!(
            "SELECT {} FROM {} WHERE \"rider\" = {} AND time >= {a} AND time < {b} LIMIT {limit}",
            ident(self.field),
            ident(self.metric.name()),
            literal(self.rider)
        );
        let answer = self.influx.read_shared(&q).await?;
        if answer.iter().map(|s| s.values.len()).sum::<usize>() >= limit {
            return Err(ApiError::BadRequest(format!(
                "this request needs more than {} raw points; ask for a shorter range, or let the \
                 service pick a rollup tier (tier=auto){}",
                self.cap, " — if it did, the rollups have not reached this range yet; retry in a few minutes"
            )));
        }
        Ok(answer
            .iter()
            .flat_map(|s| s.values.iter())
            .filter_map(|row| Some((row.first().and_then(Cell::as_i64)?, row.get(1).and_then(Cell::as_f64)?)))
            .filter(|&(t, _)| t >= from && t < to)
            .collect())
    }

    /// The windows of `tier` in `[from, to)` (whole windows: the same for every request).
    async fn tier(&self, tier: Tier, from: i64, to: i64) -> Result<Vec<Window>, ApiError> {
        let q = format!(
            "SELECT {} FROM {} WHERE \"rider\" = {} AND time >= {from} AND time < {to}",
            rollup::columns(self.field),
            ident(&tier.measurement(self.metric)),
            literal(self.rider)
        );
        Ok(rollup::decode(&self.influx.read_shared(&q).await?, self.field))
    }
}

/// The points for `plan`, and the name of where they came from.
async fn answer(
    source: &Source<'_>,
    range: TimeRange,
    plan: Plan,
    method: Method,
    max_points: usize,
    forced: bool,
    watermark: i64,
) -> Result<(&'static str, Vec<Point>), ApiError> {
    let (from, to, b) = (range.from(), range.to(), plan.bucket);
    let Some(tier) = plan.tier else {
        let points = source.raw(from, to).await?;
        let reduced = match method {
            Method::M4 | Method::Lttb if points.len() <= max_points && !forced => points,
            Method::M4 => m4_of(&windows(&points, 0, b)),
            Method::Lttb => lttb(&points, max_points),
            Method::Mean => means(&windows(&points, 0, b)),
        };
        return Ok(("raw", reduced));
    };
    let w = tier.width;
    // Whole windows inside the range and below the watermark come from the tier.
    let inner_from = (from + w - 1).div_euclid(w) * w;
    let inner_to = to.min(watermark).div_euclid(w) * w;
    if inner_from >= inner_to {
        return Box::pin(answer(
            source,
            range,
            Plan { tier: None, ..plan },
            method,
            max_points,
            forced,
            watermark,
        ))
        .await;
    }
    let head = source.raw(from, inner_from).await?;
    let middle = source.tier(tier, inner_from, inner_to).await?;
    let tail = source.raw(inner_to, to).await?;
    let count = head.len() as u64 + middle.iter().map(|w| w.count).sum::<u64>() + tail.len() as u64;
    if method != Method::Mean && count <= max_points as u64 && !forced {
        // Sparse data (a blood pressure a day): the raw points themselves fit the budget.
        let mut points = head;
        points.extend(source.raw(inner_from, inner_to).await?);
        points.extend(tail);
        return Ok(("raw", points));
    }
    let mut all = windows(&head, 0, w);
    all.extend(middle);
    all.extend(windows(&tail, 0, w));
    let reduced = match method {
        Method::M4 => m4_of(&regroup(&all, 0, b)),
        Method::Lttb => minmax_lttb(&all, max_points),
        Method::Mean => means(&regroup(&all, 0, b)),
    };
    Ok((tier.name, reduced))
}

fn means(buckets: &[Window]) -> Vec<Point> {
    buckets.iter().map(|b| (b.start, b.mean())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EARLIEST, LATEST};

    const MINUTE: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MINUTE;

    fn range(span: i64) -> TimeRange {
        TimeRange::new(1_700_000_000_000_000_000, 1_700_000_000_000_000_000 + span).expect("a range")
    }

    #[test]
    fn plans_pick_the_coarsest_tier_that_tiles_the_buckets() {
        let year = 365 * 24 * HOUR;
        let p = plan(range(year), 250, None).expect("plan");
        assert_eq!(p.tier.map(|t| t.name), Some("1h"));
        assert_eq!(p.bucket % HOUR, 0);
        let week = 7 * 24 * HOUR;
        let p = plan(range(week), 250, None).expect("plan");
        assert_eq!(p.tier.map(|t| t.name), Some("1m"), "{p:?}");
        let p = plan(range(HOUR), 250, None).expect("plan");
        assert_eq!(p.tier, None);
        // Two weeks at 1,000 points: 81-minute buckets; 2 hours would halve the resolution.
        let p = plan(range(14 * 24 * HOUR), 250, None).expect("plan");
        assert_eq!((p.tier.map(|t| t.name), p.bucket), (Some("1m"), 81 * MINUTE));
    }

    #[test]
    fn no_plan_exceeds_its_bucket_budget() {
        let mut ranges: Vec<TimeRange> =
            [1, 999, 1_000_000, MINUTE - 1, 7 * MINUTE, HOUR + 1, 40 * HOUR, 400 * 24 * HOUR]
                .into_iter()
                .map(range)
                .collect();
        // The widest range the API accepts, and ranges against either bound.
        let edges =
            [(EARLIEST, LATEST), (EARLIEST, EARLIEST + 1), (LATEST - 1, LATEST), (LATEST - HOUR - 7, LATEST)];
        ranges
            .extend(edges.into_iter().map(|(from, to)| TimeRange::new(from, to).expect("within the bounds")));
        for r in ranges {
            for buckets in [2, 3, 25, 250, 2_500, 10_000] {
                let p = plan(r, buckets, None).expect("plan");
                assert!(p.bucket > 0, "{r:?}: {p:?}");
                let touched = (r.to() - 1).div_euclid(p.bucket) - r.from().div_euclid(p.bucket) + 1;
                assert!(touched <= buckets, "{r:?}, {buckets} buckets: {touched} touched ({p:?})");
            }
        }
    }

    #[test]
    fn a_forced_tier_must_tile_the_buckets() {
        assert!(plan(range(HOUR), 250, Some(Some(TIERS[1]))).is_err());
        let raw = plan(range(365 * 24 * HOUR), 250, Some(None)).expect("raw is always possible");
        assert_eq!(raw.tier, None);
        assert_eq!(raw.bucket, plan(range(365 * 24 * HOUR), 250, None).expect("auto").bucket);
    }
}
