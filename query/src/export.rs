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

use velometry_core::time::format_rfc3339;

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

/// A GPX 1.1 writer with Garmin's TrackPointExtension v1, stateful across chunks: call
/// [`header`](Self::header) once, [`rows`](Self::rows) once per window, then
/// [`footer`](Self::footer).
///
/// The whole export is one track with one segment. Each row with both a latitude and a
/// longitude becomes a `trkpt` with its altitude (`ele`), time, power (a plain `<power>` in
/// `<extensions>`, which is what Strava's own exports and GoldenCheetah read) and air
/// temperature, heart rate and cadence (`gpxtpx:atemp`, `hr`, `cad`). Speed and distance have
/// no place in GPX 1.1 or TrackPointExtension v1; they are in the CSV export.
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
                " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
                " xsi:schemaLocation=\"{gpx} http://www.topografix.com/GPX/1/1/gpx.xsd",
                " {tpx} http://www.garmin.com/xmlschemas/TrackPointExtensionv1.xsd\">\n",
                "<metadata><name>{name}</name></metadata>\n",
                "<trk><name>{name}</name><trkseg>\n",
            ),
            gpx = GPX_NAMESPACE,
            tpx = TPX_NAMESPACE,
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
    // `{}` on f64 prints the shortest decimal that reads back as the same number, and never
    // in exponent notation, which xsd:decimal (lat, lon) would not accept.
    write!(out, "  <trkpt lat=\"{lat}\" lon=\"{lon}\">")?;
    if let Some(alt) = point.alt {
        write!(out, "<ele>{alt}</ele>")?;
    }
    write!(out, "<time>{}</time>", format_rfc3339(point.time_ns))?;
    // hr and cad are integers in the XSD: hr is 1..=255 (unsignedByte, min 1) and cad 0..=254
    // (unsignedByte, max 254), and the schema allows cadences up to 300.
    let hr = point.heart_rate.map(|bpm| round_into(bpm, 1, 255));
    let cad = point.cadence.map(|rpm| round_into(rpm, 0, 254));
    let tpx = point.temperature.is_some() || hr.is_some() || cad.is_some();
    if point.power.is_some() || tpx {
        out.push_str("<extensions>");
        if let Some(watts) = point.power {
            write!(out, "<power>{watts}</power>")?;
        }
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
        out.push_str("</extensions>");
    }
    out.push_str("</trkpt>\n");
    Ok(())
}

/// Rounds to the nearest integer within `min..=max`.
fn round_into(value: f64, min: u8, max: u8) -> u8 {
    // In range after the clamp, so the cast neither truncates nor saturates.
    value.round().clamp(f64::from(min), f64::from(max)) as u8
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
/// Times are RFC 3339 in UTC with milliseconds; a missing value is an empty cell.
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
            record.push_field(format_rfc3339(row.time_ns).as_bytes());
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
mod tests {
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};
    use quick_xml::NsReader;
    use velometry_core::time::parse_rfc3339;

    use super::*;

    /// 2025-11-27T10:00:00Z.
    const START: i64 = 1_764_237_600_000_000_000;

    fn at(seconds: i64) -> i64 {
        START + seconds * 1_000_000_000
    }

    fn point(time_ns: i64, lat: f64, lon: f64) -> Row {
        Row { time_ns, lat: Some(lat), lon: Some(lon), ..Row::default() }
    }

    fn gpx_document(name: &str, chunks: &[&[Row]]) -> String {
        let mut writer = GpxWriter::new();
        let mut bytes = writer.header(name);
        for chunk in chunks {
            bytes.extend(writer.rows(chunk));
        }
        bytes.extend(writer.footer());
        String::from_utf8(bytes).unwrap()
    }

    /// What a trackpoint's `<extensions>` held, read with namespaces resolved: values in the
    /// wrong namespace are not found.
    #[derive(Debug, Default, PartialEq)]
    struct Extensions {
        present: bool,
        power: Option<f64>,
        atemp: Option<f64>,
        hr: Option<u8>,
        cad: Option<u8>,
        /// Local names of the TrackPointExtension children, in document order.
        order: Vec<String>,
    }

    fn read_extensions(xml: &str) -> Vec<Extensions> {
        let mut reader = NsReader::from_str(xml);
        let mut points: Vec<Extensions> = Vec::new();
        let mut open: Option<(Vec<u8>, String)> = None;
        loop {
            let (namespace, event) = reader.read_resolved_event().unwrap();
            let namespace = match namespace {
                ResolveResult::Bound(Namespace(ns)) => ns.to_vec(),
                _ => Vec::new(),
            };
            match event {
                Event::Start(element) => {
                    let local = String::from_utf8(element.local_name().as_ref().to_vec()).unwrap();
                    match local.as_str() {
                        "trkpt" => points.push(Extensions::default()),
                        "extensions" => points.last_mut().unwrap().present = true,
                        "atemp" | "hr" | "cad" if namespace == TPX_NAMESPACE.as_bytes() => {
                            points.last_mut().unwrap().order.push(local.clone());
                        }
                        _ => {}
                    }
                    open = Some((namespace, local));
                }
                Event::Text(text) => {
                    let Some((ns, local)) = &open else { continue };
                    let text = text.unescape().unwrap();
                    let Some(point) = points.last_mut() else { continue };
                    match (ns.as_slice(), local.as_str()) {
                        (ns, "power") if ns == GPX_NAMESPACE.as_bytes() => {
                            point.power = Some(text.parse().unwrap());
                        }
                        (ns, "atemp") if ns == TPX_NAMESPACE.as_bytes() => {
                            point.atemp = Some(text.parse().unwrap());
                        }
                        // Parsed as u8: "161.0" would fail, as it fails the XSD.
                        (ns, "hr") if ns == TPX_NAMESPACE.as_bytes() => {
                            point.hr = Some(text.parse().unwrap());
                        }
                        (ns, "cad") if ns == TPX_NAMESPACE.as_bytes() => {
                            point.cad = Some(text.parse().unwrap());
                        }
                        _ => {}
                    }
                }
                Event::End(_) => open = None,
                Event::Eof => break,
                _ => {}
            }
        }
        points
    }

    #[test]
    fn merge_joins_equal_timestamps() {
        let columns = vec![
            (Column::Lat, vec![(at(0), 45.1)]),
            (Column::Lon, vec![(at(0), 7.6)]),
            (Column::HeartRate, vec![(at(0), 142.0)]),
        ];

        let rows = merge(columns);

        let expected = Row { heart_rate: Some(142.0), ..point(at(0), 45.1, 7.6) };
        assert_eq!(rows, vec![expected]);
    }

    #[test]
    fn merge_keeps_distinct_timestamps_as_rows_in_order() {
        let columns = vec![
            (Column::HeartRate, vec![(at(0), 140.0), (at(2), 142.0)]),
            (Column::Power, vec![(at(1), 250.0), (at(1) + 1, 251.0)]),
        ];

        let rows = merge(columns);

        let expected = vec![
            Row { time_ns: at(0), heart_rate: Some(140.0), ..Row::default() },
            Row { time_ns: at(1), power: Some(250.0), ..Row::default() },
            Row { time_ns: at(1) + 1, power: Some(251.0), ..Row::default() },
            Row { time_ns: at(2), heart_rate: Some(142.0), ..Row::default() },
        ];
        assert_eq!(rows, expected);
    }

    #[test]
    fn merge_handles_empty_and_uneven_columns() {
        let columns = vec![
            (Column::Cadence, vec![]),
            (Column::Temperature, vec![(at(1), 21.5)]),
            (Column::Distance, vec![(at(0), 0.0), (at(1), 8.0), (at(2), 16.5)]),
        ];

        let rows = merge(columns);

        let expected = vec![
            Row { time_ns: at(0), distance: Some(0.0), ..Row::default() },
            Row { time_ns: at(1), temperature: Some(21.5), distance: Some(8.0), ..Row::default() },
            Row { time_ns: at(2), distance: Some(16.5), ..Row::default() },
        ];
        assert_eq!(rows, expected);
        assert_eq!(merge(Vec::new()), Vec::new());
        assert_eq!(merge(vec![(Column::Lat, vec![]), (Column::Lon, vec![])]), Vec::new());
    }

    #[test]
    fn merge_sorts_a_column_given_out_of_order() {
        let columns = vec![(Column::Speed, vec![(at(2), 8.5), (at(0), 8.1)])];

        let rows = merge(columns);

        let times: Vec<i64> = rows.iter().map(|row| row.time_ns).collect();
        assert_eq!(times, vec![at(0), at(2)]);
        assert_eq!(rows[0].speed, Some(8.1));
    }

    #[test]
    fn columns_name_their_measurement_and_field() {
        assert_eq!((Column::HeartRate.measurement(), Column::HeartRate.field()), ("heart_rate", "bpm"));
        assert_eq!((Column::Lat.measurement(), Column::Lat.field()), ("gps", "lat"));
        assert_eq!((Column::Distance.measurement(), Column::Distance.field()), ("distance", "meters"));
    }

    #[test]
    fn gpx_written_in_chunks_reads_back_the_same_points() {
        // Unround coordinates, sub-millisecond times, a point without altitude, and rows
        // without a position that must not become trackpoints.
        let mut rows = Vec::new();
        for i in 0..9_i32 {
            let time_ns = at(i64::from(i)) + 123_456_789;
            let mut row = point(time_ns, 45.123_456_789_012_34 + f64::from(i) * 1e-7, -7.000_012_3);
            row.alt = (i != 4).then(|| 250.25 + f64::from(i) / 3.0);
            rows.push(row);
            rows.push(Row { time_ns: time_ns + 500_000_000, heart_rate: Some(150.0), ..Row::default() });
        }

        let xml = gpx_document("Morning ride", &[&rows[..5], &rows[5..11], &rows[11..]]);

        let gpx = gpx::read(xml.as_bytes()).unwrap();
        assert_eq!(gpx.version, gpx::GpxVersion::Gpx11);
        assert_eq!(gpx.creator.as_deref(), Some("velometry"));
        assert_eq!(gpx.tracks.len(), 1);
        assert_eq!(gpx.tracks[0].segments.len(), 1);
        let read = &gpx.tracks[0].segments[0].points;
        let written: Vec<&Row> = rows.iter().filter(|row| row.lat.is_some()).collect();
        assert_eq!(read.len(), written.len());
        for (read, written) in read.iter().zip(written) {
            assert_eq!(Some(read.point().y()), written.lat);
            assert_eq!(Some(read.point().x()), written.lon);
            assert_eq!(read.elevation, written.alt);
            let time = read.time.unwrap().format().unwrap();
            let millisecond = written.time_ns - written.time_ns.rem_euclid(1_000_000);
            assert_eq!(parse_rfc3339(&time), Ok(millisecond), "{time}");
        }
    }

    #[test]
    fn gpx_extensions_read_back_with_their_namespaces() {
        let rows = [
            Row {
                power: Some(250.0),
                temperature: Some(21.5),
                heart_rate: Some(160.6),
                cadence: Some(70.5),
                ..point(at(0), 45.1, 7.6)
            },
            Row { heart_rate: Some(90.2), cadence: Some(300.0), ..point(at(1), 45.1, 7.6) },
            Row { power: Some(312.5), ..point(at(2), 45.1, 7.6) },
            point(at(3), 45.1, 7.6),
        ];

        let points = read_extensions(&gpx_document("Ride", &[&rows]));

        let all_four = Extensions {
            present: true,
            power: Some(250.0),
            atemp: Some(21.5),
            hr: Some(161),
            cad: Some(71),
            order: vec!["atemp".into(), "hr".into(), "cad".into()],
        };
        // A cadence of 300 rpm is within our schema but not the XSD's 0..=254.
        let clamped = Extensions {
            present: true,
            hr: Some(90),
            cad: Some(254),
            order: vec!["hr".into(), "cad".into()],
            ..Extensions::default()
        };
        let power_only = Extensions { present: true, power: Some(312.5), ..Extensions::default() };
        assert_eq!(points, vec![all_four, clamped, power_only, Extensions::default()]);
    }

    #[test]
    fn gpx_carries_sensor_values_across_a_chunk_boundary_to_the_next_point_only() {
        let first = [
            point(at(0), 45.1, 7.6),
            Row {
                time_ns: at(1),
                heart_rate: Some(150.4),
                cadence: Some(80.0),
                power: Some(200.0),
                temperature: Some(19.5),
                ..Row::default()
            },
        ];
        let second = [Row { power: Some(300.0), ..point(at(3), 45.1, 7.6) }, point(at(4), 45.1, 7.6)];

        let points = read_extensions(&gpx_document("Ride", &[&first, &second]));

        assert_eq!(points.len(), 3);
        assert_eq!(points[0], Extensions::default());
        // The point's own power wins over the carried one.
        assert_eq!((points[1].hr, points[1].cad), (Some(150), Some(80)));
        assert_eq!((points[1].power, points[1].atemp), (Some(300.0), Some(19.5)));
        assert_eq!(points[2], Extensions::default());
    }

    #[test]
    fn gpx_carries_sensor_values_at_most_five_seconds() {
        let sensor = |time_ns| Row { time_ns, heart_rate: Some(150.0), ..Row::default() };
        let chunks: [&[Row]; 4] = [
            &[sensor(at(0))],
            &[point(at(5), 45.1, 7.6)],
            &[sensor(at(10))],
            &[point(at(15) + 1, 45.1, 7.6)],
        ];

        let points = read_extensions(&gpx_document("Ride", &chunks));

        assert_eq!(points.len(), 2);
        assert_eq!(points[0].hr, Some(150));
        assert_eq!(points[1], Extensions::default());
    }

    #[test]
    fn gpx_track_name_is_escaped() {
        let name = "Tom & Jerry's <fast> \"ride\"";

        let xml = gpx_document(&format!("{name}\u{1}"), &[&[point(at(0), 45.1, 7.6)]]);

        let gpx = gpx::read(xml.as_bytes()).unwrap();
        assert_eq!(gpx.tracks[0].name.as_deref(), Some(name));
        assert_eq!(gpx.metadata.and_then(|metadata| metadata.name).as_deref(), Some(name));
    }

    #[test]
    fn csv_reads_back_with_header_once_and_empty_cells() {
        let full = Row {
            alt: Some(250.5),
            speed: Some(8.25),
            heart_rate: Some(142.0),
            cadence: Some(85.5),
            power: Some(251.0),
            temperature: Some(-3.5),
            distance: Some(1_234.75),
            ..point(at(0) + 7_000_000, 45.123_456_789_012_34, -7.000_012_3)
        };
        let sparse = Row { time_ns: at(1), heart_rate: Some(143.0), ..Row::default() };
        let mut writer = CsvWriter::new();

        let mut bytes = writer.rows(std::slice::from_ref(&full));
        bytes.extend(writer.rows(&[]));
        bytes.extend(writer.rows(&[sparse]));

        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().unwrap().clone();
        assert_eq!(
            header.iter().collect::<Vec<_>>(),
            [
                "time",
                "lat",
                "lon",
                "alt",
                "speed",
                "heart_rate",
                "cadence",
                "power",
                "temperature",
                "distance"
            ]
        );
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[0][0], "2025-11-27T10:00:00.007Z");
        for (i, column) in Column::ALL.into_iter().enumerate() {
            assert_eq!(records[0][i + 1].parse::<f64>().ok(), full.value(column), "{column:?}");
        }
        assert_eq!(
            records[1].iter().collect::<Vec<_>>(),
            ["2025-11-27T10:00:01.000Z", "", "", "", "", "143", "", "", "", ""]
        );
    }

    #[test]
    fn csv_without_rows_is_the_header_alone() {
        let mut writer = CsvWriter::new();

        let bytes = writer.rows(&[]);

        assert_eq!(bytes, b"time,lat,lon,alt,speed,heart_rate,cadence,power,temperature,distance\n");
    }
}
