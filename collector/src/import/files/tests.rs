use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;

use super::*;

/// 2026-11-27T10:00:00Z: later than every shared ride.
const NOW: Nanos = 1_795_773_600_000_000_000;
const SECOND: Nanos = 1_000_000_000;
/// Seconds from the Unix epoch to the FIT epoch, 1989-12-31T00:00:00Z.
const FIT_EPOCH: i64 = 631_065_600;

fn rides(sub: &str) -> Option<PathBuf> {
    velometry_core::testkit::rides(sub)
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} files in {}", dir.display());
    files
}

fn of(readings: &[Reading], metric: Metric) -> Vec<&Reading> {
    readings.iter().filter(|r| r.metric() == metric).collect()
}

fn values(readings: &[Reading], metric: Metric, field: &str) -> Vec<f64> {
    of(readings, metric).iter().map(|r| r.float(field).unwrap()).collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn pacific(text: &str) -> Nanos {
    velometry_core::testkit::pacific_time(text)
}

fn degrees(semicircles: &str) -> f64 {
    semicircles.parse::<f64>().unwrap() * 180.0 / 2_147_483_648.0
}

#[test]
fn fit_records_match_the_sdk_dump() {
    let Some(dir) = rides("fit") else { return };
    for fit in files_in(&dir, "fit") {
        let csv = fit.with_file_name(format!("{}-records.csv", fit.file_stem().unwrap().to_string_lossy()));
        let Ok(csv) = std::fs::read_to_string(&csv) else { continue };
        let name = fit.display().to_string();
        let got = read(&fit, NOW).expect("a good FIT file reads");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let column = |field: &str| header.iter().position(|h| *h == field).unwrap();
        let (time_col, hr_col, cad_col, speed_col, dist_col) = (
            column("timestamp"),
            column("heart_rate"),
            column("cadence"),
            column("speed"),
            column("distance"),
        );
        let (lat_col, lon_col, alt_col, temp_col) =
            (column("position_lat"), column("position_long"), column("altitude"), column("temperature"));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();

        assert_eq!(got.format, Format::Fit);
        assert_eq!(got.records, rows.len(), "{name}: one record per CSV row");
        assert!(got.skipped.is_empty(), "{name}: skipped {:?}", got.skipped);
        let mut queues: BTreeMap<Metric, VecDeque<&Reading>> = BTreeMap::new();
        for r in &got.readings {
            queues.entry(r.metric()).or_default().push_back(r);
        }
        let mut next = |metric: Metric, time: Nanos| -> Option<&Reading> {
            let queue = queues.get_mut(&metric)?;
            queue.front().filter(|r| r.time() == time)?;
            queue.pop_front()
        };
        let (mut last_position, mut no_position, mut no_cadence) = (None, 0, 0);
        for (i, row) in rows.iter().enumerate() {
            let at = format!("{name} row {}", i + 2);
            let cell = |col: usize| Some(row[col]).filter(|c| !c.is_empty());
            let number = |col: usize| cell(col).map(|c| c.parse::<f64>().unwrap());
            let time = pacific(row[time_col]);
            if let Some(bpm) = number(hr_col) {
                let r = next(Metric::HeartRate, time).unwrap_or_else(|| panic!("{at}: no heart rate"));
                assert_eq!(r.float("bpm"), Some(bpm), "{at}");
            }
            if let Some(rpm) = number(cad_col) {
                match next(Metric::Cadence, time) {
                    Some(r) => assert_eq!(r.float("rpm"), Some(rpm), "{at}"),
                    // The SDK's dump tool writes an invalid cadence as 0.
                    None if rpm == 0.0 => no_cadence += 1,
                    None => panic!("{at}: no cadence"),
                }
            }
            if let (Some(lat), Some(lon)) = (cell(lat_col), cell(lon_col)) {
                match next(Metric::Gps, time) {
                    Some(r) => {
                        assert_eq!(r.float("lat"), Some(degrees(lat)), "{at}");
                        assert_eq!(r.float("lon"), Some(degrees(lon)), "{at}");
                        let alt = r.float("alt").unwrap();
                        assert!(close(alt, number(alt_col).unwrap()), "{at}: alt {alt}");
                        let speed = r.float("speed").unwrap();
                        assert!(close(speed, number(speed_col).unwrap()), "{at}: speed {speed}");
                        last_position = Some((lat, lon));
                    }
                    // The dump tool writes an invalid position as the last valid one.
                    None => {
                        assert_eq!(last_position, Some((lat, lon)), "{at}: no gps reading");
                        no_position += 1;
                    }
                }
            }
            if let Some(meters) = number(dist_col) {
                let r = next(Metric::Distance, time).unwrap_or_else(|| panic!("{at}: no distance"));
                assert!(close(r.float("meters").unwrap(), meters), "{at}");
            }
            if let Some(celsius) = number(temp_col) {
                let r = next(Metric::Temperature, time).unwrap_or_else(|| panic!("{at}: no temperature"));
                assert_eq!(r.float("celsius"), Some(celsius), "{at}");
            }
        }
        for (metric, left) in &queues {
            assert!(left.is_empty(), "{name}: {} {metric} readings match no CSV row", left.len());
        }
        println!("{name}: {} rows, {no_position} without position, {no_cadence} without cadence", rows.len());
        assert_eq!(got.first, Some(pacific(rows[0][time_col])));
        assert_eq!(got.last, Some(pacific(rows[rows.len() - 1][time_col])));
    }
}

#[test]
fn the_edge_500_keeps_both_records_of_a_repeated_second_in_file_order() {
    let Some(dir) = rides("fit") else { return };
    let got = read(&dir.join("garmin-edge-500-activity.fit"), NOW).unwrap();
    let distances = of(&got.readings, Metric::Distance);
    let repeated = distances.windows(2).filter(|w| w[0].time() == w[1].time()).count();
    assert_eq!(repeated, 15);
    assert!(got.readings.windows(2).all(|w| w[0].time() <= w[1].time()));
}

#[test]
fn an_indoor_ride_has_power_and_no_position() {
    let Some(dir) = rides("fit") else { return };
    let got = read(&dir.join("sample-activity-indoor-trainer.fit"), NOW).unwrap();
    assert_eq!(got.records, 2263);
    assert!(of(&got.readings, Metric::Gps).is_empty());
    assert_eq!(of(&got.readings, Metric::Power).len(), 2222);
    assert_eq!(of(&got.readings, Metric::Cadence).len(), 2222);
    assert_eq!(of(&got.readings, Metric::HeartRate).len(), 2263);
}

#[test]
fn every_fit_file_reads() {
    let Some(dir) = rides("fit") else { return };
    for fit in files_in(&dir, "fit") {
        let got = read(&fit, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert!(got.records > 0 && !got.readings.is_empty(), "{}", fit.display());
    }
}

#[test]
fn every_gpx_file_reads_all_its_points() {
    let Some(dir) = rides("gpx") else { return };
    for path in files_in(&dir, "gpx") {
        let name = path.display().to_string();
        let got = read(&path, NOW).unwrap_or_else(|e| panic!("{e}"));
        let gpx = gpx::read(std::fs::File::open(&path).unwrap()).unwrap();
        let points: Vec<&gpx::Waypoint> = gpx
            .tracks
            .iter()
            .flat_map(|t| &t.segments)
            .flat_map(|s| &s.points)
            .chain(gpx.routes.iter().flat_map(|r| &r.points))
            .collect();
        let untimed = points.iter().filter(|p| p.time.is_none()).count();
        assert_eq!(got.format, Format::Gpx);
        assert_eq!(got.records, points.len(), "{name}");
        assert_eq!(of(&got.readings, Metric::Gps).len(), points.len() - untimed, "{name}");
        assert_eq!(got.skipped.get("no time").copied().unwrap_or(0), untimed, "{name}");
        assert!(got.readings.windows(2).all(|w| w[0].time() <= w[1].time()), "{name}");
    }
}

#[test]
fn gpx_track_point_extensions_give_heart_rate_and_cadence() {
    let Some(dir) = rides("gpx") else { return };
    let path = dir.join("garmin-activity.gpx");
    let text = std::fs::read_to_string(&path).unwrap();
    let got = read(&path, NOW).unwrap();
    assert_eq!(of(&got.readings, Metric::HeartRate).len(), text.matches("<ns3:hr>").count());
    assert_eq!(of(&got.readings, Metric::Cadence).len(), text.matches("<ns3:cad>").count());
    assert_eq!(values(&got.readings, Metric::HeartRate, "bpm")[..2], [74.0, 74.0]);
    assert_eq!(values(&got.readings, Metric::Cadence, "rpm")[..2], [79.0, 0.0]);
    let first = of(&got.readings, Metric::Gps)[0];
    assert_eq!(first.float("alt"), Some(104.0));
    assert_eq!(first.time(), parse_rfc3339("2017-07-29T14:46:35Z").unwrap());
}

#[test]
fn garmin_with_extensions_carries_only_a_track_colour() {
    let Some(dir) = rides("gpx") else { return };
    let got = read(&dir.join("garmin_with_extensions.gpx"), NOW).unwrap();
    assert_eq!(got.records, 3540);
    assert_eq!(of(&got.readings, Metric::Gps).len(), 3540);
    assert_eq!(got.readings.len(), 3540, "no heart rate or cadence in this file");
}

#[test]
fn a_route_without_times_gives_no_readings() {
    let Some(dir) = rides("gpx") else { return };
    let got = read(&dir.join("strava_route_example.gpx"), NOW).unwrap();
    assert_eq!(got.records, 113);
    assert!(got.readings.is_empty());
    assert_eq!(got.skipped, BTreeMap::from([("no time".to_owned(), 113)]));
    assert_eq!((got.first, got.last), (None, None));
}

#[test]
fn every_bad_file_is_an_error_that_names_it_and_the_problem() {
    let Some(dir) = rides("bad") else { return };
    let expected = [
        ("activity-settings-corruptheader.fit", "corrupt chained FIT file (bad header at byte 771"),
        ("badcharacter.gpx", "not GPX: "),
    ];
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(paths.len() >= expected.len());
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "activity-unexpected-eof.fit" {
            // Cut short: read up to the cut, and the damage said.
            let got = read(&path, NOW).unwrap();
            assert_eq!(got.records, 14);
            let damage = got.damage.unwrap();
            assert_eq!((damage.at, damage.expected_bytes, damage.missing_bytes), (751, 771, 20));
            assert_eq!(damage.last_time, got.last);
            continue;
        }
        let (_, problem) = expected
            .iter()
            .find(|(name, _)| *name == file)
            .unwrap_or_else(|| panic!("no expected error for {file}: add it here"));
        let message = read(&path, NOW).expect_err(&file).to_string();
        assert!(message.starts_with(&path.display().to_string()), "{message}");
        assert!(message.contains(problem), "{message}");
    }
}

#[test]
fn no_cut_or_damaged_fit_file_panics() {
    let Some(dir) = rides("fit") else { return };
    let good = std::fs::read(dir.join("garmin-edge-820-bike.fit")).unwrap();
    let whole = read_bytes("whole.fit", &good, NOW).unwrap();
    let mut salvaged = 0;
    for len in 0..good.len() {
        match read_bytes("cut.fit", &good[..len], NOW) {
            Ok(got) => {
                let damage = got.damage.expect("a cut file says it is damaged");
                assert!(damage.at <= len && damage.expected_bytes == good.len(), "{damage:?}");
                assert!(got.readings.len() <= whole.readings.len());
                assert_eq!(got.readings[..], whole.readings[..got.readings.len()], "cut at {len}");
                salvaged += 1;
            }
            Err(err) => assert!(err.to_string().starts_with("cut.fit: "), "{err}"),
        }
    }
    assert!(salvaged > good.len() / 2, "most cuts keep the records before them: {salvaged}");
    for i in 0..good.len() {
        let mut bytes = good.clone();
        bytes[i] ^= 0xFF;
        // Caught by the header checks, the decoder or the data checksum (a flipped byte of
        // the checksum itself no longer matches the data); except a header that now promises
        // more data than there is, which is what a file cut short looks like.
        match read_bytes("bad.fit", &bytes, NOW) {
            Err(_) => {}
            Ok(got) => assert!((4..8).contains(&i) && got.damage.is_some(), "a flip at byte {i} went unseen"),
        }
    }
}

// A FIT file built here, to check what the shared rides do not contain.

/// A FIT file of `record` messages, each a timestamp (FIT seconds) and a heart rate.
fn fit_file(records: &[(u32, u8)]) -> Vec<u8> {
    // Definition of local message 0: global message 20 (record), little endian, fields
    // 253 (timestamp, uint32) and 3 (heart_rate, uint8).
    let mut data = vec![0x40, 0, 0, 20, 0, 2, 253, 4, 0x86, 3, 1, 0x02];
    for (timestamp, bpm) in records {
        data.push(0x00);
        data.extend(timestamp.to_le_bytes());
        data.push(*bpm);
    }
    // A 12-byte header has no checksum of its own: the file's covers it.
    let mut file = vec![12, 0x10, 0x08, 0x08];
    file.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    file.extend(b".FIT");
    file.extend(data);
    let crc = velometry_core::files::fit::crc(&file);
    file.extend(crc.to_le_bytes());
    file
}

fn fit_seconds(rfc3339: &str) -> u32 {
    u32::try_from(parse_rfc3339(rfc3339).unwrap() / SECOND - FIT_EPOCH).unwrap()
}

#[test]
fn fit_invalid_values_vanish_and_out_of_range_ones_are_counted() {
    let t = fit_seconds("2026-05-01T06:00:00Z");
    let file = fit_file(&[(t, 150), (t + 1, 0xFF), (t + 2, 254), (5, 100), (t + 3, 140)]);
    let got = read_bytes("built.fit", &file, NOW).unwrap();
    assert_eq!(got.records, 5);
    assert_eq!(values(&got.readings, Metric::HeartRate, "bpm"), [150.0, 140.0]);
    assert_eq!(
        got.skipped,
        BTreeMap::from([
            ("heart_rate bpm out of range [20, 250] beats/min".to_owned(), 1),
            ("time before 1990-01-01".to_owned(), 1),
        ]),
        "0xFF is FIT's invalid heart rate: absent, not skipped",
    );
    assert_eq!(got.first, Some(i64::from(t) * SECOND + FIT_EPOCH * SECOND));
    assert_eq!(got.last, Some(got.first.unwrap() + 3 * SECOND));
}

#[test]
fn a_fit_file_cut_short_gives_the_records_before_the_cut_and_says_what_was_lost() {
    let t = fit_seconds("2026-05-01T06:00:00Z");
    let file = fit_file(&[(t, 150), (t + 1, 151), (t + 2, 152)]);
    let whole = read_bytes("whole.fit", &file, NOW).unwrap();
    assert_eq!((whole.readings.len(), whole.damage), (3, None));
    // Cut between two messages (without the last record and the checksum), and inside one.
    for (cut, read) in [(file.len() - 8, 2), (file.len() - 10, 1), (file.len() - 14, 1)] {
        let got = read_bytes("cut.fit", &file[..cut], NOW).unwrap();
        assert_eq!(values(&got.readings, Metric::HeartRate, "bpm"), [150.0, 151.0][..read]);
        let damage = got.damage.expect("damage reported");
        let last = i64::from(t + read as u32 - 1) * SECOND + FIT_EPOCH * SECOND;
        assert_eq!(damage.expected_bytes, file.len());
        assert_eq!(damage.last_time, Some(last));
        assert_eq!(damage.missing_bytes, file.len() - damage.at);
        assert!(damage.at <= cut);
        assert_eq!(
            damage.to_string(),
            format!(
                "truncated at byte {} of the {} its header promises: {} bytes are lost, the ride after {}",
                damage.at,
                file.len(),
                damage.missing_bytes,
                velometry_core::time::format_rfc3339(last)
            )
        );
    }
    // Cut before the first record: nothing to import, an error.
    let err = read_bytes("cut.fit", &file[..20], NOW).unwrap_err();
    assert_eq!(err.to_string(), "cut.fit: truncated at byte 20 (unexpected end of file)");
    let mut damaged = file.clone();
    let last = damaged.len() - 3;
    damaged[last] = 200;
    let err = read_bytes("damaged.fit", &damaged, NOW).unwrap_err().to_string();
    assert!(err.starts_with("damaged.fit: corrupt FIT data at byte ") && err.contains("checksum"), "{err}");
}

/// A FIT file whose record definition has a field of 3 bytes typed uint16 (2 bytes), as
/// Coros writes, besides a timestamp and a heart rate.
fn fit_file_with_an_odd_field(records: &[(u32, u8)]) -> Vec<u8> {
    let mut data = vec![0x40, 0, 0, 20, 0, 3, 253, 4, 0x86, 3, 1, 0x02, 250, 3, 0x84];
    for (timestamp, bpm) in records {
        data.push(0x00);
        data.extend(timestamp.to_le_bytes());
        data.push(*bpm);
        data.extend([1, 2, 3]);
    }
    let mut file = vec![12, 0x10, 0x08, 0x08];
    file.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    file.extend(b".FIT");
    file.extend(data);
    let crc = velometry_core::files::fit::crc(&file);
    file.extend(crc.to_le_bytes());
    file
}

#[test]
fn a_field_size_that_is_not_a_multiple_of_its_type_is_read_and_the_checksum_still_holds() {
    let t = fit_seconds("2026-05-01T06:00:00Z");
    let file = fit_file_with_an_odd_field(&[(t, 150), (t + 1, 151)]);
    let got = read_bytes("coros.fit", &file, NOW).unwrap();
    assert_eq!(values(&got.readings, Metric::HeartRate, "bpm"), [150.0, 151.0]);
    assert_eq!((got.damage, got.skipped.len()), (None, 0));
    let mut damaged = file.clone();
    let bpm = damaged.len() - 2 - 4;
    damaged[bpm] = 152;
    let err = read_bytes("coros.fit", &damaged, NOW).unwrap_err().to_string();
    assert!(err.contains("checksum"), "a changed byte is still caught: {err}");
}

#[test]
fn the_format_comes_from_the_name_or_the_fit_signature() {
    let t = fit_seconds("2026-05-01T06:00:00Z");
    let file = fit_file(&[(t, 150)]);
    assert_eq!(read_bytes("RIDE.FIT", &file, NOW).unwrap().format, Format::Fit);
    assert_eq!(read_bytes("upload", &file, NOW).unwrap().format, Format::Fit);
    let err = read_bytes("notes.txt", b"hello", NOW).unwrap_err();
    assert_eq!(err.to_string(), "notes.txt: unknown format: give a .fit, .gpx or .tcx file (optionally .gz)");
    let err = read_bytes("ride.fit", b"hello, not a FIT file", NOW).unwrap_err();
    assert_eq!(err.to_string(), "ride.fit: not a FIT file (bad header: no \".FIT\" signature)");
    let err = read_bytes("ride.fit.gz", &file, NOW).unwrap_err();
    assert!(err.to_string().starts_with("ride.fit.gz: not gzip data: "), "{err}");
    assert!(matches!(read(Path::new("/nonexistent/ride.fit"), NOW), Err(FileError::Io { .. })));
}

const TCX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">
  <Activities>
<Activity Sport="Biking">
  <Id>2026-05-01T06:00:00Z</Id>
  <Lap StartTime="2026-05-01T06:00:00Z">
    <Cadence>80</Cadence>
    <Track>
      <Trackpoint>
        <Time>2026-05-01T06:00:00Z</Time>
        <Position><LatitudeDegrees>45.1</LatitudeDegrees><LongitudeDegrees>7.6</LongitudeDegrees></Position>
        <AltitudeMeters>250.5</AltitudeMeters>
        <DistanceMeters>0</DistanceMeters>
        <HeartRateBpm><Value>120</Value></HeartRateBpm>
        <Cadence>85</Cadence>
        <Extensions><ns3:TPX><ns3:Speed>8.5</ns3:Speed><ns3:Watts>210</ns3:Watts></ns3:TPX></Extensions>
      </Trackpoint>
      <Trackpoint>
        <Time>2026-05-01T06:00:01Z</Time>
        <Position><LatitudeDegrees>45.1001</LatitudeDegrees><LongitudeDegrees>7.6001</LongitudeDegrees></Position>
        <AltitudeMeters>250.7</AltitudeMeters>
        <DistanceMeters>8.5</DistanceMeters>
        <HeartRateBpm><Value>300</Value></HeartRateBpm>
        <Cadence>86</Cadence>
      </Trackpoint>
      <Trackpoint>
        <Time>2026-05-01T06:00:02Z</Time>
        <DistanceMeters>17</DistanceMeters>
        <HeartRateBpm><Value>130</Value></HeartRateBpm>
      </Trackpoint>
    </Track>
  </Lap>
</Activity>
  </Activities>
</TrainingCenterDatabase>
"#;

#[test]
fn tcx_trackpoints_become_readings_and_a_wild_heart_rate_is_counted() {
    let got = read_bytes("ride.tcx", TCX.as_bytes(), NOW).unwrap();
    let start = parse_rfc3339("2026-05-01T06:00:00Z").unwrap();
    assert_eq!((got.format, got.records), (Format::Tcx, 3));
    assert_eq!(values(&got.readings, Metric::HeartRate, "bpm"), [120.0, 130.0]);
    assert_eq!(
        got.skipped,
        BTreeMap::from([("heart_rate bpm out of range [20, 250] beats/min".to_owned(), 1)])
    );
    let gps = of(&got.readings, Metric::Gps);
    assert_eq!(gps.len(), 2, "the third trackpoint has no position");
    assert_eq!(
        gps[0].fields().collect::<Vec<_>>(),
        [("lat", 45.1), ("lon", 7.6), ("alt", 250.5), ("speed", 8.5)]
    );
    assert_eq!(values(&got.readings, Metric::Cadence, "rpm"), [85.0, 86.0], "not the lap's 80");
    assert_eq!(values(&got.readings, Metric::Power, "watts"), [210.0]);
    assert_eq!(values(&got.readings, Metric::Distance, "meters"), [0.0, 8.5, 17.0]);
    assert_eq!((got.first, got.last), (Some(start), Some(start + 2 * SECOND)));
}

#[test]
fn a_gzipped_tcx_reads_the_same() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(TCX.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let plain = read_bytes("ride.tcx", TCX.as_bytes(), NOW).unwrap();
    assert_eq!(read_bytes("ride.tcx.gz", &gz, NOW).unwrap(), plain);
    assert_eq!(read_bytes("RIDE.TCX.GZ", &gz, NOW).unwrap(), plain);
}

#[test]
fn broken_xml_is_an_error_that_says_what_is_wrong() {
    let cut = &TCX[..TCX.find("<HeartRateBpm><Value>130").unwrap()];
    let err = read_bytes("cut.tcx", cut.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.to_string(), "cut.tcx: not TCX: unexpected end of file inside <Trackpoint>");
    let err = read_bytes("ride.tcx", b"<gpx></gpx>", NOW).unwrap_err();
    assert_eq!(err.to_string(), "ride.tcx: not TCX: the root element is <gpx>, not <TrainingCenterDatabase>");
    let err = read_bytes("ride.tcx", b"<TrainingCenterDatabase><b></TrainingCenterDatabase>", NOW)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("ride.tcx: not TCX: XML error at byte "), "{err}");
    let err = read_bytes("ride.tcx", b"just text", NOW).unwrap_err();
    assert_eq!(err.to_string(), "ride.tcx: not TCX: no XML element");
}

#[test]
fn unreadable_values_and_times_are_counted() {
    let tcx = TCX.replacen("<Value>120</Value>", "<Value>fast</Value>", 1).replacen(
        "2026-05-01T06:00:02Z",
        "yesterday",
        1,
    );
    let got = read_bytes("odd.tcx", tcx.as_bytes(), NOW).unwrap();
    assert!(values(&got.readings, Metric::HeartRate, "bpm").is_empty());
    assert_eq!(
        got.skipped,
        BTreeMap::from([
            ("heart_rate bpm is not a number".to_owned(), 1),
            ("heart_rate bpm out of range [20, 250] beats/min".to_owned(), 1),
            ("unreadable time".to_owned(), 1),
        ])
    );
}

#[test]
fn a_wild_altitude_costs_only_the_altitude() {
    let gpx = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"
 xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
  <trk><trkseg>
<trkpt lat="45.1" lon="7.6"><ele>12000</ele><time>2026-05-01T06:00:00Z</time>
  <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>140</gpxtpx:hr><gpxtpx:atemp>21.5</gpxtpx:atemp>
  </gpxtpx:TrackPointExtension></extensions></trkpt>
<trkpt lat="45.2" lon="7.7"><ele>300</ele><time>2030-01-01T00:00:00Z</time></trkpt>
  </trkseg></trk>
</gpx>"#;
    let got = read_bytes("wild.gpx", gpx.as_bytes(), NOW).unwrap();
    let gps = of(&got.readings, Metric::Gps);
    assert_eq!(gps.len(), 1);
    assert_eq!((gps[0].float("lat"), gps[0].float("alt")), (Some(45.1), None));
    assert_eq!(values(&got.readings, Metric::HeartRate, "bpm"), [140.0]);
    assert_eq!(values(&got.readings, Metric::Temperature, "celsius"), [21.5]);
    assert_eq!(
        got.skipped,
        BTreeMap::from([
            ("gps alt out of range [-500, 9000] m".to_owned(), 1),
            ("time more than 5 minutes in the future".to_owned(), 1),
        ])
    );
}
