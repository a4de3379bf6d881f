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
    power: Option<u16>,
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
                    // Parsed as u16: "312.5" would fail, as it fails the XSD.
                    (ns, "PowerInWatts") if ns == PWR_NAMESPACE.as_bytes() => {
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
        assert_eq!(parse_rfc3339(&time), Ok(written.time_ns), "the time as stored: {time}");
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
        power: Some(250),
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
    let power_only = Extensions { present: true, power: Some(313), ..Extensions::default() };
    assert_eq!(points, vec![all_four, clamped, power_only, Extensions::default()]);
}

#[test]
fn gpx_longitudes_are_within_minus_180_to_180_and_power_is_a_whole_number_of_watts() {
    let rows = [
        Row { power: Some(-3.0), ..point(at(0), 89.5, 180.0) },
        Row { power: Some(70_000.4), ..point(at(1), -90.0, -180.0) },
        point(at(2), 0.0, 179.999_999_999_999_97),
    ];
    let xml = gpx_document("Date line", &[&rows]);
    assert!(xml.contains(r#"<trkpt lat="89.5" lon="-180">"#), "{xml}");
    assert!(xml.contains(r#"<trkpt lat="-90" lon="-180">"#), "{xml}");
    assert!(xml.contains(r#"lon="179.99999999999997""#), "{xml}");
    let powers: Vec<Option<u16>> = read_extensions(&xml).iter().map(|p| p.power).collect();
    assert_eq!(powers, [Some(0), Some(u16::MAX), None]);
    assert!(!xml.contains("<power>"), "nothing of ours in the GPX namespace inside extensions");
}

#[test]
fn times_are_written_as_stored() {
    assert_eq!(format_time(START), "2025-11-27T10:00:00.000Z");
    assert_eq!(format_time(START + 1_000_000), "2025-11-27T10:00:00.001Z");
    assert_eq!(format_time(START + 1_000), "2025-11-27T10:00:00.000001Z");
    assert_eq!(format_time(START + 1), "2025-11-27T10:00:00.000000001Z");
    assert_eq!(format_time(-1), "1969-12-31T23:59:59.999999999Z");
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
    assert_eq!((points[1].power, points[1].atemp), (Some(300), Some(19.5)));
    assert_eq!(points[2], Extensions::default());
}

#[test]
fn gpx_carries_sensor_values_at_most_five_seconds() {
    let sensor = |time_ns| Row { time_ns, heart_rate: Some(150.0), ..Row::default() };
    let chunks: [&[Row]; 4] =
        [&[sensor(at(0))], &[point(at(5), 45.1, 7.6)], &[sensor(at(10))], &[point(at(15) + 1, 45.1, 7.6)]];

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
        ["time", "lat", "lon", "alt", "speed", "heart_rate", "cadence", "power", "temperature", "distance"]
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
