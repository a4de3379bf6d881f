//! GPX (through `gpx`, its extensions through quick-xml) and TCX (quick-xml), walked with
//! [`velometry_core::files::xml`].

use velometry_core::files::xml::{up, walk as walk_xml, Node};

use super::*;

/// Parses a number from XML text into `slot`, or records why it is not one.
fn xml_number(slot: &mut Option<f64>, unreadable: &mut Vec<String>, what: &str, text: &str) {
    match text.trim().parse::<f64>() {
        Ok(v) => *slot = Some(v),
        Err(_) => unreadable.push(format!("{what} is not a number")),
    }
}

// GPX

pub(super) fn read_gpx(name: &str, bytes: &[u8], out: &mut Collector) -> Result<(), FileError> {
    let not_gpx = |detail: String| FileError::NotGpx { name: name.to_owned(), detail };
    let gpx = gpx::read(bytes).map_err(|e| not_gpx(e.to_string()))?;
    let extensions = gpx_extensions(bytes).map_err(not_gpx)?;
    let track_points = gpx.tracks.iter().flat_map(|t| &t.segments).flat_map(|s| &s.points);
    let count = track_points.clone().count();
    if count != extensions.len() {
        return Err(not_gpx(format!(
            "{count} track points, but {} <trkpt> elements in the document",
            extensions.len()
        )));
    }
    let route_points = gpx.routes.iter().flat_map(|r| &r.points).map(|p| (p, Point::default()));
    for (waypoint, mut point) in track_points.zip(extensions).chain(route_points) {
        point.time = match waypoint.time {
            // gpx keeps times as `time::OffsetDateTime`; its RFC 3339 form is exact to the
            // nanosecond and spares the collector a second date-time crate.
            Some(t) => t.format().ok().and_then(|s| parse_rfc3339(&s).ok()).ok_or("unreadable time"),
            None => Err("no time"),
        };
        let position = waypoint.point();
        point.lat = Some(position.y());
        point.lon = Some(position.x());
        point.alt = waypoint.elevation;
        point.speed = waypoint.speed.or(point.speed);
        out.add(point);
    }
    Ok(())
}

/// The extension values of every `<trkpt>`, in document order (the order in which `gpx`
/// lists tracks, segments and points).
fn gpx_extensions(bytes: &[u8]) -> Result<Vec<Point>, String> {
    let mut points: Vec<Point> = Vec::new();
    let mut depth_of_trkpt = None;
    walk_xml(bytes, |path, node| {
        match node {
            Node::Open if path.last().is_some_and(|n| n == b"trkpt") => {
                depth_of_trkpt = Some(path.len());
                points.push(Point::default());
            }
            Node::Close if depth_of_trkpt == Some(path.len()) => depth_of_trkpt = None,
            Node::Text(text) => {
                let (Some(depth), Some(point)) = (depth_of_trkpt, points.last_mut()) else {
                    return Ok(());
                };
                if !path[depth..].iter().any(|n| n == b"extensions") {
                    return Ok(());
                }
                let (slot, what) = match up(path, 0) {
                    b"hr" => (&mut point.bpm, "heart_rate bpm"),
                    b"cad" => (&mut point.rpm, "cadence rpm"),
                    b"atemp" => (&mut point.celsius, "temperature celsius"),
                    // Garmin's PowerExtension (what velometry's export writes), or the bare
                    // `<power>` Strava and older tools write.
                    b"PowerInWatts" | b"power" => (&mut point.watts, "power watts"),
                    b"speed" => (&mut point.speed, "gps speed"),
                    b"course" => (&mut point.heading, "gps heading"),
                    _ => return Ok(()),
                };
                xml_number(slot, &mut point.unreadable, what, text);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(points)
}

// TCX

pub(super) fn read_tcx(name: &str, bytes: &[u8], out: &mut Collector) -> Result<(), FileError> {
    let mut current: Option<Point> = None;
    walk_xml(bytes, |path, node| {
        match node {
            Node::Open if path.len() == 1 && path[0] != b"TrainingCenterDatabase" => {
                return Err(format!(
                    "the root element is <{}>, not <TrainingCenterDatabase>",
                    String::from_utf8_lossy(&path[0])
                ));
            }
            Node::Open if path.last().is_some_and(|n| n == b"Trackpoint") => {
                current = Some(Point::default());
            }
            Node::Close if path.last().is_some_and(|n| n == b"Trackpoint") => {
                if let Some(point) = current.take() {
                    out.add(point);
                }
            }
            Node::Text(text) => {
                let Some(point) = current.as_mut() else { return Ok(()) };
                let (slot, what) = match (up(path, 1), up(path, 0)) {
                    (b"Trackpoint", b"Time") => {
                        point.time = parse_rfc3339(text.trim()).map_err(|_| "unreadable time");
                        return Ok(());
                    }
                    (b"Position", b"LatitudeDegrees") => (&mut point.lat, "gps lat"),
                    (b"Position", b"LongitudeDegrees") => (&mut point.lon, "gps lon"),
                    (b"Trackpoint", b"AltitudeMeters") => (&mut point.alt, "gps alt"),
                    (b"Trackpoint", b"DistanceMeters") => (&mut point.meters, "distance meters"),
                    (b"Trackpoint", b"Cadence") => (&mut point.rpm, "cadence rpm"),
                    (b"HeartRateBpm", b"Value") => (&mut point.bpm, "heart_rate bpm"),
                    (b"TPX", b"Speed") => (&mut point.speed, "gps speed"),
                    (b"TPX", b"Watts") => (&mut point.watts, "power watts"),
                    _ => return Ok(()),
                };
                xml_number(slot, &mut point.unreadable, what, text);
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|detail| FileError::NotTcx { name: name.to_owned(), detail })
}
