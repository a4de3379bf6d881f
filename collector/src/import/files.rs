//! Reading ride files (FIT, GPX, TCX, each optionally gzipped) into validated readings.
//!
//! This is the edge for imported rides: every record of a file becomes at most one reading per
//! metric (`gps`, `heart_rate`, `cadence`, `power`, `temperature`, `distance`), built with
//! [`Reading::known`] so that a file can never carry a value the schema refuses. A refused
//! value is dropped and counted under a stable reason, and the rest of its record still
//! counts. A file that cannot be read (corrupt, not the format its name says) is an error. A
//! FIT file cut short — a bike computer that crashed or lost power mid-ride — gives every
//! record before the cut, and [`FileReadings::damage`] says what was lost, so the ride is not
//! lost whole and yet never looks like a ride that simply ended early.
//!
//! What each format gives:
//! - **FIT** (`fitparser`): `record` messages: position (semicircles → degrees), altitude and
//!   speed (the `enhanced_` fields when present), heart rate, cadence (plus
//!   `fractional_cadence`), power, temperature, distance, `gps_accuracy`. Values the device
//!   marked invalid are absent from the decoded message, so they give no reading and are not
//!   counted as skipped.
//! - **GPX** (`gpx`): track and route points: position, elevation, time (and `<speed>` in
//!   GPX 1.0). Garmin's `TrackPointExtension` (heart rate, cadence, air temperature, speed,
//!   course) and power (Garmin's PowerExtension `PowerInWatts`, as velometry's export writes
//!   it, or a bare `<power>`), which `gpx` does not parse, come from a second pass with
//!   quick-xml. Standalone waypoints (`<wpt>`) are places, not part of the ride, and are
//!   ignored. A point without a time (a planned route) is skipped as `"no time"`.
//! - **TCX** (quick-xml): `Trackpoint`s: time, position, altitude, distance, heart rate,
//!   cadence and the `TPX` extension's speed and watts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use velometry_core::files::{format_of_name, gunzip, sniff, GzipError};
use velometry_core::reading::{check_time, Metric, Reading, ReadingError};
use velometry_core::time::{parse_rfc3339, Nanos};

use self::fit::read_fit;
use self::xml::{read_gpx, read_tcx};

mod fit;
mod xml;

pub use velometry_core::files::{Format, MAX_DECOMPRESSED_BYTES};

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
    /// Where a FIT file cut short ends, when it is one: its records up to there are read.
    pub damage: Option<Damage>,
}

/// What a FIT file cut short lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// The first byte not read: records from here on are lost (the part of a record that is
    /// there, and everything after it).
    pub at: usize,
    /// How long the file should be, as its header says.
    pub expected_bytes: usize,
    /// Bytes of the ride not read: `expected_bytes - at`.
    pub missing_bytes: usize,
    /// The time of the last record read, after which the ride is lost.
    pub last_time: Option<Nanos>,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "truncated at byte {} of the {} its header promises: {} bytes are lost",
            self.at, self.expected_bytes, self.missing_bytes
        )?;
        match self.last_time {
            Some(t) => write!(f, ", the ride after {}", velometry_core::time::format_rfc3339(t)),
            None => write!(f, ", with every record"),
        }
    }
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
/// A FIT file cut short after its first data message is not an error: see
/// [`FileReadings::damage`].
pub fn read_bytes(name: &str, bytes: &[u8], now: Nanos) -> Result<FileReadings, FileError> {
    let (format, gzipped) = format_of_name(name);
    let bytes = if gzipped {
        Cow::Owned(gunzip(bytes).map_err(|e| match e {
            GzipError::Corrupt(source) => FileError::Gzip { name: name.to_owned(), source },
            GzipError::TooLarge => {
                FileError::TooLarge { name: name.to_owned(), limit: MAX_DECOMPRESSED_BYTES }
            }
        })?)
    } else {
        Cow::Borrowed(bytes)
    };
    let format =
        format.or_else(|| sniff(&bytes)).ok_or_else(|| FileError::UnknownFormat { name: name.to_owned() })?;
    let mut out = Collector::new(now);
    let damage = match format {
        Format::Fit => read_fit(name, &bytes, &mut out)?,
        Format::Gpx => {
            read_gpx(name, &bytes, &mut out)?;
            None
        }
        Format::Tcx => {
            read_tcx(name, &bytes, &mut out)?;
            None
        }
    };
    Ok(FileReadings { damage, ..out.finish(format) })
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

    /// The latest time of the readings so far.
    fn last_time(&self) -> Option<Nanos> {
        self.readings.iter().map(Reading::time).max()
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
            damage: None,
        }
    }
}

#[cfg(test)]
mod tests;
