//! What export files hold: every value as stored, bit for bit (CSV, and GPX where its
//! schemas allow), and GPX that validates against GPX 1.1 and Garmin's extension schemas
//! (`xmllint --nonet`, schemas in tests/fixtures/xsd).

use std::path::PathBuf;
use std::process::Command;

use quick_xml::events::Event;
use velometry_core::testkit::InfluxServer;
use velometry_core::time::parse_rfc3339;

use crate::helpers::*;

/// 2026-01-10T08:00:00Z.
pub const START: i64 = 1_768_032_000 * SECOND;

pub fn range(samples: &[Sample]) -> String {
    // Epoch milliseconds: one past the last sample's millisecond.
    let (first, last) = (samples[0].time, samples[samples.len() - 1].time);
    format!("from={}&to={}", first.div_euclid(1_000_000), last.div_euclid(1_000_000) + 1)
}

/// The rows of a CSV export, header first.
pub fn csv(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    reader.records().map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect()).collect()
}

/// One trackpoint as a GPX export writes it: lat, lon, ele, time, and the extensions by
/// local name.
#[derive(Debug, Default)]
struct Trkpt {
    lat: String,
    lon: String,
    values: Vec<(String, String)>,
}

fn trackpoints(xml: &str) -> Vec<Trkpt> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut points: Vec<Trkpt> = Vec::new();
    let mut open = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                open = String::from_utf8(e.local_name().as_ref().to_vec()).expect("UTF-8");
                if open == "trkpt" {
                    let mut point = Trkpt::default();
                    for a in e.attributes() {
                        let a = a.expect("attribute");
                        let value = String::from_utf8(a.value.to_vec()).expect("UTF-8");
                        match a.key.as_ref() {
                            b"lat" => point.lat = value,
                            b"lon" => point.lon = value,
                            _ => {}
                        }
                    }
                    points.push(point);
                }
            }
            Event::Text(t) if !points.is_empty() => {
                let text = t.unescape().expect("text").into_owned();
                if let Some(p) = points.last_mut() {
                    p.values.push((open.clone(), text));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    points
}

fn value<'a>(p: &'a Trkpt, name: &str) -> &'a str {
    p.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
}

fn bits(text: &str) -> u64 {
    text.parse::<f64>().unwrap_or_else(|e| panic!("{text:?}: {e}")).to_bits()
}

#[tokio::test]
async fn exports_hold_every_value_bit_for_bit() {
    let influx = InfluxServer::start().await.expect("influxd");
    let samples = ride(START, 1_500, 17);
    write_all(&influx, &ride_lines("alice", &samples)).await;
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    let digits = |v: f64| {
        format!("{v:e}").split('e').next().map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count())
    };
    let seventeen = samples.iter().filter(|s| digits(s.lat) == 17).count();
    assert!(seventeen > 300, "the test needs values of 17 significant digits: {seventeen}");

    let (status, _, text) =
        get_raw(&service, &format!("/v1/riders/alice/export.csv?{}", range(&samples)), None).await;
    assert_eq!(status, 200, "{text}");
    let rows = csv(&text);
    assert_eq!(
        rows[0],
        ["time", "lat", "lon", "alt", "speed", "heart_rate", "cadence", "power", "temperature", "distance"]
    );
    assert_eq!(rows.len() - 1, samples.len());
    let mut differ = Vec::new();
    for (row, s) in rows[1..].iter().zip(&samples) {
        assert_eq!(parse_rfc3339(&row[0]), Ok(s.time), "the time as stored: {}", row[0]);
        let stored = [s.lat, s.lon, s.alt, s.speed, s.bpm, s.rpm, s.watts, s.celsius, s.meters];
        for (cell, v) in row[1..].iter().zip(stored) {
            if bits(cell) != v.to_bits() {
                differ.push(format!("{v} exported as {cell}"));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} CSV values differ from what was stored: {:?}",
        differ.len(),
        samples.len() * 9,
        &differ[..differ.len().min(5)]
    );

    let (status, _, xml) =
        get_raw(&service, &format!("/v1/riders/alice/export.gpx?{}", range(&samples)), None).await;
    assert_eq!(status, 200, "{xml}");
    let points = trackpoints(&xml);
    assert_eq!(points.len(), samples.len());
    for (p, s) in points.iter().zip(&samples) {
        let exact = [
            (p.lat.as_str(), s.lat),
            (p.lon.as_str(), s.lon),
            (value(p, "ele"), s.alt),
            (value(p, "atemp"), s.celsius),
        ];
        for (text, v) in exact {
            if bits(text) != v.to_bits() {
                differ.push(format!("{v} exported as {text}"));
            }
        }
        assert_eq!(parse_rfc3339(value(p, "time")), Ok(s.time), "the time as stored");
        // Whole numbers in their schemas: rounded, and nothing else.
        assert_eq!(value(p, "hr").parse::<f64>().ok(), Some(s.bpm.round()));
        assert_eq!(value(p, "cad").parse::<f64>().ok(), Some(s.rpm.round()));
        assert_eq!(value(p, "PowerInWatts").parse::<f64>().ok(), Some(s.watts.round()));
    }
    assert!(
        differ.is_empty(),
        "{} GPX values differ from what was stored: {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    assert!(xml.contains(r#"lat="46.000899320363764""#), "the value of the report, exactly");
}

/// The folder of the GPX schemas.
fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xsd")
}

/// xmllint's verdict on `xml` against GPX 1.1 with Garmin's TrackPointExtension v1 and
/// PowerExtension v1, from local files only: `Ok` or the errors it printed.
fn validate(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export.gpx");
    std::fs::write(&file, xml).expect("write the export");
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schemas().join("velometry-gpx.xsd"))
        .arg(&file)
        .output()
        .expect("xmllint runs (libxml2-utils; deploy/local/test.sh installs it)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn gpx_exports_validate_against_gpx_1_1_and_garmins_extensions() {
    let influx = InfluxServer::start().await.expect("influxd");
    let mut samples = ride(START, 300, 5);
    // The date line, as the collector accepts it; a heart rate and a cadence past what the
    // extension allows; a power past an unsignedShort.
    samples[10].lon = 180.0;
    samples[11].lon = -180.0;
    (samples[12].bpm, samples[12].rpm, samples[12].watts) = (0.4, 300.0, 70_000.0);
    let mut lines = ride_lines("alice", &samples);
    // Sensor values between fixes, carried onto the next trackpoint.
    lines.push_str(&format!(
        "heart_rate,device=edge,rider=alice bpm=151 {}\n",
        samples[20].time + 400_000_000
    ));
    lines
        .push_str(&format!("power,device=edge,rider=alice watts=333.3 {}\n", samples[20].time + 500_000_000));
    write_all(&influx, &lines).await;
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;

    let (status, headers, xml) =
        get_raw(&service, &format!("/v1/riders/alice/export.gpx?{}", range(&samples)), None).await;
    assert_eq!((status, headers["content-type"].to_str().ok()), (200, Some("application/gpx+xml")), "{xml}");
    validate(&xml).unwrap_or_else(|e| panic!("the export is not valid GPX 1.1: {e}"));
    assert!(
        xml.contains(r#"lon="-180">"#) && !xml.contains(r#"lon="180""#),
        "longitude 180 is written as -180"
    );
    assert!(xml.contains("<gpxpx:PowerInWatts>65535</gpxpx:PowerInWatts>"));
    assert_eq!(xml.matches("<gpxpx:PowerInWatts>").count(), samples.len());
    let empty = get_raw(&service, "/v1/riders/alice/export.gpx?from=0&to=1000", None).await.2;
    validate(&empty).unwrap_or_else(|e| panic!("an export without data is valid GPX too: {e}"));

    // The schemas are strict about what the exports used to write: power in the GPX
    // namespace, longitude 180.
    let bare_power =
        xml.replacen("<gpxpx:PowerInWatts>", "<power>", 1).replacen("</gpxpx:PowerInWatts>", "</power>", 1);
    assert!(validate(&bare_power).is_err_and(|e| e.contains("power")), "a bare <power> is refused");
    let east = xml.replacen(r#"lon="-180">"#, r#"lon="180">"#, 1);
    assert!(validate(&east).is_err_and(|e| e.contains("lon")), "lon=180 is refused");
}
