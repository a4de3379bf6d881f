//! Standings as race followers read them: ranked from the progress service's readings, with
//! gaps to the leader in distance and in time. Pure, and one for every reader: the query
//! service ranks what InfluxDB holds, the stream hub what it holds live.
//!
//! Ranking, as ultra races rank: the finishers first, by their elapsed time (finish minus
//! their own start); then everyone still racing by the furthest distance along the course
//! they have reached (`progress_m`: a shortcut or a rider who turned back does not move it),
//! the earlier to get there first; entrants without a fix yet and scratched entrants are not
//! ranked. Ranks are among the entrants the caller may see, so a private rider's place is
//! never given away by a gap in the numbers.

use serde::Serialize;

use super::ride::RideStatus;
use super::Event;
use crate::time::Nanos;

/// A point of a race flow: time (ns) and the furthest distance reached by then (m).
pub type FlowPoint = (Nanos, f64);

#[cfg(test)]
mod tests;

const SECOND: f64 = 1e9;

/// A range of ETAs, nanoseconds since 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eta {
    /// 10th percentile: earlier than this one time in ten.
    pub p10: Nanos,
    /// Median.
    pub p50: Nanos,
    /// 90th percentile.
    pub p90: Nanos,
}

/// The latest `course_progress` reading of an entrant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The fix's time.
    pub time: Nanos,
    /// Where they are along the course, metres.
    pub current_m: f64,
    /// The furthest they have been, metres.
    pub progress_m: f64,
    /// Distance to the finish from the furthest point, metres.
    pub to_go_m: f64,
    /// Whether they are off the course.
    pub off_course: bool,
    /// The status at that fix.
    pub status: RideStatus,
    /// The index of the next checkpoint not reached, and the ETA there.
    pub next_checkpoint: Option<(usize, Option<Eta>)>,
    /// The ETA at the finish.
    pub eta_finish: Option<Eta>,
}

impl Progress {
    /// A `course_progress` reading at `time` from its fields (`field(name)`), as stored
    /// (docs/schema.md): ETAs in seconds since 1970. None without `progress_m` or a known
    /// `status`.
    pub fn from_fields(time: Nanos, field: impl Fn(&str) -> Option<f64>) -> Option<Progress> {
        let progress_m = field("progress_m")?;
        let status = RideStatus::from_code(field("status")?)?;
        let eta = |prefix: &str| {
            let at = |p: &str| field(&format!("{prefix}_{p}")).map(|s| (s * 1e9) as Nanos);
            Some(Eta { p10: at("p10")?, p50: at("p50")?, p90: at("p90")? })
        };
        Some(Progress {
            time,
            current_m: field("current_m").unwrap_or(progress_m),
            progress_m,
            to_go_m: field("to_go_m").unwrap_or(0.0),
            off_course: field("off_course") == Some(1.0),
            status,
            next_checkpoint: field("next_checkpoint").map(|i| (i as usize, eta("eta_next"))),
            eta_finish: eta("eta_finish"),
        })
    }
}

/// What a reader holds of one entrant.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The rider.
    pub rider: String,
    /// Their display name.
    pub name: String,
    /// Their start.
    pub start: Nanos,
    /// Their latest progress, if they have a fix since their start.
    pub progress: Option<Progress>,
    /// Their latest change of status and when it began.
    pub status: Option<(RideStatus, Nanos)>,
    /// Checkpoints reached (arrivals, late ones included), when the reader counts them.
    pub checkpoints_reached: Option<u32>,
}

impl Facts {
    /// The status now: the latest change of status (which knows of no-signal and of
    /// scratching, neither of which comes with a fix), else the one at the latest fix.
    fn status(&self) -> Option<RideStatus> {
        match (self.status, self.progress) {
            (Some((s, since)), Some(p))
                if since < p.time
                    && s != p.status
                    && !matches!(s, RideStatus::Finished | RideStatus::Scratched) =>
            {
                Some(p.status)
            }
            (Some((s, _)), _) => Some(s),
            (None, p) => p.map(|p| p.status),
        }
    }

    /// When the rider finished, if they did.
    fn finished(&self) -> Option<Nanos> {
        match self.status {
            Some((RideStatus::Finished, at)) => Some(at),
            _ => None,
        }
    }
}

/// The next checkpoint in a standings row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextCheckpoint {
    /// Its index in the event.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Where it is along the course, metres.
    pub distance_m: f64,
    /// When the rider should get there (epoch ms), if the progress service could tell yet.
    pub eta: Option<EtaMs>,
}

/// An ETA range in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EtaMs {
    /// 10th percentile.
    pub p10: i64,
    /// Median.
    pub p50: i64,
    /// 90th percentile.
    pub p90: i64,
}

impl From<Eta> for EtaMs {
    fn from(e: Eta) -> EtaMs {
        EtaMs { p10: ms(e.p10), p50: ms(e.p50), p90: ms(e.p90) }
    }
}

/// One row of the standings. Distances are to the decimetre and durations to the tenth of
/// a second: a thousand rows go to every follower every second, and more digits would be
/// noise (a fix is good to a few metres).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// The rider.
    pub rider: String,
    /// Their display name.
    pub name: String,
    /// 1 for the leader; none for an entrant without a fix yet or scratched.
    pub rank: Option<u32>,
    /// `riding`, `stopped`, `resting`, `sleeping`, `no_signal`, `finished`, `scratched`, or
    /// `not_started` before the first fix.
    pub status: &'static str,
    /// When that status began (epoch ms).
    pub status_since: Option<i64>,
    /// The furthest they have been along the course, metres (what ranks them).
    pub distance_m: f64,
    /// Where they are along the course now, metres (the map's dot).
    pub current_m: f64,
    /// The point of the course at `current_m`, `[lat, lon]` in degrees to five decimals (a
    /// metre): where the map draws them; none before their first fix.
    pub position: Option<[f64; 2]>,
    /// Distance still to ride from the furthest point, metres.
    pub to_go_m: f64,
    /// Distance behind the leader, metres.
    pub gap_m: Option<f64>,
    /// Time behind the leader, seconds: for finishers the difference of elapsed times; for
    /// the others how much longer (since their own start) they took to reach where they are
    /// than the leader did (since theirs).
    pub gap_s: Option<f64>,
    /// Whether they are off the course.
    pub off_course: bool,
    /// Their latest fix (epoch ms).
    pub last_fix: Option<i64>,
    /// How old it is, seconds, at the time of the answer.
    pub last_fix_age_s: Option<f64>,
    /// The next checkpoint not reached, and its ETA.
    pub next_checkpoint: Option<NextCheckpoint>,
    /// When they should finish (epoch ms).
    pub eta_finish: Option<EtaMs>,
    /// Checkpoints reached, when the reader counts them (the live feed does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints_reached: Option<u32>,
    /// When they finished (epoch ms).
    pub finished: Option<i64>,
    /// Their start (epoch ms).
    pub start: i64,
}

/// Ranks `facts` (the entrants the caller may see) and computes the gaps, as of `now`;
/// `leader_at(d)` is when the leader first reached `d` metres along the course (from
/// [`time_at`] over the leader's race flow), asked only for the leader `ranked` returns.
pub fn standings(
    event: &Event,
    facts: &[Facts],
    now: Nanos,
    leader_at: impl Fn(f64) -> Option<Nanos>,
) -> Vec<Standing> {
    let order = ranked(facts);
    let leader = order.first().map(|&i| &facts[i]).filter(|f| f.progress.is_some() || f.finished().is_some());
    let length = event.length_m();
    let mut rows: Vec<Standing> = Vec::with_capacity(facts.len());
    for (rank, &i) in order.iter().enumerate() {
        let f = &facts[i];
        let mut row = row(event, f, now);
        row.rank = u32::try_from(rank + 1).ok();
        if let Some(leader) = leader {
            let leader_progress = if leader.finished().is_some() {
                length
            } else {
                leader.progress.map_or(0.0, |p| p.progress_m)
            };
            row.gap_m = Some(metres(leader_progress - row.distance_m).max(0.0));
            row.gap_s = match (f.finished(), leader.finished()) {
                (Some(fin), Some(lfin)) => Some(secs((fin - f.start) - (lfin - leader.start))),
                _ => f.progress.and_then(|p| {
                    let reached =
                        if std::ptr::eq(f, leader) { Some(p.time) } else { leader_at(p.progress_m) }?;
                    Some(secs((p.time - f.start) - (reached - leader.start)).max(0.0))
                }),
            };
        }
        rows.push(row);
    }
    let ranked_count = rows.len();
    for (i, f) in facts.iter().enumerate() {
        if !order.contains(&i) {
            rows.push(row(event, f, now));
        }
    }
    // Unranked: not started before scratched, each in file order.
    rows[ranked_count..].sort_by_key(|r| r.status == RideStatus::Scratched.name());
    rows
}

/// The indices of the entrants that are ranked, in rank order.
fn ranked(facts: &[Facts]) -> Vec<usize> {
    let mut finished: Vec<(Nanos, usize)> = Vec::new();
    let mut racing: Vec<(f64, Nanos, usize)> = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        match (f.status(), f.finished(), f.progress) {
            (Some(RideStatus::Scratched), _, _) => {}
            (_, Some(at), _) => finished.push((at - f.start, i)),
            (_, None, Some(p)) => racing.push((p.progress_m, p.time, i)),
            (_, None, None) => {}
        }
    }
    finished.sort_by_key(|&(elapsed, i)| (elapsed, i));
    racing.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    finished.into_iter().map(|(_, i)| i).chain(racing.into_iter().map(|(_, _, i)| i)).collect()
}

/// A row without rank or gaps.
fn row(event: &Event, f: &Facts, now: Nanos) -> Standing {
    let status = f.status();
    let finished = f.finished();
    let length = event.length_m();
    let p = f.progress;
    let next_checkpoint = p.and_then(|p| p.next_checkpoint).and_then(|(index, eta)| {
        let c = event.checkpoints.get(index)?;
        Some(NextCheckpoint {
            index,
            name: c.name.clone(),
            distance_m: metres(c.distance_m),
            eta: eta.map(EtaMs::from),
        })
    });
    let racing = finished.is_none() && status != Some(RideStatus::Scratched);
    let current_m = if finished.is_some() { length } else { p.map_or(0.0, |p| p.current_m) };
    Standing {
        rider: f.rider.clone(),
        name: f.name.clone(),
        rank: None,
        status: status.map_or("not_started", RideStatus::name),
        status_since: match (f.status, p) {
            (Some((s, since)), _) if Some(s) == status => Some(ms(since)),
            _ => None,
        },
        distance_m: metres(if finished.is_some() { length } else { p.map_or(0.0, |p| p.progress_m) }),
        current_m: metres(current_m),
        position: (finished.is_some() || p.is_some()).then(|| {
            let (lat, lon, _) = event.course.position_at(current_m);
            [degrees(lat), degrees(lon)]
        }),
        to_go_m: metres(if finished.is_some() { 0.0 } else { p.map_or(length, |p| p.to_go_m) }),
        gap_m: None,
        gap_s: None,
        off_course: racing && p.is_some_and(|p| p.off_course),
        last_fix: p.map(|p| ms(p.time)),
        last_fix_age_s: p.map(|p| secs(now - p.time).max(0.0)),
        next_checkpoint: if racing { next_checkpoint } else { None },
        eta_finish: if racing { p.and_then(|p| p.eta_finish).map(EtaMs::from) } else { None },
        checkpoints_reached: f.checkpoints_reached,
        finished: finished.map(ms),
        start: ms(f.start),
    }
}

/// When a rider whose race flow is `flow` (points of time and furthest distance, in time
/// order, distances never falling) first reached `distance_m`: interpolated between the
/// points around it; none if they have not.
pub fn time_at(flow: &[FlowPoint], distance_m: f64) -> Option<Nanos> {
    let i = flow.partition_point(|&(_, d)| d < distance_m);
    let &(t, d) = flow.get(i)?;
    let Some(&(t0, d0)) = i.checked_sub(1).and_then(|j| flow.get(j)) else { return Some(t) };
    if d <= d0 {
        return Some(t);
    }
    let share = (distance_m - d0) / (d - d0);
    Some(t0 + ((t - t0) as f64 * share).round() as Nanos)
}

fn ms(ns: Nanos) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Seconds to the tenth: what a follower reads, and no digit more to send a thousand
/// times a second.
fn secs(ns: Nanos) -> f64 {
    (ns as f64 / SECOND * 10.0).round() / 10.0
}

/// Degrees to five decimals, about a metre.
fn degrees(d: f64) -> f64 {
    (d * 1e5).round() / 1e5
}

/// Metres to the decimetre, as the standings give every distance (GPS knows them to a few
/// metres at best).
pub fn metres(m: f64) -> f64 {
    (m * 10.0).round() / 10.0
}
