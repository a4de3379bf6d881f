//! Reading ride files (FIT, GPX, TCX, each optionally gzipped) into validated readings.
//!
//! This is the edge for imported rides: every record of a file becomes at most one reading per
//! metric (`gps`, `heart_rate`, `cadence`, `power`, `temperature`, `distance`), built with
//! [`Reading::known`] so that a file can never carry a value the schema refuses. A refused
//! value is dropped and counted under a stable reason, and the rest of its record still
//! counts. A file that cannot be read whole (corrupt, truncated, not the format its name
//! says) is an error: importing half a ride silently would look like a ride that ended early.
//!
//! What each format gives:
//! - **FIT** (`fitparser`): `record` messages: position (semicircles → degrees), altitude and
//!   speed (the `enhanced_` fields when present), heart rate, cadence (plus
//!   `fractional_cadence`), power, temperature, distance, `gps_accuracy`. Values the device
//!   marked invalid are absent from the decoded message, so they give no reading and are not
//!   counted as skipped.
//! - **GPX** (`gpx`): track and route points: position, elevation, time (and `<speed>` in
//!   GPX 1.0). Garmin's `TrackPointExtension` (heart rate, cadence, air temperature, speed,
//!   course) and a `<power>` extension, which `gpx` does not parse, come from a second pass
//!   with quick-xml. Standalone waypoints (`<wpt>`) are places, not part of the ride, and are
//!   ignored. A point without a time (a planned route) is skipped as `"no time"`.
//! - **TCX** (quick-xml): `Trackpoint`s: time, position, altitude, distance, heart rate,
//!   cadence and the `TPX` extension's speed and watts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use fitparser::de::{FitObject, FitStreamProcessor};
use fitparser::profile::MesgNum;
use fitparser::{FitDataRecord, Value};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use velometry_core::reading::{check_time, Metric, Reading, ReadingError};
use velometry_core::time::{parse_rfc3339, Nanos};

/// The most a gzipped file may grow to when decompressed. The largest real rides are tens of
/// megabytes; the limit keeps a small malicious `.gz` from filling the memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 * 1024 * 1024;

/// A ride file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Garmin's binary Flexible and Interoperable Data Transfer format.
    Fit,
    /// GPS Exchange Format (XML).
    Gpx,
    /// Garmin's Training Center XML.
    Tcx,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Fit => "FIT",
            Format::Gpx => "GPX",
            Format::Tcx => "TCX",
        })
    }
}

/// What one file gave.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReadings {
    /// The file's format.
    pub format: Format,
    /// Records (FIT `record` messages, GPX track and route points, TCX trackpoints) read.
    pub records: usize,
    /// The valid readings, sorted by time; readings at the same time keep the file's order.
    pub readings: Vec<Reading>,
    /// Values or records left out, by reason (`"heart_rate bpm out of range [20, 250]
    /// beats/min"`, `"no time"`), with how many times each happened.
    pub skipped: BTreeMap<String, usize>,
    /// The time of the earliest reading.
    pub first: Option<Nanos>,
    /// The time of the latest reading.
    pub last: Option<Nanos>,
}

/// Why a file could not be read. Every message starts with the file's name.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read from disk.
    #[error("{name}: cannot read the file: {source}")]
    Io {
        /// The file.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Neither the name nor the content tells the format.
    #[error("{name}: unknown format: give a .fit, .gpx or .tcx file (optionally .gz)")]
    UnknownFormat {
        /// The file.
        name: String,
    },
    /// A `.gz` name on data that does not decompress.
    #[error("{name}: not gzip data: {source}")]
    Gzip {
        /// The file.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `.gz` file that decompresses to more than [`MAX_DECOMPRESSED_BYTES`].
    #[error("{name}: larger than {limit} bytes once decompressed")]
    TooLarge {
        /// The file.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// A FIT file header (or the header of a chained FIT file) is not one.
    #[error("{name}: {}", if *at == 0 {
        format!("not a FIT file (bad header: {why})")
    } else {
        format!("corrupt chained FIT file (bad header at byte {at}: {why})")
    })]
    FitHeader {
        /// The file.
        name: String,
        /// Where the header starts.
        at: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The file ends before its data does.
    #[error("{name}: truncated at byte {at} (unexpected end of file)")]
    Truncated {
        /// The file.
        name: String,
        /// Where it ends.
        at: usize,
    },
    /// FIT data the decoder refuses: a bad checksum, a message without a definition.
    #[error("{name}: corrupt FIT data at byte {at}: {detail}")]
    FitCorrupt {
        /// The file.
        name: String,
        /// Where the refused object starts.
        at: usize,
        /// The decoder's reason.
        detail: String,
    },
    /// A `.gpx` file that is not well-formed GPX.
    #[error("{name}: not GPX: {detail}")]
    NotGpx {
        /// The file.
        name: String,
        /// The parser's reason.
        detail: String,
    },
    /// A `.tcx` file that is not well-formed TCX.
    #[error("{name}: not TCX: {detail}")]
    NotTcx {
        /// The file.
        name: String,
        /// The parser's reason.
        detail: String,
    },
}

/// Reads a ride file from disk; see [`read_bytes`].
///
/// # Errors
/// [`FileError::Io`] when the file cannot be read, otherwise as [`read_bytes`]. Messages name
/// the file by `path` as given.
pub fn read(path: &Path, now: Nanos) -> Result<FileReadings, FileError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| FileError::Io { name: name.clone(), source })?;
    read_bytes(&name, &bytes, now)
}

/// Reads a ride file held in memory. The format comes from the name's extension (`.fit`,
/// `.gpx`, `.tcx`, any of them followed by `.gz`, in any case); a name without one of these
/// is read as FIT when the content starts with a FIT header. `now` bounds the readings' times
/// (at most five minutes ahead, as for every reading).
///
/// # Errors
/// [`FileError`] naming the file and the problem: an unknown format, bad gzip data, a FIT
/// header that is not one, a truncated file, corrupt FIT data, XML that is not GPX or TCX.
/// A FIT file cut short is an error even where the part before the cut decodes.
pub fn read_bytes(name: &str, bytes: &[u8], now: Nanos) -> Result<FileReadings, FileError> {
    let lower = name.to_ascii_lowercase();
    let (inner, bytes) = match lower.strip_suffix(".gz") {
        Some(inner) => (inner, Cow::Owned(gunzip(name, bytes)?)),
        None => (lower.as_str(), Cow::Borrowed(bytes)),
    };
    let format = match inner.rsplit_once('.').map(|(_, ext)| ext) {
        Some("fit") => Format::Fit,
        Some("gpx") => Format::Gpx,
        Some("tcx") => Format::Tcx,
        _ if bytes.get(8..12) == Some(b".FIT") => Format::Fit,
        _ => return Err(FileError::UnknownFormat { name: name.to_owned() }),
    };
    let mut out = Collector::new(now);
    match format {
        Format::Fit => read_fit(name, &bytes, &mut out)?,
        Format::Gpx => read_gpx(name, &bytes, &mut out)?,
        Format::Tcx => read_tcx(name, &bytes, &mut out)?,
    }
    Ok(out.finish(format))
}

fn gunzip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    // Multi-member, because `cat a.gz b.gz` is valid gzip and some tools write it.
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| FileError::Gzip { name: name.to_owned(), source })?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(FileError::TooLarge { name: name.to_owned(), limit: MAX_DECOMPRESSED_BYTES });
    }
    Ok(out)
}

/// One record of any format, before validation.
struct Point {
    /// The record's time, or the reason it has none.
    time: Result<Nanos, &'static str>,
    lat: Option<f64>,
    lon: Option<f64>,
    alt: Option<f64>,
    speed: Option<f64>,
    heading: Option<f64>,
    accuracy: Option<f64>,
    bpm: Option<f64>,
    rpm: Option<f64>,
    watts: Option<f64>,
    celsius: Option<f64>,
    meters: Option<f64>,
    /// Values of this record that were not numbers, as skip reasons.
    unreadable: Vec<String>,
}

impl Default for Point {
    fn default() -> Point {
        Point {
            time: Err("no time"),
            lat: None,
            lon: None,
            alt: None,
            speed: None,
            heading: None,
            accuracy: None,
            bpm: None,
            rpm: None,
            watts: None,
            celsius: None,
            meters: None,
            unreadable: Vec::new(),
        }
    }
}

/// Turns points into readings and counts what it leaves out.
struct Collector {
    now: Nanos,
    records: usize,
    readings: Vec<Reading>,
    skipped: BTreeMap<String, usize>,
}

impl Collector {
    fn new(now: Nanos) -> Collector {
        Collector { now, records: 0, readings: Vec::new(), skipped: BTreeMap::new() }
    }

    fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }

    fn add(&mut self, point: Point) {
        self.records += 1;
        let time = match point.time {
            Ok(time) => time,
            Err(reason) => return self.skip(reason),
        };
        // Checked once per record, so that a record stamped in 1970 counts once, not once per
        // metric it carries.
        if let Err(err) = check_time(time, self.now) {
            return self.skip(match err {
                ReadingError::TooOld(_) => "time before 1990-01-01".to_owned(),
                ReadingError::InFuture { .. } => "time more than 5 minutes in the future".to_owned(),
                other => other.to_string(),
            });
        }
        for reason in point.unreadable {
            self.skip(reason);
        }
        match (point.lat, point.lon) {
            (Some(lat), Some(lon)) => {
                let optional = [
                    ("alt", point.alt),
                    ("speed", point.speed),
                    ("heading", point.heading),
                    ("accuracy", point.accuracy),
                ];
                let mut fields = vec![("lat", lat), ("lon", lon)];
                fields.extend(optional.into_iter().filter_map(|(name, v)| Some((name, v?))));
                self.reading(Metric::Gps, time, fields);
            }
            (None, None) => {}
            _ => self.skip("gps position without both lat and lon"),
        }
        let single = [
            (Metric::HeartRate, "bpm", point.bpm),
            (Metric::Cadence, "rpm", point.rpm),
            (Metric::Power, "watts", point.watts),
            (Metric::Temperature, "celsius", point.celsius),
            (Metric::Distance, "meters", point.meters),
        ];
        for (metric, field, value) in single {
            if let Some(value) = value {
                self.reading(metric, time, vec![(field, value)]);
            }
        }
    }

    /// Adds one reading; an optional field the schema refuses is dropped (and counted) so
    /// that a wild altitude does not cost the position.
    fn reading(&mut self, metric: Metric, time: Nanos, mut fields: Vec<(&'static str, f64)>) {
        loop {
            let err = match Reading::known(metric, time, self.now, fields.iter().copied()) {
                Ok(reading) => return self.readings.push(reading),
                Err(err) => err,
            };
            let (field, reason) = match &err {
                ReadingError::OutOfRange { field, min, max, unit, .. } => {
                    (Some(*field), format!("{metric} {field} out of range [{min}, {max}] {unit}"))
                }
                ReadingError::NotFinite { field } => {
                    (metric.field(field).map(|s| s.name), format!("{metric} {field} is not a finite number"))
                }
                other => (None, format!("{metric}: {other}")),
            };
            self.skip(reason);
            match field.and_then(|f| metric.field(f)) {
                Some(spec) if !spec.required => fields.retain(|(name, _)| *name != spec.name),
                _ => return,
            }
        }
    }

    fn finish(mut self, format: Format) -> FileReadings {
        // Stable, so readings at the same time (devices do write two records in one second)
        // keep the order of the file.
        self.readings.sort_by_key(Reading::time);
        FileReadings {
            format,
            records: self.records,
            first: self.readings.first().map(Reading::time),
            last: self.readings.last().map(Reading::time),
            readings: self.readings,
            skipped: self.skipped,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// FIT

fn read_fit(name: &str, bytes: &[u8], out: &mut Collector) -> Result<(), FileError> {
    // fitparser does arithmetic on lengths read from the file and a few of its paths can
    // overflow on hostile input; a bad upload must be an error, never a crashed import.
    let records = std::panic::catch_unwind(|| decode_fit(name, bytes)).unwrap_or_else(|_| {
        Err(FileError::FitCorrupt {
            name: name.to_owned(),
            at: 0,
            detail: "the decoder failed on malformed data".to_owned(),
        })
    })?;
    for record in records.iter().filter(|r| r.kind() == MesgNum::Record) {
        out.add(fit_point(record));
    }
    Ok(())
}

/// Decodes every data message of a FIT file, chained files included. Unlike
/// `fitparser::from_bytes`, which returns what it has when the bytes run out between two
/// messages, a file must end with the checksum its header promised.
fn decode_fit(name: &str, bytes: &[u8]) -> Result<Vec<FitDataRecord>, FileError> {
    if bytes.is_empty() {
        return Err(FileError::FitHeader { name: name.to_owned(), at: 0, why: "the file is empty" });
    }
    let mut processor = FitStreamProcessor::new();
    let mut records = Vec::new();
    let mut rest = bytes;
    let mut at_header = true;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        if at_header {
            check_fit_header(name, rest, at, bytes.len())?;
        }
        let (next, object) =
            processor.deserialize_next(rest).map_err(|e| fit_error(name, *e, at, bytes.len()))?;
        at_header = false;
        match object {
            FitObject::Crc(_) => {
                // The next bytes, if any, are another FIT file with its own definitions.
                processor.reset();
                at_header = true;
            }
            FitObject::DataMessage(message) => {
                // Every message is decoded: any of them may set the base time that the
                // compressed timestamps of the records that follow count from.
                let record =
                    processor.decode_message(message).map_err(|e| fit_error(name, *e, at, bytes.len()))?;
                records.push(record);
            }
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => {}
        }
        rest = next;
    }
    if !at_header {
        return Err(FileError::Truncated { name: name.to_owned(), at: bytes.len() });
    }
    Ok(records)
}

/// Checks a FIT header before fitparser sees it: fitparser computes how many bytes it lacks
/// from the header's first byte, which underflows on short garbage, and it reports a file
/// that ends early only once it runs out in the middle of a message.
fn check_fit_header(name: &str, rest: &[u8], at: usize, len: usize) -> Result<(), FileError> {
    let bad = |why| Err(FileError::FitHeader { name: name.to_owned(), at, why });
    if rest.len() < 12 {
        return bad("shorter than a FIT header");
    }
    if &rest[8..12] != b".FIT" {
        return bad("no \".FIT\" signature");
    }
    let header_size = usize::from(rest[0]);
    if header_size != 12 && header_size != 14 {
        return bad("header size is neither 12 nor 14");
    }
    let data_size = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    if rest.len() < header_size.saturating_add(data_size).saturating_add(2) {
        return Err(FileError::Truncated { name: name.to_owned(), at: len });
    }
    Ok(())
}

fn fit_error(name: &str, err: fitparser::ErrorKind, at: usize, len: usize) -> FileError {
    use fitparser::ErrorKind;
    match err {
        ErrorKind::UnexpectedEof(_) => FileError::Truncated { name: name.to_owned(), at: len },
        ErrorKind::InvalidCrc((_, FitObject::Header(_), expected, computed)) => FileError::FitCorrupt {
            name: name.to_owned(),
            at,
            detail: format!("header checksum {expected:#06x} does not match the header ({computed:#06x})"),
        },
        ErrorKind::InvalidCrc((_, _, expected, computed)) => FileError::FitCorrupt {
            name: name.to_owned(),
            at,
            detail: format!("data checksum {expected:#06x} does not match the data ({computed:#06x})"),
        },
        other => FileError::FitCorrupt { name: name.to_owned(), at, detail: other.to_string() },
    }
}

fn fit_point(record: &FitDataRecord) -> Point {
    // The first field of a name: fitparser lists the profile's fields before developer
    // fields, which may reuse a profile name for something else.
    let field = |name: &str| record.fields().iter().find(|f| f.name() == name).map(|f| f.value());
    let number = |name: &str| field(name).and_then(fit_number);
    let semicircles = |name: &str| number(name).map(|v| v * 180.0 / 2_147_483_648.0);
    Point {
        time: match field("timestamp") {
            Some(Value::Timestamp(t)) => t.timestamp_nanos_opt().ok_or("time out of range"),
            _ => Err("no time"),
        },
        lat: semicircles("position_lat"),
        lon: semicircles("position_long"),
        // The enhanced fields are 32-bit versions of the 16-bit ones; fitparser expands the
        // 16-bit ones into them, so a file has one or the other.
        alt: number("enhanced_altitude").or_else(|| number("altitude")),
        speed: number("enhanced_speed").or_else(|| number("speed")),
        heading: None,
        accuracy: number("gps_accuracy"),
        bpm: number("heart_rate"),
        rpm: number("cadence").map(|rpm| rpm + number("fractional_cadence").unwrap_or(0.0)),
        watts: number("power"),
        celsius: number("temperature"),
        meters: number("distance"),
        unreadable: Vec::new(),
    }
}

fn fit_number(value: &Value) -> Option<f64> {
    Some(match *value {
        Value::SInt8(v) => f64::from(v),
        Value::UInt8(v) | Value::UInt8z(v) => f64::from(v),
        Value::SInt16(v) => f64::from(v),
        Value::UInt16(v) | Value::UInt16z(v) => f64::from(v),
        Value::SInt32(v) => f64::from(v),
        Value::UInt32(v) | Value::UInt32z(v) => f64::from(v),
        Value::SInt64(v) => v as f64,
        Value::UInt64(v) | Value::UInt64z(v) => v as f64,
        Value::Float32(v) => f64::from(v),
        Value::Float64(v) => v,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// XML (GPX extensions, TCX)

/// What the XML walk saw, with the path of local names (namespace prefixes dropped) down to
/// the element it concerns.
enum Node<'a> {
    Open,
    Text(&'a str),
    Close,
}

/// Walks an XML document, calling `visit` for every element opened, text and element closed.
///
/// # Errors
/// The reason, with its byte offset, when the document is not well-formed XML, ends inside an
/// element, has no element at all, or `visit` refuses it.
fn walk_xml(
    bytes: &[u8],
    mut visit: impl FnMut(&[Vec<u8>], Node<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    reader.config_mut().expand_empty_elements = true;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut seen_element = false;
    loop {
        let event =
            reader.read_event().map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(element) => {
                seen_element = true;
                path.push(element.local_name().as_ref().to_vec());
                visit(&path, Node::Open)?;
            }
            Event::End(_) => {
                visit(&path, Node::Close)?;
                path.pop();
            }
            Event::Text(text) if !path.is_empty() => {
                let text = text
                    .unescape()
                    .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
                visit(&path, Node::Text(&text))?;
            }
            Event::CData(text) if !path.is_empty() => {
                let text = text
                    .decode()
                    .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
                visit(&path, Node::Text(&text))?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = path.last() {
        return Err(format!("unexpected end of file inside <{}>", String::from_utf8_lossy(open)));
    }
    if !seen_element {
        return Err("no XML element".to_owned());
    }
    Ok(())
}

/// Parses a number from XML text into `slot`, or records why it is not one.
fn xml_number(slot: &mut Option<f64>, unreadable: &mut Vec<String>, what: &str, text: &str) {
    match text.trim().parse::<f64>() {
        Ok(v) => *slot = Some(v),
        Err(_) => unreadable.push(format!("{what} is not a number")),
    }
}

/// The local name of the element `n` levels above the innermost one.
fn up(path: &[Vec<u8>], n: usize) -> &[u8] {
    path.len().checked_sub(n + 1).map_or(&[], |i| path[i].as_slice())
}

// ---------------------------------------------------------------------------------------------
// GPX

fn read_gpx(name: &str, bytes: &[u8], out: &mut Collector) -> Result<(), FileError> {
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
                    b"power" => (&mut point.watts, "power watts"),
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

// ---------------------------------------------------------------------------------------------
// TCX

fn read_tcx(name: &str, bytes: &[u8], out: &mut Collector) -> Result<(), FileError> {
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

#[cfg(test)]
mod tests;
