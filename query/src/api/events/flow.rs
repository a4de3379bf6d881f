//! `GET /v1/events/{event}/flow`: distance along the course against time, every rider,
//! downsampled to a budget, from the rollup tiers where they have it.

use super::*;

/// The race flow of `riders` over `[from, to)`: per rider, per bucket of `plan`, the point
/// (time, distance) at which they first reached the furthest distance of the bucket. Read
/// from the rollup tier where the plan has one (below the watermark), raw elsewhere.
pub(super) async fn flow_points(
    state: &AppState,
    event: &Event,
    riders: &[&str],
    from: Nanos,
    to: Nanos,
    buckets: i64,
) -> Result<(i64, &'static str, BTreeMap<String, Vec<Point>>), ApiError> {
    let range = crate::api::TimeRange::new(from, to).map_err(|e| ApiError::BadRequest(e.to_string()))?;
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
    let read = || async {
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
        Ok::<_, ApiError>(Encoded::new(&body))
    };
    // The flow up to now is what every spectator's page asks when it opens: callers with
    // the same question share one answer a second (`to` is then up to a second old).
    let body = if params.get("to").is_none() {
        let key = format!(
            "flow\u{0}{}\u{0}{}\u{0}{}\u{0}{max_points}",
            event.id.as_str(),
            viewer.map_or("", |v| v.name.as_str()),
            params.get("from").unwrap_or_default(),
        );
        state.answers.get_or_stale(&key, read).await?.0
    } else {
        std::sync::Arc::new(read().await?)
    };
    Ok(body.respond(&headers, if viewer.is_none() { "public, max-age=5" } else { "private, max-age=5" }))
}
