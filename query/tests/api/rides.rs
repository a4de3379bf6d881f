//! A real ride: the Garmin Edge 500 recording in `$VELOMETRY_RIDES`, stored as the collector
//! stores it, then summarised, exported and drawn; each answer checked against values
//! computed here, independently, from the file's CSV ground truth.

use velometry_core::testkit::InfluxServer;

use crate::helpers::*;

struct Record {
    time: i64,
    heart_rate: f64,
    cadence: f64,
    speed: f64,
    distance: f64,
    lat: f64,
    lon: f64,
    alt: f64,
    temperature: f64,
}

fn edge_500() -> Option<Vec<Record>> {
    let dir = velometry_core::testkit::rides("fit")?;
    let rows = velometry_core::testkit::csv_rows(&dir.join("garmin-edge-500-activity-records.csv"))
        .expect("the Edge 500 ground truth");
    let semicircles = |v: &str| v.parse::<f64>().expect("semicircles") * 180.0 / 2f64.powi(31);
    let number = |v: &str| v.parse::<f64>().expect("a number");
    Some(
        rows.iter()
            .map(|r| Record {
                time: velometry_core::testkit::pacific_time(&r["timestamp"]),
                heart_rate: number(&r["heart_rate"]),
                cadence: number(&r["cadence"]),
                speed: number(&r["speed"]),
                distance: number(&r["distance"]),
                lat: semicircles(&r["position_lat"]),
                lon: semicircles(&r["position_long"]),
                alt: number(&r["altitude"]),
                temperature: number(&r["temperature"]),
            })
            .collect(),
    )
}

fn line_protocol(records: &[Record]) -> String {
    let tags = "device=edge500,rider=alice,source=import";
    records
        .iter()
        .map(|r| {
            format!(
                "gps,{tags} lat={},lon={},alt={},speed={} {t}\nheart_rate,{tags} bpm={} {t}\ncadence,{tags} rpm={} {t}\n\
                 temperature,{tags} celsius={} {t}\ndistance,{tags} meters={} {t}\n",
                r.lat, r.lon, r.alt, r.speed, r.heart_rate, r.cadence, r.temperature, r.distance,
                t = r.time
            )
        })
        .collect()
}

#[tokio::test]
async fn the_edge_500_ride_is_summarised_exported_and_drawn_as_its_csv_says() {
    let Some(recorded) = edge_500() else { return };
    let influx = InfluxServer::start().await.expect("influxd");
    influx.write(DB, &line_protocol(&recorded)).await.expect("write");
    // The device wrote fifteen pairs of records in the same second (lap marks); a time
    // series keeps one point per instant, the last written.
    let mut records: Vec<Record> = Vec::with_capacity(recorded.len());
    for r in recorded {
        match records.last_mut() {
            Some(previous) if previous.time == r.time => *previous = r,
            _ => records.push(r),
        }
    }
    assert_eq!(records.len(), 10_671);
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    let (first, last) = (records[0].time, records[records.len() - 1].time);
    let range = format!("from={}&to={}", first / 1_000_000, (last + SECOND) / 1_000_000);

    // Summary.
    let (status, summary) = get(&service, &format!("/v1/riders/alice/summary?{range}"), None).await;
    assert_eq!(status, 200, "{summary}");
    let device_distance = records[records.len() - 1].distance - records[0].distance;
    let distance = summary["distance_m"].as_f64().expect("distance");
    assert!(
        (distance - device_distance).abs() / device_distance < 0.01,
        "distance {distance} m vs the device's {device_distance} m"
    );
    let bpm: Vec<f64> = records.iter().map(|r| r.heart_rate).collect();
    let mean = bpm.iter().sum::<f64>() / bpm.len() as f64;
    assert_eq!(summary["heart_rate"]["avg_bpm"].as_f64(), Some(mean), "the mean of the recorded heart rates");
    assert_eq!(summary["heart_rate"]["max_bpm"].as_f64(), Some(bpm.iter().cloned().fold(0.0, f64::max)));
    assert_eq!(summary["heart_rate"]["samples"].as_u64(), Some(records.len() as u64));
    let moving: f64 = records
        .windows(2)
        .map(|w| ((w[1].time - w[0].time) as f64 / 1e9, w[1].speed))
        .filter(|&(dt, speed)| dt <= 60.0 && speed >= 1.0)
        .map(|(dt, _)| dt)
        .sum();
    let got = summary["moving_time_s"].as_f64().expect("moving time");
    assert!((got - moving).abs() < 1.0, "moving time {got} s vs {moving} s");
    let zones: f64 = summary["heart_rate"]["zones"]
        .as_array()
        .expect("zones from max_hr 190")
        .iter()
        .map(|z| z["seconds"].as_f64().expect("seconds"))
        .sum();
    let covered: f64 =
        records.windows(2).map(|w| (w[1].time - w[0].time) as f64 / 1e9).filter(|dt| *dt <= 60.0).sum();
    assert!((zones - covered).abs() < 1e-6, "zone seconds {zones} vs {covered}");
    assert_eq!(summary["devices"]["gps"], "edge500");

    // GPX export, read back by the gpx crate.
    let (status, headers, text) =
        get_raw(&service, &format!("/v1/riders/alice/export.gpx?{range}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/gpx+xml");
    let gpx = gpx::read(text.as_bytes()).expect("a GPX file the gpx crate reads");
    let points = &gpx.tracks[0].segments[0].points;
    assert_eq!(points.len(), records.len());
    for (i, (p, r)) in points.iter().zip(&records).enumerate() {
        // Full resolution: the coordinates as written, bit for bit.
        assert_eq!((p.point().y(), p.point().x()), (r.lat, r.lon), "point {i}");
        assert_eq!(p.elevation, Some(r.alt));
        let time: String = p.time.expect("time").format().expect("formats");
        assert_eq!(velometry_core::time::parse_rfc3339(&time).expect("RFC 3339"), r.time);
    }
    assert_eq!(text.matches("<gpxtpx:hr>").count(), records.len());

    // CSV export.
    let (status, _, text) = get_raw(&service, &format!("/v1/riders/alice/export.csv?{range}"), None).await;
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV row")).collect();
    assert_eq!(rows.len(), records.len());
    let heart_rate =
        reader.headers().expect("header").iter().position(|h| h == "heart_rate").expect("column");
    for (row, r) in rows.iter().zip(&records) {
        assert_eq!(row[heart_rate].parse::<f64>().ok(), Some(r.heart_rate));
    }

    // Track.
    let (status, track) =
        get(&service, &format!("/v1/riders/alice/track?{range}&max_points=500"), None).await;
    assert_eq!(status, 200);
    let coordinates = track["geometry"]["coordinates"].as_array().expect("a LineString");
    assert!(coordinates.len() <= 500 && coordinates.len() > 100, "{} vertices", coordinates.len());
    let end = |c: &serde_json::Value| (c[1].as_f64().expect("lat"), c[0].as_f64().expect("lon"));
    let near = |(a, b): (f64, f64), r: &Record| (a - r.lat).abs() < 1e-12 && (b - r.lon).abs() < 1e-12;
    assert!(near(end(&coordinates[0]), &records[0]), "starts where the ride starts");
    assert!(
        near(end(&coordinates[coordinates.len() - 1]), &records[records.len() - 1]),
        "ends where it ends"
    );
    assert_eq!(track["properties"]["times"][0].as_i64(), Some(first / 1_000_000));
}
