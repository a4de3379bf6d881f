//! Writes the corpus every fuzz run starts from, made by velometry's own code: rides of the
//! rider simulator as line protocol, JSON readings, OwnTracks messages, GPX (written with
//! the `gpx` crate) and TCX files, gzipped too; course files (GPX written by velometry's
//! own writer, and TCX); live-feed messages, riders files and WAL plans. The shared FIT recordings are read in place by `deploy/local/fuzz.sh`, as a second
//! corpus folder; gzipped copies of them are made here.
//!
//!   seeds CORPUS_DIR [RIDES_DIR]

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use velometry_collector::simulate::Rider;
use velometry_core::lineproto::encode;
use velometry_core::reading::Reading;
use velometry_core::time::format_rfc3339;
use velometry_fuzz::{Tagged, NOW};

/// Seconds of riding per simulated ride.
const RIDE_SECONDS: i64 = 120;

fn main() -> Result<(), String> {
    let mut args = std::env::args_os().skip(1);
    let corpus = PathBuf::from(args.next().ok_or("usage: seeds CORPUS_DIR [RIDES_DIR]")?);
    let rides = args.next().map(PathBuf::from);
    let mut out = Corpus { root: corpus, written: 0 };
    let tagged = Tagged::new();
    for seed in 0..4 {
        let ride = ride(seed);
        line_protocol(&mut out, seed, &ride, &tagged)?;
        json(&mut out, seed, &ride)?;
        owntracks(&mut out, seed, &ride)?;
        osmand(&mut out, seed, &ride)?;
        gpx_file(&mut out, seed, &ride)?;
        tcx_file(&mut out, seed, &ride)?;
    }
    live_messages(&mut out)?;
    riders_files(&mut out)?;
    course_files(&mut out)?;
    wal_plans(&mut out)?;
    query_params(&mut out)?;
    sources_files(&mut out)?;
    if let Some(rides) = rides {
        gzipped_rides(&mut out, &rides.join("fit"))?;
    }
    println!("{} seeds in {}", out.written, out.root.display());
    Ok(())
}

/// The corpus folders, one per target.
struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        self.written += 1;
        Ok(())
    }

    /// `bytes`, and `bytes` gzipped, for a ride-file target.
    fn put_file(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
        self.put(target, name, bytes)?;
        self.put(target, &format!("{name}.gz"), &gzip(bytes))
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to memory cannot fail.
    let _ = gz.write_all(bytes);
    gz.finish().unwrap_or_default()
}

/// Two minutes of a simulated rider, ending at [`NOW`]: every reading of every second.
fn ride(seed: u64) -> Vec<Reading> {
    let mut rider = Rider::new(seed, 0);
    let start = NOW - RIDE_SECONDS * 1_000_000_000;
    let mut readings = Vec::new();
    for s in 0..RIDE_SECONDS {
        let time = start + s * 1_000_000_000;
        for (metric, fields) in rider.tick() {
            if let Ok(reading) = Reading::known(metric, time, NOW, fields) {
                readings.push(reading);
            }
        }
    }
    readings
}

fn line_protocol(out: &mut Corpus, seed: u64, ride: &[Reading], tagged: &Tagged) -> Result<(), String> {
    let mut body = Vec::new();
    for reading in ride {
        encode(reading, tagged.origin("lineproto"), &mut body);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    // What clients send beside velometry's own measurements: tags, every field type,
    // escapes, comments, CRLF, lines without a time.
    let extra = "cpu,host=a\\ b,region=eu-west usage_idle=98.5,usage_user=1i,ok=true,note=\"say \\\"hi\\\"\" 1795773600000000000\r\n\
                 # a comment\n\
                 weather temp=-3.5,wind=12u\n\
                 gps lat=45.1,lon=7.6,alt=250,speed=8.25 1795773600\n\
                 heart_rate,sensor=strap bpm=142i\n";
    for (i, chunk) in text.lines().collect::<Vec<_>>().chunks(40).take(3).enumerate() {
        let line = chunk.first().copied().unwrap_or_default();
        out.put("lineproto_line", &format!("{seed}-{i}"), line.as_bytes())?;
        // The body target's first byte picks the precision: 0 is nanoseconds.
        let mut body = vec![0u8];
        body.extend_from_slice(chunk.join("\n").as_bytes());
        body.push(b'\n');
        out.put("lineproto_body", &format!("{seed}-{i}"), &body)?;
    }
    out.put("lineproto_line", &format!("{seed}-extra"), extra.lines().next().unwrap_or_default().as_bytes())?;
    let mut seconds = vec![3u8];
    seconds.extend_from_slice(extra.as_bytes());
    out.put("lineproto_body", &format!("{seed}-extra"), &seconds)
}

fn json(out: &mut Corpus, seed: u64, ride: &[Reading]) -> Result<(), String> {
    let items: Vec<serde_json::Value> = ride
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, r)| {
            let mut item = serde_json::Map::new();
            item.insert("metric".into(), r.metric().name().into());
            // Both time forms: RFC 3339 and epoch milliseconds.
            item.insert(
                "time".into(),
                if i % 2 == 0 { format_rfc3339(r.time()).into() } else { (r.time() / 1_000_000).into() },
            );
            for (name, value) in r.fields() {
                item.insert(name.into(), value.into());
            }
            serde_json::Value::Object(item)
        })
        .collect();
    out.put(
        "json_readings",
        &format!("{seed}-batch"),
        serde_json::Value::from(items.clone()).to_string().as_bytes(),
    )?;
    out.put("json_readings", &format!("{seed}-one"), items[0].to_string().as_bytes())
}

fn owntracks(out: &mut Corpus, seed: u64, ride: &[Reading]) -> Result<(), String> {
    let fixes: Vec<serde_json::Value> = ride
        .iter()
        .filter(|r| r.metric().name() == "gps")
        .take(5)
        .map(|r| {
            serde_json::json!({
                "_type": "location", "tid": "al", "tst": r.time() / 1_000_000_000,
                "lat": r.float("lat"), "lon": r.float("lon"), "alt": r.float("alt"),
                "vel": r.float("speed").map(|v| v * 3.6), "cog": r.float("heading"),
                "acc": 8, "batt": 80, "conn": "m", "t": "u",
            })
        })
        .collect();
    out.put("owntracks", &format!("{seed}-location"), fixes[0].to_string().as_bytes())?;
    out.put("owntracks", &format!("{seed}-encrypted"), encrypted(&fixes[0]).to_string().as_bytes())?;
    out.put("owntracks", &format!("{seed}-array"), serde_json::Value::from(fixes).to_string().as_bytes())?;
    let others = [
        serde_json::json!({"_type": "transition", "event": "enter", "desc": "home", "tst": 1_795_773_600}),
        serde_json::json!({"_type": "encrypted", "data": "bm90IHJlYWxseSBlbmNyeXB0ZWQ="}),
        serde_json::json!({"_type": "lwt", "tst": 1_795_773_600}),
    ];
    for (i, other) in others.iter().enumerate() {
        out.put("owntracks", &format!("{seed}-other-{i}"), other.to_string().as_bytes())?;
    }
    Ok(())
}

/// `message` encrypted as the OwnTracks apps do with the secret of Alice's phone: libsodium's
/// secretbox, base64 of the nonce followed by the box.
fn encrypted(message: &serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    use crypto_secretbox::aead::{Aead, KeyInit};
    use crypto_secretbox::{Nonce, XSalsa20Poly1305};

    let mut key = [0u8; 32];
    let secret = velometry_fuzz::device::SECRET.as_bytes();
    key[..secret.len().min(32)].copy_from_slice(&secret[..secret.len().min(32)]);
    let nonce = [7u8; 24];
    let boxed = XSalsa20Poly1305::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), message.to_string().as_bytes())
        .unwrap_or_default();
    let data = base64::engine::general_purpose::STANDARD.encode([&nonce[..], &boxed].concat());
    serde_json::json!({"_type": "encrypted", "data": data})
}

fn osmand(out: &mut Corpus, seed: u64, ride: &[Reading]) -> Result<(), String> {
    for (i, (fix, hr)) in fixes(ride).into_iter().take(3).enumerate() {
        let (lat, lon) = (fix.float("lat").unwrap_or(0.0), fix.float("lon").unwrap_or(0.0));
        let seconds = fix.time() / 1_000_000_000;
        // The first byte picks the variant: even, parameters; odd, Traccar's JSON.
        let query = format!(
            "id=velo_fuzz&lat={lat}&lon={lon}&timestamp={}&altitude={}&speed={}&bearing={}&accuracy=8{}{}",
            [seconds.to_string(), (seconds * 1000).to_string(), format_rfc3339(fix.time())][i % 3],
            fix.float("alt").unwrap_or(0.0),
            fix.float("speed").unwrap_or(0.0) / 0.514_444,
            fix.float("heading").unwrap_or(-1.0),
            hr.map(|bpm| format!("&heartRate={bpm}")).unwrap_or_default(),
            if i == 1 { "&speed_unit=mps&batt=80" } else { "" },
        );
        out.put("osmand", &format!("{seed}-{i}-params"), &[b"\0".as_slice(), query.as_bytes()].concat())?;
        let json = serde_json::json!({
            "device_id": "velo_fuzz",
            "location": {
                "timestamp": format_rfc3339(fix.time()),
                "coords": {"latitude": lat, "longitude": lon, "altitude": fix.float("alt"),
                           "speed": fix.float("speed"), "heading": fix.float("heading"), "accuracy": 8},
                "extras": {"heartRate": hr},
                "battery": {"level": 0.8},
            }
        });
        out.put(
            "osmand",
            &format!("{seed}-{i}-json"),
            &[b"\x01".as_slice(), json.to_string().as_bytes()].concat(),
        )?;
    }
    Ok(())
}

/// The ride's GPS fixes with their heart rate, second by second.
fn fixes(ride: &[Reading]) -> Vec<(&Reading, Option<f64>)> {
    ride.iter()
        .filter(|r| r.metric().name() == "gps")
        .map(|fix| {
            let hr = ride
                .iter()
                .find(|r| r.time() == fix.time() && r.metric().name() == "heart_rate")
                .and_then(|r| r.float("bpm"));
            (fix, hr)
        })
        .collect()
}

fn offset_date_time(nanos: i64) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|e| e.to_string())
}

fn gpx_file(out: &mut Corpus, seed: u64, ride: &[Reading]) -> Result<(), String> {
    let mut segment = gpx::TrackSegment::new();
    for (fix, _) in fixes(ride) {
        let point = geo_types::Point::new(fix.float("lon").unwrap_or(0.0), fix.float("lat").unwrap_or(0.0));
        let mut waypoint = gpx::Waypoint::new(point);
        waypoint.elevation = fix.float("alt");
        waypoint.time = Some(offset_date_time(fix.time())?.into());
        segment.points.push(waypoint);
    }
    let mut track = gpx::Track::new();
    track.name = Some(format!("simulated ride {seed}"));
    track.segments.push(segment);
    let file = gpx::Gpx { version: gpx::GpxVersion::Gpx11, tracks: vec![track], ..gpx::Gpx::default() };
    let mut bytes = Vec::new();
    gpx::write(&file, &mut bytes).map_err(|e| e.to_string())?;
    out.put_file("ride_gpx", &seed.to_string(), &bytes)
}

fn tcx_file(out: &mut Corpus, seed: u64, ride: &[Reading]) -> Result<(), String> {
    let mut points = String::new();
    for (fix, hr) in fixes(ride) {
        points.push_str(&format!(
            "<Trackpoint><Time>{}</Time><Position><LatitudeDegrees>{}</LatitudeDegrees>\
             <LongitudeDegrees>{}</LongitudeDegrees></Position><AltitudeMeters>{}</AltitudeMeters>{}\
             <Extensions><TPX xmlns=\"http://www.garmin.com/xmlschemas/ActivityExtension/v2\">\
             <Speed>{}</Speed><Watts>210</Watts></TPX></Extensions></Trackpoint>",
            format_rfc3339(fix.time()),
            fix.float("lat").unwrap_or(0.0),
            fix.float("lon").unwrap_or(0.0),
            fix.float("alt").unwrap_or(0.0),
            hr.map(|bpm| format!("<HeartRateBpm><Value>{bpm}</Value></HeartRateBpm>")).unwrap_or_default(),
            fix.float("speed").unwrap_or(0.0),
        ));
    }
    let tcx = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <TrainingCenterDatabase xmlns=\"http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2\">\
         <Activities><Activity Sport=\"Biking\"><Id>{start}</Id><Lap StartTime=\"{start}\"><Track>{points}\
         </Track></Lap></Activity></Activities></TrainingCenterDatabase>",
        start = format_rfc3339(NOW - RIDE_SECONDS * 1_000_000_000),
    );
    out.put_file("ride_tcx", &seed.to_string(), tcx.as_bytes())
}

/// Courses as events read them: a loop written as GPX by velometry's own writer, with
/// waypoints, and the same as a TCX course with course points.
fn course_files(out: &mut Corpus) -> Result<(), String> {
    use velometry_core::course::files::{to_gpx, Waypoint};
    use velometry_core::course::Course;
    let points: Vec<(f64, f64, Option<f64>)> = (0..40)
        .map(|i| {
            let angle = std::f64::consts::TAU * f64::from(i) / 40.0;
            (45.0 + 0.01 * angle.sin(), 7.0 + 0.014 * angle.cos(), Some(200.0 + f64::from(i)))
        })
        .collect();
    let course = Course::new(points.iter().copied()).map_err(|e| e.to_string())?;
    let waypoints: Vec<Waypoint> = [(5, "CP1"), (25, "CP2")]
        .iter()
        .map(|(i, name)| Waypoint { name: (*name).to_owned(), lat: points[*i].0, lon: points[*i].1 })
        .collect();
    let gpx = to_gpx("loop", &course, &waypoints).map_err(|e| e.to_string())?;
    out.put_file("course_file", "loop.gpx", &gpx)?;
    let mut tcx = String::from(
        "<?xml version=\"1.0\"?>\n<TrainingCenterDatabase><Courses><Course><Name>loop</Name><Track>",
    );
    for (lat, lon, ele) in &points {
        tcx.push_str(&format!(
            "<Trackpoint><Position><LatitudeDegrees>{lat}</LatitudeDegrees><LongitudeDegrees>{lon}</LongitudeDegrees></Position><AltitudeMeters>{}</AltitudeMeters></Trackpoint>",
            ele.unwrap_or_default()
        ));
    }
    tcx.push_str("</Track>");
    for w in &waypoints {
        tcx.push_str(&format!(
            "<CoursePoint><Name>{}</Name><Position><LatitudeDegrees>{}</LatitudeDegrees><LongitudeDegrees>{}</LongitudeDegrees></Position></CoursePoint>",
            w.name, w.lat, w.lon
        ));
    }
    tcx.push_str("</Course></Courses></TrainingCenterDatabase>\n");
    out.put_file("course_file", "loop.tcx", tcx.as_bytes())
}

fn live_messages(out: &mut Corpus) -> Result<(), String> {
    for (i, message) in [
        r#"{"op":"subscribe","riders":["alice","bob"]}"#,
        r#"{"op":"subscribe","riders":["*"]}"#,
        r#"{"op":"unsubscribe","riders":["alice"]}"#,
        r#"{"op":"auth","token":"velo_0123456789abcdef"}"#,
    ]
    .iter()
    .enumerate()
    {
        out.put("live_message", &i.to_string(), message.as_bytes())?;
    }
    Ok(())
}

fn riders_files(out: &mut Corpus) -> Result<(), String> {
    let hash = velometry_core::riders::TokenHash::of("velo_fuzz").to_hex();
    let file = format!(
        "[[rider]]\nid = \"alice\"\nname = \"Alice\"\npublic = true\nmax_hr = 190\n\
         [[rider.device]]\nid = \"edge530\"\ntoken_sha256 = \"{hash}\"\n\n\
         [[rider]]\nid = \"bob\"\npublic = false\n\n\
         [[viewer]]\nname = \"coach\"\ntoken_sha256 = \"{hash}\"\nriders = [\"bob\"]\n"
    );
    out.put("riders_file", "two-riders", file.as_bytes())?;
    out.put("riders_file", "empty", b"")
}

fn wal_plans(out: &mut Corpus) -> Result<(), String> {
    let records: Vec<u8> = (0..=255u8).cycle().take(600).collect();
    // No damage; a flipped byte in the first segment; a cut in the last; both.
    let plans: [&[u8]; 4] = [&[0], &[1, 0, 20, 0, 0x40], &[1, 255, 90, 0, 0], &[2, 1, 9, 0, 1, 0, 3, 0, 0]];
    for (i, plan) in plans.iter().enumerate() {
        let mut seed = plan.to_vec();
        seed.extend_from_slice(&records);
        out.put("wal_segments", &i.to_string(), &seed)?;
    }
    Ok(())
}

/// Gzipped copies of the shared FIT recordings (the plain ones are read in place).
fn gzipped_rides(out: &mut Corpus, dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("fit")) {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.put("ride_fit", &format!("{name}.gz"), &gzip(&bytes))?;
        }
    }
    Ok(())
}

fn query_params(out: &mut Corpus) -> Result<(), String> {
    let day = 86_400_000;
    let to = NOW / 1_000_000;
    for (i, query) in [
        format!("from={}&to={to}&max_points=1000&method=m4", to - day),
        format!(
            "from={}&to={}&max_points=100&method=mean&tier=1m",
            format_rfc3339(NOW - 3 * 86_400_000_000_000),
            format_rfc3339(NOW)
        ),
        format!("from={}&max_points=10000&method=lttb&tier=raw", to - 3_600_000),
        "from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z&max_points=1000&tier=1h".to_owned(),
        "from=1800-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&method=mean&max_points=100".to_owned(),
        "to=2199-12-31T23:59:59.999999999Z&max_points=10".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        out.put("query_params", &i.to_string(), query.as_bytes())?;
    }
    Ok(())
}

/// Sources files of every kind (the examples in deploy/sources/ are read in place).
fn sources_files(out: &mut Corpus) -> Result<(), String> {
    let files = [
        "[[source]]\nname = \"cuff\"\nkind = \"json\"\nrider = \"alice\"\nevery = \"15m\"\n\
         url = \"http://127.0.0.1:9/measurements?since={since}\"\nitems = \"/measurements\"\n\
         metric = \"blood_pressure\"\ntime = \"/taken_at\"\n\
         fields = { systolic = \"/sys\", diastolic = \"/dia\" }\n",
        "[[source]]\nname = \"page\"\nkind = \"scraper\"\nrider = \"alice\"\ncron = \"0 */5 * * * *\"\n\
         url = \"http://127.0.0.1:9/\"\n",
        "[[source]]\nname = \"charge6\"\nkind = \"fitbit\"\nrider = \"alice\"\nevery = \"1h\"\n\
         client_id = \"${FITBIT_CLIENT_ID}\"\n",
        "[[source]]\nname = \"strava\"\nkind = \"strava\"\nrider = \"alice\"\nevery = \"1h\"\n",
    ];
    for (i, file) in files.iter().enumerate() {
        out.put("sources_file", &i.to_string(), file.as_bytes())?;
    }
    Ok(())
}
