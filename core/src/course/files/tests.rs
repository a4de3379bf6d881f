use std::io::Write;

use super::*;
use crate::geo::{haversine_m, offset};

/// A course of `n` points 100 m apart heading north-east from 45° N 7° E, climbing 1 m each.
fn points(n: usize) -> Vec<(f64, f64, Option<f64>)> {
    (0..n)
        .map(|i| {
            let (lat, lon) = offset(45.0, 7.0, 70.71 * i as f64, 70.71 * i as f64);
            (lat, lon, Some(200.0 + i as f64))
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in memory");
    gz.finish().expect("in memory")
}

fn same_course(got: &Course, want: &[(f64, f64, Option<f64>)]) {
    assert_eq!(got.points().len(), want.len());
    for (p, (lat, lon, ele)) in got.points().iter().zip(want) {
        assert!(haversine_m(p.lat, p.lon, *lat, *lon) < 0.01, "{p:?} is not {lat},{lon}");
        assert_eq!(p.ele.map(f64::round), ele.map(f64::round));
    }
}

#[test]
fn a_gpx_course_we_write_reads_back_gzipped_or_not() {
    let want = points(50);
    let course = Course::new(want.clone()).expect("a course");
    let (lat, lon) = offset(45.0, 7.0, 2_000.0, 2_000.0);
    let waypoints = vec![Waypoint { name: "Col".into(), lat, lon }];
    let gpx = to_gpx("Test loop", &course, &waypoints).expect("GPX");
    for (name, bytes) in [("c.gpx", gpx.clone()), ("c.GPX.gz", gzip(&gpx))] {
        let file = read_bytes(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((file.format, file.name.as_deref()), (Format::Gpx, Some("Test loop")));
        same_course(&file.course, &want);
        assert_eq!(file.waypoints, waypoints);
    }
}

#[test]
fn a_gpx_route_is_a_course_when_there_is_no_track() {
    let gpx = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="planner" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="45.5" lon="7.5"></wpt>
  <rte><name>Planned</name>
    <rtept lat="45.0" lon="7.0"><ele>100</ele></rtept>
    <rtept lat="45.01" lon="7.0"><ele>110</ele></rtept>
    <rtept lat="45.02" lon="7.01"></rtept>
  </rte>
</gpx>"#;
    let file = read_bytes("route.gpx", gpx.as_bytes()).expect("a course");
    assert_eq!(file.name.as_deref(), Some("Planned"));
    assert_eq!(file.course.points().len(), 3);
    assert_eq!(file.course.points()[1].ele, Some(110.0));
    assert_eq!(file.waypoints, [Waypoint { name: "waypoint 1".into(), lat: 45.5, lon: 7.5 }]);
}

#[test]
fn a_tcx_course_gives_its_trackpoints_and_course_points() {
    let tcx = r#"<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">
  <Courses><Course><Name>Ventoux</Name>
    <Track>
      <Trackpoint><Position><LatitudeDegrees>44.17</LatitudeDegrees><LongitudeDegrees>5.27</LongitudeDegrees></Position><AltitudeMeters>300</AltitudeMeters></Trackpoint>
      <Trackpoint><Time>2026-01-01T00:00:00Z</Time></Trackpoint>
      <Trackpoint><Position><LatitudeDegrees>44.18</LatitudeDegrees><LongitudeDegrees>5.28</LongitudeDegrees></Position></Trackpoint>
    </Track>
    <CoursePoint><Name>Summit</Name><Position><LatitudeDegrees>44.18</LatitudeDegrees><LongitudeDegrees>5.28</LongitudeDegrees></Position><PointType>Summit</PointType></CoursePoint>
  </Course></Courses>
</TrainingCenterDatabase>"#;
    let file = read_bytes("ventoux.tcx", tcx.as_bytes()).expect("a course");
    assert_eq!((file.format, file.name.as_deref()), (Format::Tcx, Some("Ventoux")));
    assert_eq!(file.course.points().len(), 2, "the point without a position is left out");
    assert_eq!(file.course.points()[0].ele, Some(300.0));
    assert_eq!(file.waypoints, [Waypoint { name: "Summit".into(), lat: 44.18, lon: 5.28 }]);
    let broken = tcx.replace("<LatitudeDegrees>44.17", "<LatitudeDegrees>north");
    let err = read_bytes("ventoux.tcx", broken.as_bytes()).unwrap_err().to_string();
    assert!(err.starts_with("ventoux.tcx: not TCX: LatitudeDegrees \"north\""), "{err}");
}

/// A FIT course: a `course` message naming it, one `record` per point (position and
/// altitude) and one `course_point` per waypoint (position and name).
fn fit_course(name: &str, points: &[(f64, f64, Option<f64>)], waypoints: &[(&str, f64, f64)]) -> Vec<u8> {
    let semicircles = |degrees: f64| ((degrees / 180.0 * 2_147_483_648.0).round() as i32).to_le_bytes();
    let text = |s: &str| {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    };
    // Local 0: course (31), field 5 name (string[16]). Local 1: record (20), fields 0 and 1
    // position (sint32), 2 altitude (uint16, scale 5, offset 500). Local 2: course_point
    // (32), fields 2 and 3 position (sint32), 6 name (string[16]).
    let mut data = vec![0x40, 0, 0, 31, 0, 1, 5, 16, 0x07, 0x00];
    data.extend(text(name));
    data.extend([0x41, 0, 0, 20, 0, 3, 0, 4, 0x85, 1, 4, 0x85, 2, 2, 0x84]);
    for (lat, lon, ele) in points {
        data.push(0x01);
        data.extend(semicircles(*lat));
        data.extend(semicircles(*lon));
        let altitude = ele.map_or(0xFFFF, |e| ((e + 500.0) * 5.0).round() as u16);
        data.extend(altitude.to_le_bytes());
    }
    data.extend([0x42, 0, 0, 32, 0, 3, 2, 4, 0x85, 3, 4, 0x85, 6, 16, 0x07]);
    for (name, lat, lon) in waypoints {
        data.push(0x02);
        data.extend(semicircles(*lat));
        data.extend(semicircles(*lon));
        data.extend(text(name));
    }
    let mut file = vec![12, 0x10, 0x08, 0x08];
    file.extend(u32::try_from(data.len()).expect("small").to_le_bytes());
    file.extend(b".FIT");
    file.extend(data);
    let crc = crate::files::fit::crc(&file);
    file.extend(crc.to_le_bytes());
    file
}

#[test]
fn a_fit_course_gives_its_records_and_course_points() {
    let want = points(20);
    let (lat, lon, _) = want[10];
    let bytes = fit_course("Loop", &want, &[("CP1", lat, lon)]);
    let file = read_bytes("loop.fit", &bytes).expect("a course");
    assert_eq!((file.format, file.name.as_deref()), (Format::Fit, Some("Loop")));
    same_course(&file.course, &want);
    assert_eq!(file.waypoints.len(), 1);
    assert_eq!(file.waypoints[0].name, "CP1");
    assert!(haversine_m(file.waypoints[0].lat, file.waypoints[0].lon, lat, lon) < 0.01);
    let file = read_bytes("no-extension", &bytes).expect("sniffed as FIT");
    assert_eq!(file.format, Format::Fit);
    let cut = &bytes[..bytes.len() - 30];
    let err = read_bytes("loop.fit", cut).unwrap_err().to_string();
    assert!(err.starts_with("loop.fit: not FIT: cut short at byte"), "{err}");
}

#[test]
fn what_is_no_course_is_said_with_the_file_name() {
    let err = |name: &str, bytes: &[u8]| read_bytes(name, bytes).unwrap_err().to_string();
    assert_eq!(
        err("notes.txt", b"hello"),
        "notes.txt: unknown format: give a .gpx, .tcx or .fit course file (optionally .gz)"
    );
    assert!(err("c.gpx", b"<html/>").starts_with("c.gpx: not GPX:"));
    assert!(err("c.gpx.gz", b"plain").starts_with("c.gpx.gz: not gzip data"));
    assert!(err("c.fit", b"garbage garbage").starts_with("c.fit: not a FIT file"));
    let one = to_gpx("one", &Course::new(points(2)).expect("a course"), &[]).expect("GPX");
    let one = String::from_utf8(one).expect("UTF-8");
    let start = one.find("<trkpt").expect("a point");
    let end = one.rfind("<trkpt").expect("a second point");
    let single = format!("{}{}", &one[..start], &one[end..]);
    assert!(
        err("c.gpx", single.as_bytes()).contains("needs at least two distinct points"),
        "{}",
        err("c.gpx", single.as_bytes())
    );
    let missing = read(Path::new("/nonexistent/course.gpx")).unwrap_err().to_string();
    assert!(missing.starts_with("/nonexistent/course.gpx: cannot read the course file"), "{missing}");
}

#[test]
fn the_shared_rides_read_as_courses() {
    let Some(dir) = std::env::var_os("VELOMETRY_RIDES") else {
        println!("skipped: VELOMETRY_RIDES is not set (the test command sets it to ../shared/data/rides)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut read_any = 0;
    for sub in ["fit", "gpx"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("the rides folder") {
            let path = entry.expect("an entry").path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if !["fit", "gpx"].contains(&ext) || path.to_string_lossy().contains("indoor") {
                continue;
            }
            let file = read(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(file.course.length_m() > 100.0, "{}: {} m", path.display(), file.course.length_m());
            read_any += 1;
        }
    }
    assert!(read_any >= 6, "{read_any} rides read");
}
