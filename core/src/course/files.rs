//! Course files: the planned route of an event, with its waypoints, read from what route
//! planners and bike computers export.
//!
//! - **GPX** (`gpx`): the points of every track, segment after segment, in file order; a
//!   file without track points gives its routes' points instead (a planned route, `<rte>`).
//!   Its waypoints are the file's `<wpt>`s, with their `<name>`.
//! - **TCX** (quick-xml): every `Trackpoint` with a position (a `Course`, or a recorded
//!   `Activity` used as a course); waypoints are its `CoursePoint`s.
//! - **FIT** (`fitparser`): the position of every `record` message (a course file, or a
//!   recorded activity); waypoints are its `course_point` messages.
//!
//! Any of them may be gzipped (`.gz` after the extension). Points without a position (a
//! recording before the first fix) are left out; points repeating the one before are merged
//! by [`Course::new`]. Every error names the file and what is wrong in it.

use std::path::Path;

use fitparser::profile::MesgNum;
use fitparser::Value;

use crate::course::{Course, CourseError};
use crate::files::fit::{self, FitError};
use crate::files::xml::{self, Node};
use crate::files::{format_of_name, gunzip, sniff, Format, GzipError};

/// A named place a course file marks: a GPX waypoint, a TCX or FIT course point.
#[derive(Debug, Clone, PartialEq)]
pub struct Waypoint {
    /// Its name in the file (`waypoint N`, counting from 1, when the file gives none).
    pub name: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

/// What a course file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseFile {
    /// The file's format.
    pub format: Format,
    /// The course's name in the file, if it gives one.
    pub name: Option<String>,
    /// The course.
    pub course: Course,
    /// Its waypoints, in file order.
    pub waypoints: Vec<Waypoint>,
}

/// Why a course file cannot be used. Every message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum CourseFileError {
    /// The file cannot be read from disk.
    #[error("{path}: cannot read the course file: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Neither the name nor the content tells the format.
    #[error("{path}: unknown format: give a .gpx, .tcx or .fit course file (optionally .gz)")]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// A `.gz` file that does not decompress.
    #[error("{path}: {source}")]
    Gzip {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: GzipError,
    },
    /// FIT data that cannot be read, or a FIT file cut short.
    #[error("{path}: {source}")]
    Fit {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: FitError,
    },
    /// XML that is not GPX or TCX, or a value in it that is not what it should be.
    #[error("{path}: not {format}: {detail}")]
    NotFormat {
        /// The file.
        path: String,
        /// What the name says it is.
        format: Format,
        /// The parser's reason.
        detail: String,
    },
    /// The points do not make a course, or a waypoint is no position.
    #[error("{path}: {detail}")]
    NoCourse {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// Reads a course file; see [`read_bytes`].
///
/// # Errors
/// [`CourseFileError::Io`] when the file cannot be read, otherwise as [`read_bytes`].
pub fn read(path: &Path) -> Result<CourseFile, CourseFileError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CourseFileError::Io { path: name.clone(), source })?;
    read_bytes(&name, &bytes)
}

/// Reads a course file held in memory, its format from the name's extension (`.gpx`, `.tcx`,
/// `.fit`, any followed by `.gz`), or FIT when the content starts with a FIT header.
///
/// # Errors
/// [`CourseFileError`] naming the file and the problem: an unknown format, bad gzip or FIT
/// data, a FIT file cut short, XML that is not GPX or TCX, fewer than two distinct positions,
/// a position or waypoint out of range.
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<CourseFile, CourseFileError> {
    let path = || name.to_owned();
    let (format, gzipped) = format_of_name(name);
    let bytes = if gzipped {
        std::borrow::Cow::Owned(
            gunzip(bytes).map_err(|source| CourseFileError::Gzip { path: path(), source })?,
        )
    } else {
        std::borrow::Cow::Borrowed(bytes)
    };
    let format =
        format.or_else(|| sniff(&bytes)).ok_or_else(|| CourseFileError::UnknownFormat { path: path() })?;
    let parsed = match format {
        Format::Gpx => read_gpx(&bytes),
        Format::Tcx => read_tcx(&bytes),
        Format::Fit => read_fit(&bytes).map_err(|source| CourseFileError::Fit { path: path(), source })?,
    }
    .map_err(|detail| CourseFileError::NotFormat { path: path(), format, detail })?;
    let no_course = |detail: String| CourseFileError::NoCourse { path: path(), detail };
    let course = Course::new(parsed.points).map_err(|e| {
        no_course(match e {
            CourseError::TooShort(_) => format!("{e}: is there a track or route in it?"),
            CourseError::BadPoint { .. } => e.to_string(),
        })
    })?;
    let mut waypoints = Vec::with_capacity(parsed.waypoints.len());
    for (i, (name, lat, lon)) in parsed.waypoints.into_iter().enumerate() {
        let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let name = name.unwrap_or_else(|| format!("waypoint {}", i + 1));
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(no_course(format!("waypoint {name:?} is not a position: lat {lat}, lon {lon}")));
        }
        waypoints.push(Waypoint { name, lat, lon });
    }
    Ok(CourseFile { format, name: parsed.name, course, waypoints })
}

/// Writes a course and its waypoints as GPX 1.1 (one track of one segment, elevations where
/// the course has them), as route planners export courses: what the project's own example
/// and test courses are made with.
///
/// # Errors
/// What the `gpx` writer says (it writes to memory, so only a value it cannot write).
pub fn to_gpx(name: &str, course: &Course, waypoints: &[Waypoint]) -> Result<Vec<u8>, gpx::errors::GpxError> {
    let point = |lat: f64, lon: f64, ele: Option<f64>| {
        let mut w = gpx::Waypoint::new(geo_types::Point::new(lon, lat));
        w.elevation = ele;
        w
    };
    let mut segment = gpx::TrackSegment::new();
    segment.points = course.points().iter().map(|p| point(p.lat, p.lon, p.ele)).collect();
    let mut track = gpx::Track::new();
    track.name = Some(name.to_owned());
    track.segments.push(segment);
    let gpx = gpx::Gpx {
        version: gpx::GpxVersion::Gpx11,
        creator: Some("velometry".to_owned()),
        tracks: vec![track],
        waypoints: waypoints
            .iter()
            .map(|w| {
                let mut wpt = point(w.lat, w.lon, None);
                wpt.name = Some(w.name.clone());
                wpt
            })
            .collect(),
        ..gpx::Gpx::default()
    };
    let mut out = Vec::new();
    gpx::write(&gpx, &mut out)?;
    Ok(out)
}

/// A course file's content before validation.
#[derive(Default)]
struct Parsed {
    name: Option<String>,
    points: Vec<(f64, f64, Option<f64>)>,
    waypoints: Vec<(Option<String>, f64, f64)>,
}

fn read_gpx(bytes: &[u8]) -> Result<Parsed, String> {
    let gpx = gpx::read(bytes).map_err(|e| e.to_string())?;
    let position = |w: &gpx::Waypoint| {
        let p = w.point();
        (p.y(), p.x(), w.elevation)
    };
    let mut points: Vec<_> =
        gpx.tracks.iter().flat_map(|t| &t.segments).flat_map(|s| &s.points).map(position).collect();
    let mut name = gpx.tracks.iter().find_map(|t| t.name.clone());
    if points.is_empty() {
        points = gpx.routes.iter().flat_map(|r| &r.points).map(position).collect();
        name = gpx.routes.iter().find_map(|r| r.name.clone());
    }
    let name = name.or_else(|| gpx.metadata.as_ref().and_then(|m| m.name.clone()));
    let waypoints = gpx
        .waypoints
        .iter()
        .map(|w| {
            let (lat, lon, _) = position(w);
            (w.name.clone(), lat, lon)
        })
        .collect();
    Ok(Parsed { name, points, waypoints })
}

/// One TCX `Trackpoint` or `CoursePoint` being read.
#[derive(Default)]
struct TcxPoint {
    name: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    ele: Option<f64>,
}

fn read_tcx(bytes: &[u8]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut current: Option<TcxPoint> = None;
    let mut trackpoints = 0;
    xml::walk(bytes, |path, node| {
        let here = xml::up(path, 0);
        match node {
            Node::Open if path.len() == 1 && here != b"TrainingCenterDatabase" => {
                return Err(format!(
                    "the root element is <{}>, not <TrainingCenterDatabase>",
                    String::from_utf8_lossy(here)
                ));
            }
            Node::Open if here == b"Trackpoint" || here == b"CoursePoint" => {
                current = Some(TcxPoint::default())
            }
            Node::Close if here == b"Trackpoint" => {
                trackpoints += 1;
                if let Some(TcxPoint { lat: Some(lat), lon: Some(lon), ele, .. }) = current.take() {
                    out.points.push((lat, lon, ele));
                }
            }
            Node::Close if here == b"CoursePoint" => {
                if let Some(point) = current.take() {
                    let (Some(lat), Some(lon)) = (point.lat, point.lon) else {
                        return Err(format!(
                            "CoursePoint {:?} has no position",
                            point.name.unwrap_or_default()
                        ));
                    };
                    out.waypoints.push((point.name, lat, lon));
                }
            }
            Node::Text(text) => {
                let parent = xml::up(path, 1);
                if parent == b"Course" && here == b"Name" && out.name.is_none() {
                    out.name = Some(text.to_owned());
                    return Ok(());
                }
                let Some(point) = current.as_mut() else { return Ok(()) };
                let slot = match (parent, here) {
                    (b"CoursePoint", b"Name") => {
                        point.name = Some(text.to_owned());
                        return Ok(());
                    }
                    (b"Position", b"LatitudeDegrees") => &mut point.lat,
                    (b"Position", b"LongitudeDegrees") => &mut point.lon,
                    (b"Trackpoint" | b"CoursePoint", b"AltitudeMeters") => &mut point.ele,
                    _ => return Ok(()),
                };
                let value = text.trim().parse::<f64>().map_err(|_| {
                    format!(
                        "{} {text:?} of trackpoint {} is not a number",
                        String::from_utf8_lossy(here),
                        trackpoints + 1
                    )
                })?;
                *slot = Some(value);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn read_fit(bytes: &[u8]) -> Result<Result<Parsed, String>, FitError> {
    let decoded = fit::decode(bytes)?;
    if let Some((at, expected)) = decoded.cut {
        return Ok(Err(format!(
            "cut short at byte {at} of the {expected} its header promises: a course must be whole"
        )));
    }
    let mut out = Parsed::default();
    let text = |record: &fitparser::FitDataRecord, name: &str| {
        record.fields().iter().find(|f| f.name() == name).and_then(|f| match f.value() {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
    };
    for record in &decoded.records {
        let position = fit::number(record, "position_lat")
            .zip(fit::number(record, "position_long"))
            .map(|(lat, lon)| (fit::degrees(lat), fit::degrees(lon)));
        match record.kind() {
            MesgNum::Record => {
                if let Some((lat, lon)) = position {
                    let ele =
                        fit::number(record, "enhanced_altitude").or_else(|| fit::number(record, "altitude"));
                    out.points.push((lat, lon, ele));
                }
            }
            MesgNum::CoursePoint => {
                let name = text(record, "name");
                let Some((lat, lon)) = position else {
                    return Ok(Err(format!("course point {:?} has no position", name.unwrap_or_default())));
                };
                out.waypoints.push((name, lat, lon));
            }
            MesgNum::Course if out.name.is_none() => out.name = text(record, "name"),
            _ => {}
        }
    }
    Ok(Ok(out))
}

#[cfg(test)]
mod tests;
