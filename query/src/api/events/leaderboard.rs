//! `GET /v1/events/{event}/standings` and `/standings.csv`: from what InfluxDB holds of every
//! entrant, read once a second and shared; or as history held them at a moment (`at`), for
//! a replay.

use super::flow::flow_points;
use super::*;

/// What InfluxDB holds of every entrant of `event` (all of them: who may see whom is the
/// caller's business) up to `until`, read in one request that identical requests share.
async fn facts(
    influx: &Influx,
    registry: &Registry,
    event: &Event,
    until: Option<Nanos>,
) -> Result<Vec<Facts>, ApiError> {
    let mut filter = format!("{} AND time >= {}", event_filter(event), first_start(event));
    if let Some(until) = until {
        filter.push_str(&format!(" AND time <= {until}"));
    }
    let q = [
        format!(
            "SELECT * FROM \"course_progress\" WHERE {filter} GROUP BY \"rider\" ORDER BY time DESC LIMIT 1"
        ),
        format!(
            "SELECT \"status\" FROM \"course_status\" WHERE {filter} AND \"status\" <> {withdrawn} \
             GROUP BY \"rider\" ORDER BY time DESC LIMIT 1",
            withdrawn = withdrawn::STATUS
        ),
        format!(
            "SELECT count(\"outcome\") FROM \"checkpoint\" WHERE {filter} AND \"outcome\" = 0 \
             AND \"checkpoint\" < {finish} GROUP BY \"rider\"",
            finish = event.finish_index()
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

/// The standings of `event` for the entrants the caller may see, now or as history held
/// them `at` a moment.
async fn standings_of(
    state: &AppState,
    registry: &Registry,
    event: &Event,
    viewer: Option<&Viewer>,
    at: Option<Nanos>,
) -> Result<(i64, Vec<Standing>), ApiError> {
    let visible: std::collections::HashSet<&str> =
        entrants(registry, viewer, event).into_iter().map(|(r, _)| r.id.as_str()).collect();
    let all = facts(&state.influx, registry, event, at).await?;
    let facts: Vec<Facts> = all.into_iter().filter(|f| visible.contains(&f.rider.as_str())).collect();
    let now = at.unwrap_or_else(now_nanos);
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

/// `GET /v1/events/{event}/standings[?at=]`.
///
/// # Errors
/// Unknown or invisible event; a bad `at`, or one in the future; InfluxDB failing.
pub async fn standings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let at = past(params.at()?)?;
    let public = viewer.is_none();
    let read = || async {
        let (as_of, rows) = standings_of(&state, &registry, event, viewer, at).await?;
        let answer = StandingsAnswer {
            event: event.id.as_str(),
            name: &event.name,
            length_m: standings::metres(event.length_m()),
            as_of,
            standings: rows,
        };
        Ok::<_, ApiError>(Encoded::new(&answer))
    };
    // Everyone without a token sees the same standings: one answer a second serves them all
    // (and one per moment of a replay, while it is asked).
    let key = format!("{}\u{0}{}", event.id.as_str(), viewer.map_or("", |v| v.name.as_str()));
    let body = match at {
        None => state.answers.get_or_stale(&key, read).await?.0,
        Some(at) => state.answers.get(&format!("{key}\u{0}{}", millis(at)), read).await?.0,
    };
    Ok(body.respond(&headers, cache_control(at, public)))
}

/// `at` if it is not in the future.
fn past(at: Option<Nanos>) -> Result<Option<Nanos>, ApiError> {
    let now = now_nanos();
    match at {
        Some(t) if t > now => Err(ApiError::BadRequest(format!(
            "at={} is in the future (it is {} now): standings are what history holds; leave at out for the latest",
            format_rfc3339(t),
            format_rfc3339(now)
        ))),
        _ => Ok(at),
    }
}

/// The standings of now change every second; those of a moment more than ten minutes ago
/// only when late readings arrive.
fn cache_control(at: Option<Nanos>, public: bool) -> &'static str {
    let settled = at.is_some_and(|t| t < now_nanos() - 600_000_000_000);
    match (settled, public) {
        (true, true) => "public, max-age=300",
        (true, false) => "private, max-age=300",
        (false, true) => "public, max-age=1",
        (false, false) => "private, max-age=1",
    }
}

/// `GET /v1/events/{event}/standings.csv`: the standings, one row per entrant.
///
/// # Errors
/// Unknown or invisible event; InfluxDB failing.
pub async fn standings_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let (event, viewer) = visible_event(&registry, &headers, &id)?;
    let at = past(params.at()?)?;
    let (_, rows) = standings_of(&state, &registry, event, viewer, at).await?;
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
            "lat",
            "lon",
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
                r.position.map(|[lat, _]| lat.to_string()).unwrap_or_default(),
                r.position.map(|[_, lon]| lon.to_string()).unwrap_or_default(),
            ],
        )?;
    }
    let body = out.into_inner().map_err(|e| ApiError::BadRequest(format!("cannot write the CSV: {e}")))?;
    let disposition = format!("attachment; filename=\"{}-standings.csv\"", event.id.as_str());
    let scope = cache_control(at, viewer.is_none());
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
