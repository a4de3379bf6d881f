//! The `[[event]]` and `[[organiser]]` tables of the riders file, checked into
//! [`Event`]s and [`Organiser`]s: course files read (relative to the riders file), checkpoints
//! placed along the course, a start for every entrant. Every message names the event (or the
//! organiser) and the field.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{Organiser, Service, Visible};
use crate::course::files::CourseFile;
use crate::event::{place, Checkpoint, Cutoff, Entrant, Event, MAX_CHECKPOINT_OFF_COURSE_M};
use crate::ids::{EventId, OrganiserId, RiderId, ServiceId};
use crate::time::Nanos;

/// A time as the file gives it: a TOML date-time (`start = 2026-07-26T22:00:00+02:00`) or a
/// string holding one.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawTime {
    Toml(toml::value::Datetime),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    id: EventId,
    name: Option<String>,
    course: String,
    start: Option<RawTime>,
    #[serde(default)]
    starts: BTreeMap<String, RawTime>,
    riders: Vec<String>,
    #[serde(default)]
    public: bool,
    checkpoints: Option<String>,
    #[serde(default)]
    checkpoint: Vec<RawCheckpoint>,
    cutoff: Option<RawTime>,
    cutoff_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    name: Option<String>,
    waypoint: Option<String>,
    distance_km: Option<f64>,
    lat: Option<f64>,
    lon: Option<f64>,
    cutoff: Option<RawTime>,
    cutoff_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrganiser {
    pub(super) id: OrganiserId,
    name: Option<String>,
    pub(super) token_sha256: String,
    events: Vec<String>,
}

/// An instant with its UTC offset, from the file.
fn instant(raw: &RawTime) -> Result<Nanos, String> {
    let text = match raw {
        RawTime::Toml(t) => t.to_string(),
        RawTime::Text(t) => t.trim().to_owned(),
    };
    let parsed = chrono::DateTime::parse_from_rfc3339(&text).map_err(|_| {
        if chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
            format!("{text} has no UTC offset: write {text}Z for UTC, or the local offset, e.g. {text}+02:00")
        } else {
            format!("{text:?} is not an RFC 3339 date and time, e.g. 2026-07-26T22:00:00+02:00")
        }
    })?;
    parsed.timestamp_nanos_opt().ok_or_else(|| format!("{text} is out of range"))
}

/// A cut-off from its two forms, of which at most one may be given.
fn cutoff(at: Option<&RawTime>, after: Option<&str>) -> Result<Option<Cutoff>, String> {
    match (at, after) {
        (Some(_), Some(_)) => Err("give cutoff or cutoff_after, not both".into()),
        (Some(at), None) => Ok(Some(Cutoff::At(instant(at).map_err(|e| format!("cutoff: {e}"))?))),
        (None, Some(after)) => {
            let d = humantime::parse_duration(after).map_err(|e| {
                format!("cutoff_after: {after:?} is not a duration like \"90h\" or \"3d 12h\": {e}")
            })?;
            Ok(Some(Cutoff::AfterStart(d)))
        }
        (None, None) => Ok(None),
    }
}

/// Checks one `[[event]]`: `riders` are the ids of the file's riders, `load` reads a course
/// file (a path relative to the riders file's folder).
pub(super) fn event(
    raw: RawEvent,
    riders: &HashSet<&RiderId>,
    dir: &Path,
    load: &dyn Fn(&Path) -> Result<CourseFile, String>,
) -> Result<Event, String> {
    let id = raw.id.clone();
    let at = |field: &str, e: String| format!("event {:?}: {field}: {e}", id.as_str());
    let course_file = dir.join(&raw.course);
    let file = load(&course_file).map_err(|e| at("course", e))?;
    let course = Arc::new(file.course);

    let mass_start = raw.start.as_ref().map(instant).transpose().map_err(|e| at("start", e))?;
    let mut entrants: Vec<Entrant> = Vec::with_capacity(raw.riders.len());
    for name in &raw.riders {
        let rider = RiderId::parse(name).map_err(|e| at("riders", e.to_string()))?;
        if !riders.contains(&rider) {
            return Err(at(
                "riders",
                format!("{name:?} is not a rider of this file (add a [[rider]] for them)"),
            ));
        }
        if entrants.iter().any(|e| e.rider == rider) {
            return Err(at("riders", format!("{name:?} is entered twice")));
        }
        let start = match raw.starts.get(name) {
            Some(own) => instant(own).map_err(|e| at(&format!("starts.{name}"), e))?,
            None => mass_start.ok_or_else(|| {
                at("start", format!("rider {name:?} has no start: give the mass start (start = …) or theirs (starts.{name} = …)"))
            })?,
        };
        entrants.push(Entrant { rider, start });
    }
    if let Some(stranger) = raw.starts.keys().find(|k| !raw.riders.contains(k)) {
        return Err(at("starts", format!("{stranger:?} is not in riders")));
    }

    let listed = !raw.checkpoint.is_empty();
    let wanted: Vec<RawCheckpoint> = match raw.checkpoints.as_deref() {
        None => raw.checkpoint,
        Some("waypoints") if listed => {
            return Err(at(
                "checkpoints",
                "\"waypoints\" takes every waypoint of the course file; with [[event.checkpoint]] tables too, \
                 list the waypoints you want as checkpoints there (waypoint = \"…\") and drop checkpoints = \"waypoints\""
                    .into(),
            ))
        }
        Some("waypoints") if file.waypoints.is_empty() => {
            return Err(at("checkpoints", format!("{} has no waypoints", course_file.display())))
        }
        Some("waypoints") => file
            .waypoints
            .iter()
            .map(|w| RawCheckpoint {
                name: None,
                waypoint: Some(w.name.clone()),
                distance_km: None,
                lat: None,
                lon: None,
                cutoff: None,
                cutoff_after: None,
            })
            .collect(),
        Some(other) => {
            return Err(at("checkpoints", format!("{other:?}: the only value is \"waypoints\" (or list [[event.checkpoint]] tables)")))
        }
    };

    let mut checkpoints: Vec<Checkpoint> = Vec::with_capacity(wanted.len());
    for (i, c) in wanted.into_iter().enumerate() {
        let label = c.name.clone().or_else(|| c.waypoint.clone()).unwrap_or_else(|| format!("#{}", i + 1));
        let field = format!("checkpoint {label:?}");
        let name =
            c.name.clone().or_else(|| c.waypoint.clone()).ok_or_else(|| at(&field, "needs a name".into()))?;
        if checkpoints.iter().any(|p| p.name == name) {
            return Err(at(&field, "two checkpoints have this name".into()));
        }
        let after = checkpoints.last().map_or(0.0, |p| p.distance_m);
        let near = |lat: f64, lon: f64, what: &str| {
            place(&course, lat, lon, after, MAX_CHECKPOINT_OFF_COURSE_M).map_err(|nearest| {
                let past = checkpoints.last().map_or(String::new(), |p| format!(" after checkpoint {:?}", p.name));
                at(
                    &field,
                    format!(
                        "{what} is {:.1} km from the course{past}, more than the {} m a checkpoint may be off it \
                         (checkpoints are listed in riding order; give distance_km to place one exactly)",
                        nearest / 1_000.0,
                        MAX_CHECKPOINT_OFF_COURSE_M
                    ),
                )
            })
        };
        let placed = match (c.waypoint.as_deref(), c.distance_km, c.lat, c.lon) {
            (Some(w), None, None, None) => {
                let waypoint = file.waypoints.iter().find(|p| p.name == w).ok_or_else(|| {
                    let names: Vec<&str> = file.waypoints.iter().map(|p| p.name.as_str()).collect();
                    at(&field, format!("{} has no waypoint {w:?} (it has {names:?})", course_file.display()))
                })?;
                near(waypoint.lat, waypoint.lon, &format!("waypoint {w:?}"))?
            }
            (None, Some(km), None, None) => {
                let length = course.length_m();
                if !(0.0..=length / 1_000.0).contains(&km) {
                    return Err(at(
                        &field,
                        format!("distance_km {km} is not on the course (0 to {:.3} km)", length / 1_000.0),
                    ));
                }
                crate::event::Placed { distance_m: km * 1_000.0, off_course_m: 0.0 }
            }
            (None, None, Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(at(&field, format!("lat {lat}, lon {lon} is not a position")));
                }
                near(lat, lon, "the position")?
            }
            _ => return Err(at(&field, "give exactly one of waypoint, distance_km, or lat and lon".into())),
        };
        if let Some(previous) = checkpoints.last() {
            if placed.distance_m <= previous.distance_m {
                return Err(at(
                    &field,
                    format!(
                        "at km {:.3}, it is not after checkpoint {:?} (km {:.3}): list checkpoints in the order riders reach them",
                        placed.distance_m / 1_000.0,
                        previous.name,
                        previous.distance_m / 1_000.0
                    ),
                ));
            }
        }
        let cutoff = cutoff(c.cutoff.as_ref(), c.cutoff_after.as_deref()).map_err(|e| at(&field, e))?;
        let (lat, lon, _) = course.position_at(placed.distance_m);
        checkpoints.push(Checkpoint {
            name,
            distance_m: placed.distance_m,
            lat,
            lon,
            off_course_m: placed.off_course_m,
            cutoff,
        });
    }
    let finish_cutoff =
        cutoff(raw.cutoff.as_ref(), raw.cutoff_after.as_deref()).map_err(|e| at("finish", e))?;
    Ok(Event {
        name: raw.name.unwrap_or_else(|| id.to_string()),
        id,
        public: raw.public,
        course_file,
        course,
        waypoints: file.waypoints,
        checkpoints,
        finish_cutoff,
        entrants,
    })
}

/// Checks one `[[organiser]]` against the events of the file.
pub(super) fn organiser(raw: &RawOrganiser, events: &[Event]) -> Result<Organiser, String> {
    let at = |e: String| format!("organiser {:?}: events: {e}", raw.id.as_str());
    let scope = scope(&raw.events, events, "they organise").map_err(at)?;
    Ok(Organiser {
        id: raw.id.clone(),
        name: raw.name.clone().unwrap_or_else(|| raw.id.to_string()),
        events: scope,
    })
}

/// The events a `[[service]]` derives readings for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) id: ServiceId,
    pub(super) token_sha256: String,
    events: Vec<String>,
}

/// Checks one `[[service]]` against the events of the file.
pub(super) fn service(raw: &RawService, events: &[Event]) -> Result<Service, String> {
    let at = |e: String| format!("service {:?}: events: {e}", raw.id.as_str());
    Ok(Service { id: raw.id.clone(), events: scope(&raw.events, events, "it serves").map_err(at)? })
}

/// `["*"]` or event ids of the file.
fn scope(names: &[String], events: &[Event], what: &str) -> Result<Visible<EventId>, String> {
    if names.iter().any(|e| e == "*") {
        return Ok(Visible::All);
    }
    if names.is_empty() {
        return Err(format!("lists no event: give the events {what}, or [\"*\"]"));
    }
    let mut ids = Vec::new();
    for name in names {
        let id = EventId::parse(name).map_err(|e| e.to_string())?;
        if !events.iter().any(|e| e.id == id) {
            return Err(format!("{name:?} is not an event of this file"));
        }
        ids.push(id);
    }
    Ok(Visible::Only(ids))
}
