//! Full-resolution exports of a rider's history as GPX 1.1 and CSV, encoded chunk by chunk so
//! that `GET /v1/riders/{rider}/export.{gpx,csv}` can stream a ride of any length without
//! holding it in memory.
//!
//! The handler reads one time window at a time from InfluxDB, one [`Column`] per field,
//! joins the columns into [`Row`]s with [`merge`], and hands the rows to a [`GpxWriter`] or a
//! [`CsvWriter`]; every call returns the next piece of the HTTP body. The writers keep what
//! has to cross window boundaries (the CSV header, sensor values waiting for a GPS fix), so
//! the windows can be of any size and the output does not depend on where they are cut.

use std::fmt::{self, Write as _};

use chrono::SecondsFormat;

/// A column of the export: one field of one measurement (see docs/schema.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `gps.lat`, degrees.
    Lat,
    /// `gps.lon`, degrees.
    Lon,
    /// `gps.alt`, metres.
    Alt,
    /// `gps.speed`, m/s.
    Speed,
    /// `heart_rate.bpm`, beats per minute.
    HeartRate,
    /// `cadence.rpm`, revolutions per minute.
    Cadence,
    /// `power.watts`, W.
    Power,
    /// `temperature.celsius`, °C.
    Temperature,
    /// `distance.meters`, m.
    Distance,
}

impl Column {
    /// Every column, in the order of the CSV columns.
    pub const ALL: [Column; 9] = [
        Column::Lat,
        Column::Lon,
        Column::Alt,
        Column::Speed,
        Column::HeartRate,
        Column::Cadence,
        Column::Power,
        Column::Temperature,
        Column::Distance,
    ];

    /// The InfluxDB measurement the column is read from.
    pub fn measurement(self) -> &'static str {
        match self {
            Column::Lat | Column::Lon | Column::Alt | Column::Speed => "gps",
            Column::HeartRate => "heart_rate",
            Column::Cadence => "cadence",
            Column::Power => "power",
            Column::Temperature => "temperature",
            Column::Distance => "distance",
        }
    }

    /// The InfluxDB field the column is read from.
    pub fn field(self) -> &'static str {
        match self {
            Column::Lat => "lat",
            Column::Lon => "lon",
            Column::Alt => "alt",
            Column::Speed => "speed",
            Column::HeartRate => "bpm",
            Column::Cadence => "rpm",
            Column::Power => "watts",
            Column::Temperature => "celsius",
            Column::Distance => "meters",
        }
    }

    /// The column's name in the CSV header.
    fn csv_name(self) -> &'static str {
        match self {
            Column::Lat => "lat",
            Column::Lon => "lon",
            Column::Alt => "alt",
            Column::Speed => "speed",
            Column::HeartRate => "heart_rate",
            Column::Cadence => "cadence",
            Column::Power => "power",
            Column::Temperature => "temperature",
            Column::Distance => "distance",
        }
    }
}

/// What the rider's devices recorded at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// Altitude, metres.
    pub alt: Option<f64>,
    /// Speed, m/s.
    pub speed: Option<f64>,
    /// Heart rate, beats per minute.
    pub heart_rate: Option<f64>,
    /// Cadence, revolutions per minute.
    pub cadence: Option<f64>,
    /// Power, W.
    pub power: Option<f64>,
    /// Air temperature, °C.
    pub temperature: Option<f64>,
    /// Distance so far, m.
    pub distance: Option<f64>,
}

impl Row {
    fn value(&self, column: Column) -> Option<f64> {
        match column {
            Column::Lat => self.lat,
            Column::Lon => self.lon,
            Column::Alt => self.alt,
            Column::Speed => self.speed,
            Column::HeartRate => self.heart_rate,
            Column::Cadence => self.cadence,
            Column::Power => self.power,
            Column::Temperature => self.temperature,
            Column::Distance => self.distance,
        }
    }

    fn value_mut(&mut self, column: Column) -> &mut Option<f64> {
        match column {
            Column::Lat => &mut self.lat,
            Column::Lon => &mut self.lon,
            Column::Alt => &mut self.alt,
            Column::Speed => &mut self.speed,
            Column::HeartRate => &mut self.heart_rate,
            Column::Cadence => &mut self.cadence,
            Column::Power => &mut self.power,
            Column::Temperature => &mut self.temperature,
            Column::Distance => &mut self.distance,
        }
    }
}

/// Joins columns into rows sorted by time, one row per distinct timestamp (exact nanosecond
/// equality); a column without a value at that instant leaves the field `None`.
///
/// Each column should be sorted by time, as InfluxDB returns it; a column that is not is
/// sorted here, because the GPX output must be in time order. A column may appear more than
/// once (e.g. one series per device): values at the same instant then go to the same row,
/// and the one given last wins.
pub fn merge(mut columns: Vec<(Column, Vec<(i64, f64)>)>) -> Vec<Row> {
    for (_, values) in &mut columns {
        // A stable sort, so "the one given last wins" holds for equal timestamps too.
        if !values.is_sorted_by_key(|&(time_ns, _)| time_ns) {
            values.sort_by_key(|&(time_ns, _)| time_ns);
        }
    }
    let longest = columns.iter().map(|(_, values)| values.len()).max().unwrap_or(0);
    let mut rows = Vec::with_capacity(longest);
    // A k-way merge with one cursor per column: there are at most a handful of columns, so a
    // linear scan for the next timestamp beats a heap.
    let mut cursors = vec![0_usize; columns.len()];
    loop {
        let next = columns
            .iter()
            .zip(&cursors)
            .filter_map(|((_, values), &cursor)| values.get(cursor).map(|&(time_ns, _)| time_ns))
            .min();
        let Some(time_ns) = next else { break };
        let mut row = Row { time_ns, ..Row::default() };
        for ((column, values), cursor) in columns.iter().zip(&mut cursors) {
            while let Some(&(at, value)) = values.get(*cursor) {
                if at != time_ns {
                    break;
                }
                *row.value_mut(*column) = Some(value);
                *cursor += 1;
            }
        }
        rows.push(row);
    }
    rows
}

/// How much older than a trackpoint a sensor value may be and still be carried onto it.
const CARRY_WINDOW_NS: i64 = 5_000_000_000;

/// The sensor columns that ride on trackpoints, and so may be carried onto them.
const CARRIED: [Column; 4] = [Column::HeartRate, Column::Cadence, Column::Power, Column::Temperature];

const GPX_NAMESPACE: &str = "http://www.topografix.com/GPX/1/1";
const TPX_NAMESPACE: &str = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1";
const PWR_NAMESPACE: &str = "http://www.garmin.com/xmlschemas/PowerExtension/v1";

/// A GPX 1.1 writer with Garmin's TrackPointExtension v1 and PowerExtension v1, stateful
/// across chunks: call [`header`](Self::header) once, [`rows`](Self::rows) once per window,
/// then [`footer`](Self::footer). Every document validates against the three schemas
/// (`query/tests/fixtures/xsd/`, checked with `xmllint` in the tests).
///
/// The whole export is one track with one segment. Each row with both a latitude and a
/// longitude becomes a `trkpt` with its altitude (`ele`) and time, exactly as stored
/// (longitude 180 is written as -180, the same meridian: GPX's longitudes are
/// [-180, 180)), and in `<extensions>` air temperature, heart rate and cadence
/// (`gpxtpx:atemp`, `hr`, `cad`) and power (`gpxpx:PowerInWatts`). Heart rate, cadence and
/// power are whole numbers in those schemas (1..=255 bpm, 0..=254 rpm, 0..=65535 W), so they
/// are rounded and clamped; the CSV export has them as stored. Speed and distance have no
/// place in GPX 1.1 or these extensions; they are in the CSV export.
///
/// **Who reads power from it.** GoldenCheetah reads any element whose name ends in
/// `PowerInWatts` (and a bare `power`); OpenTracks writes and reads this same element.
/// Strava reads only a bare `<power>` in the GPX namespace, which is what its own exports
/// write and what the GPX 1.1 schema forbids inside `<extensions>` (`##other`): Strava does
/// not see power in these files. Heart rate, cadence and temperature in TrackPointExtension
/// v1 are read by all three and by Garmin Connect.
///
/// **Carried sensor values.** Phones and chest straps do not share timestamps with the GPS,
/// so many heart-rate, cadence, power and temperature values arrive on rows without a
/// position, which cannot become trackpoints. The writer keeps the latest such value of each
/// sensor and puts it on the next trackpoint, if that trackpoint lacks its own value and is
/// at most 5 s later. A kept value goes to that next trackpoint only, or to none: the
/// trackpoint clears it either way. This state lives in the writer, so it crosses chunk
/// boundaries; values still kept at the footer have no trackpoint to go to and are dropped.
#[derive(Debug, Default)]
pub struct GpxWriter {
    /// `(time_ns, value)` of the latest value of each of [`CARRIED`] seen since the last
    /// trackpoint on a row without a position.
    pending: [Option<(i64, f64)>; 4],
}

impl GpxWriter {
    /// A writer with nothing carried.
    pub fn new() -> GpxWriter {
        GpxWriter::default()
    }

    /// The start of the document, up to the opening `<trkseg>`: XML declaration, `<gpx>` with
    /// its namespaces, `<metadata>` and `<trk>`, both named `track_name`.
    ///
    /// Starts a new document, so it drops any carried sensor values.
    pub fn header(&mut self, track_name: &str) -> Vec<u8> {
        self.pending = Default::default();
        let name = escape_xml(track_name);
        format!(
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<gpx version=\"1.1\" creator=\"velometry\" xmlns=\"{gpx}\" xmlns:gpxtpx=\"{tpx}\"",
                " xmlns:gpxpx=\"{pwr}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
                " xsi:schemaLocation=\"{gpx} http://www.topografix.com/GPX/1/1/gpx.xsd",
                " {tpx} http://www.garmin.com/xmlschemas/TrackPointExtensionv1.xsd",
                " {pwr} http://www.garmin.com/xmlschemas/PowerExtensionv1.xsd\">\n",
                "<metadata><name>{name}</name></metadata>\n",
                "<trk><name>{name}</name><trkseg>\n",
            ),
            gpx = GPX_NAMESPACE,
            tpx = TPX_NAMESPACE,
            pwr = PWR_NAMESPACE,
            name = name,
        )
        .into_bytes()
    }

    /// The trackpoints of `rows` (sorted by time, following the rows of the previous call),
    /// one per line.
    pub fn rows(&mut self, rows: &[Row]) -> Vec<u8> {
        // About what a trackpoint with every extension takes.
        let mut out = String::with_capacity(rows.len() * 320);
        for row in rows {
            let (Some(lat), Some(lon)) = (row.lat, row.lon) else {
                for (kept, column) in self.pending.iter_mut().zip(CARRIED) {
                    if let Some(value) = row.value(column) {
                        *kept = Some((row.time_ns, value));
                    }
                }
                continue;
            };
            let mut point = row.clone();
            for (kept, column) in self.pending.iter_mut().zip(CARRIED) {
                let own = point.value_mut(column);
                if let Some((at, value)) = kept.take() {
                    let age = row.time_ns.saturating_sub(at);
                    if own.is_none() && (0..=CARRY_WINDOW_NS).contains(&age) {
                        *own = Some(value);
                    }
                }
            }
            // `fmt::Write` for `String` only appends and never returns an error.
            let _ = write_trkpt(&mut out, lat, lon, &point);
        }
        out.into_bytes()
    }

    /// The end of the document, from the closing `</trkseg>`.
    ///
    /// Drops any carried sensor values: no trackpoint follows.
    pub fn footer(&mut self) -> Vec<u8> {
        self.pending = Default::default();
        b"</trkseg></trk>\n</gpx>\n".to_vec()
    }
}

/// Appends one `<trkpt>` line. `point` already carries the values taken over from earlier
/// rows.
fn write_trkpt(out: &mut String, lat: f64, lon: f64, point: &Row) -> fmt::Result {
    // GPX longitudes are [-180, 180); 180 is accepted on ingest and is the same meridian.
    let lon = if lon == 180.0 { -180.0 } else { lon };
    // `{}` on f64 prints the shortest decimal that reads back as the same number, and never
    // in exponent notation, which xsd:decimal (lat, lon, ele) would not accept.
    write!(out, "  <trkpt lat=\"{lat}\" lon=\"{lon}\">")?;
    if let Some(alt) = point.alt {
        write!(out, "<ele>{alt}</ele>")?;
    }
    write!(out, "<time>{}</time>", format_time(point.time_ns))?;
    // hr and cad are integers in the XSD: hr is 1..=255 (unsignedByte, min 1) and cad 0..=254
    // (unsignedByte, max 254), and the schema allows cadences up to 300. PowerInWatts is an
    // unsignedShort.
    let hr = point.heart_rate.map(|bpm| round_into(bpm, 1.0, 255.0));
    let cad = point.cadence.map(|rpm| round_into(rpm, 0.0, 254.0));
    let watts = point.power.map(|w| round_into(w, 0.0, f64::from(u16::MAX)));
    let tpx = point.temperature.is_some() || hr.is_some() || cad.is_some();
    if watts.is_some() || tpx {
        out.push_str("<extensions>");
        if tpx {
            // Element order fixed by the XSD sequence: atemp, wtemp, depth, hr, cad.
            out.push_str("<gpxtpx:TrackPointExtension>");
            if let Some(celsius) = point.temperature {
                write!(out, "<gpxtpx:atemp>{celsius}</gpxtpx:atemp>")?;
            }
            if let Some(bpm) = hr {
                write!(out, "<gpxtpx:hr>{bpm}</gpxtpx:hr>")?;
            }
            if let Some(rpm) = cad {
                write!(out, "<gpxtpx:cad>{rpm}</gpxtpx:cad>")?;
            }
            out.push_str("</gpxtpx:TrackPointExtension>");
        }
        if let Some(watts) = watts {
            write!(out, "<gpxpx:PowerInWatts>{watts}</gpxpx:PowerInWatts>")?;
        }
        out.push_str("</extensions>");
    }
    out.push_str("</trkpt>\n");
    Ok(())
}

/// Rounds to the nearest integer within `min..=max`.
fn round_into(value: f64, min: f64, max: f64) -> u64 {
    // In range after the clamp, and both bounds are whole numbers in 0..=65535, so the cast
    // neither truncates nor saturates.
    value.round().clamp(min, max) as u64
}

/// A time as RFC 3339 in UTC, to the millisecond, or to the micro- or nanosecond when the
/// stored time has them: an export holds the times as stored.
pub fn format_time(ns: i64) -> String {
    let format = if ns % 1_000_000 == 0 {
        SecondsFormat::Millis
    } else if ns % 1_000 == 0 {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(format, true)
}

/// Escapes text for XML element content or a quoted attribute. Drops the control characters
/// XML 1.0 cannot carry even escaped (all below U+0020 but tab, newline and carriage return,
/// and U+FFFE, U+FFFF): one of them in a track name would make the whole file unreadable.
///
/// Our own because the one XML crate in the tree (quick-xml) is only a dev-dependency, and
/// this is a dozen lines.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\0'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            _ => out.push(c),
        }
    }
    out
}

/// A CSV writer, stateful across chunks: the first call to [`rows`](Self::rows) starts with
/// the header line `time,lat,lon,alt,speed,heart_rate,cadence,power,temperature,distance`,
/// every call then gives one line per row.
///
/// Times are RFC 3339 in UTC with milliseconds (more digits when the stored time has them);
/// values are written as stored, in the shortest form that reads back as the same number; a
/// missing value is an empty cell.
#[derive(Debug, Default)]
pub struct CsvWriter {
    header_written: bool,
}

impl CsvWriter {
    /// A writer that has not written the header yet.
    pub fn new() -> CsvWriter {
        CsvWriter::default()
    }

    /// The lines of `rows`, after the header line if this is the first call (even when `rows`
    /// is empty, so an export without data is still a valid CSV file with a header).
    pub fn rows(&mut self, rows: &[Row]) -> Vec<u8> {
        // About what a row with every value takes.
        let mut out = Vec::with_capacity(rows.len() * 128 + 80);
        // Cannot fail: `io::Write` for `Vec<u8>` never returns an error, and every record has
        // the same eleven fields, so the csv writer has no `UnequalLengths` to report either.
        let _ = self.write(&mut out, rows);
        out
    }

    fn write(&mut self, out: &mut Vec<u8>, rows: &[Row]) -> csv::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        if !self.header_written {
            let names = std::iter::once("time").chain(Column::ALL.map(Column::csv_name));
            writer.write_record(names)?;
            self.header_written = true;
        }
        // One record and one number buffer for all rows, so a row costs no allocation but
        // its timestamp's.
        let mut record = csv::ByteRecord::new();
        let mut number = String::new();
        for row in rows {
            record.clear();
            record.push_field(format_time(row.time_ns).as_bytes());
            for column in Column::ALL {
                number.clear();
                if let Some(value) = row.value(column) {
                    // `fmt::Write` for `String` never fails; `{}` round-trips the f64.
                    let _ = write!(number, "{value}");
                }
                record.push_field(number.as_bytes());
            }
            writer.write_byte_record(&record)?;
        }
        writer.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
