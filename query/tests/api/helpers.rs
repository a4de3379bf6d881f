//! Starting the query service against a real InfluxDB holding test data, and asking it.

use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use velometry_core::testkit::{metric, InfluxServer, RidersToml, Service, PATIENCE};

pub const DB: &str = "velometry";
pub const COACH: &str = "velo_test_coach";
pub const STRANGER: &str = "velo_test_stranger";
pub const ALICE_EDGE: &str = "velo_test_alice_edge";
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// alice is public (max_hr 190), bob private (seen by the coach only).
pub fn riders_file() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = RidersToml::new()
        .rider("alice", "Alice", true)
        .max_hr(190)
        .device("edge", ALICE_EDGE)
        .rider("bob", "Bob", false)
        .viewer("coach", COACH, &["bob"])
        .viewer("stranger", STRANGER, &["alice"])
        .build();
    std::fs::write(dir.path().join("riders.toml"), text).expect("riders file");
    dir
}

/// A query service on `influx`, rolling up every second unless `extra` says otherwise.
pub async fn query(influx: &InfluxServer, riders: &TempDir, extra: &[&str]) -> Service {
    let mut args = vec![
        "serve".to_owned(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-listen=127.0.0.1:0".into(),
        format!("--influx-url={}", influx.url),
        format!("--riders={}", riders.path().join("riders.toml").display()),
    ];
    if !extra.iter().any(|a| a.starts_with("--rollup-interval")) {
        args.push("--rollup-interval=1s".into());
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Service::start(env!("CARGO_BIN_EXE_query").into(), args).await.expect("the query service starts")
}

/// A GET answered with JSON: status and body.
pub async fn get(service: &Service, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, _, body) = get_raw(service, path, token).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// A GET: status, headers and body text.
pub async fn get_raw(
    service: &Service,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", service.url));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// One line of heart rate as the collector stores it.
pub fn heart_rate(rider: &str, device: &str, t: i64, bpm: f64) -> String {
    format!("heart_rate,device={device},rider={rider},source=lineproto bpm={bpm} {t}\n")
}

/// `n` seconds of 1 Hz heart rate from `start`: a random walk with spikes, runs of equal
/// values and a few gaps, deterministic.
pub fn heart_rate_walk(rider: &str, start: i64, n: usize, seed: u64) -> (String, Vec<(i64, f64)>) {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut v: f64 = 120.0;
    let mut lines = String::new();
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let r = next();
        if r % 500 == 0 {
            continue; // a dropped sample
        }
        v = (v + ((r >> 8) % 7) as f64 - 3.0).clamp(60.0, 200.0);
        let bpm = match r % 997 {
            0 => 240.0,
            1 => 30.0,
            _ => v,
        };
        let t = start + i as i64 * SECOND;
        lines.push_str(&heart_rate(rider, "edge", t, bpm));
        points.push((t, bpm));
    }
    (lines, points)
}

/// Waits until the rollup watermark (as persisted in InfluxDB) reaches `at_least`.
pub async fn wait_for_watermark(influx: &InfluxServer, at_least: i64) -> i64 {
    let mut last = 0;
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        let rows = influx
            .rows(DB, "SELECT last(\"watermark_ns\") FROM \"velometry_rollup_state\"")
            .await
            .unwrap_or_default();
        last = rows.first().and_then(|r| r.get("last")).and_then(Value::as_i64).unwrap_or(0);
        if last >= at_least {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "waited {} s for the rollup watermark to reach {at_least}; it stayed at {last}",
        PATIENCE.as_secs()
    );
}

/// A counter of the service's metrics.
pub async fn counter(service: &Service, name_and_labels: &str) -> f64 {
    metric(&service.metrics().await.expect("metrics"), name_and_labels)
}

/// The `points` of a series answer.
pub fn points(body: &Value) -> Vec<(i64, f64)> {
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {body}"))
        .iter()
        .map(|p| (p[0].as_i64().expect("time"), p[1].as_f64().expect("value")))
        .collect()
}

/// One second of a ride: every measurement an export reads, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub time: i64,
    pub lat: f64,
    pub lon: f64,
    pub alt: f64,
    pub speed: f64,
    pub bpm: f64,
    pub rpm: f64,
    pub watts: f64,
    pub celsius: f64,
    pub meters: f64,
}

/// `seconds` of a 1 Hz ride of device "edge" from `start`, deterministic. Values are drawn
/// with all 53 bits of randomness, so most need 17 significant digits, and times carry a
/// sub-millisecond part; the first latitude is one the service once exported one unit in the
/// last place off.
pub fn ride(start: i64, seconds: usize, seed: u64) -> Vec<Sample> {
    let mut state = seed | 1;
    let mut uniform = |lo: f64, hi: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
    };
    let mut meters = 0.0;
    (0..seconds)
        .map(|i| {
            let speed = uniform(0.0, 15.0);
            meters += speed;
            Sample {
                time: start + i as i64 * SECOND + (i as i64 % 7) * 123_457,
                lat: if i == 0 { 46.000_899_320_363_764 } else { uniform(46.0, 46.01) },
                lon: uniform(14.5, 14.51),
                alt: uniform(290.0, 340.0),
                speed,
                bpm: uniform(90.0, 180.0),
                rpm: uniform(60.0, 100.0),
                watts: uniform(0.0, 400.0),
                celsius: uniform(10.0, 30.0),
                meters,
            }
        })
        .collect()
}

/// `samples` as line protocol for `rider`, every value in the shortest form that reads back
/// as the same number (InfluxDB parses it exactly).
pub fn ride_lines(rider: &str, samples: &[Sample]) -> String {
    let tags = format!("device=edge,rider={rider},source=import");
    samples
        .iter()
        .map(|s| {
            format!(
                "gps,{tags} lat={},lon={},alt={},speed={} {t}\nheart_rate,{tags} bpm={} {t}\n\
                 cadence,{tags} rpm={} {t}\npower,{tags} watts={} {t}\n\
                 temperature,{tags} celsius={} {t}\ndistance,{tags} meters={} {t}\n",
                s.lat,
                s.lon,
                s.alt,
                s.speed,
                s.bpm,
                s.rpm,
                s.watts,
                s.celsius,
                s.meters,
                t = s.time
            )
        })
        .collect()
}

/// Writes `lines` to InfluxDB in requests of at most 30,000 lines.
pub async fn write_all(influx: &InfluxServer, lines: &str) {
    for chunk in lines.lines().collect::<Vec<_>>().chunks(30_000) {
        influx.write(DB, &(chunk.join("\n") + "\n")).await.expect("write");
    }
}

/// The InfluxQL requests the service has sent so far (answered or not).
pub async fn influx_requests(service: &Service) -> f64 {
    counter(service, "query_influx_queries_total{outcome=\"ok\"}").await
        + counter(service, "query_influx_queries_total{outcome=\"error\"}").await
}

pub const CLUB: &str = "velo_test_club";
pub const KM: f64 = 1_000.0;

/// An events riders file: alice (public), bob (private, seen by the coach), erin and dave
/// (public) ride the public event `race` on a 100 km course due north with checkpoints at
/// 40 and 80 km, all starting at `start`; alice alone rides the private event `club`, seen
/// by the viewer `club` (token [`CLUB`]).
pub fn event_riders_file(start: i64) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let points: Vec<(f64, f64, Option<f64>)> = (0..=100)
        .map(|i| (45.0 + f64::from(i) * 0.009, 7.0, Some(200.0 + f64::from(i % 10) * 30.0)))
        .collect();
    velometry_core::testkit::courses::write_course_gpx(&dir.path().join("course.gpx"), "north", &points, &[])
        .expect("course file");
    let start = velometry_core::time::format_rfc3339(start);
    let text = RidersToml::new()
        .rider("alice", "Alice", true)
        .max_hr(190)
        .device("edge", ALICE_EDGE)
        .rider("bob", "Bob", false)
        .rider("erin", "Erin", true)
        .rider("dave", "Dave", true)
        .viewer("coach", COACH, &["bob"])
        .viewer("stranger", STRANGER, &["alice"])
        .raw(&format!(
            "[[viewer]]\nname = \"club\"\ntoken_sha256 = \"{}\"\nevents = [\"club\"]\n\
             [[event]]\nid = \"race\"\nname = \"The Race\"\ncourse = \"course.gpx\"\npublic = true\n\
             start = \"{start}\"\nriders = [\"alice\", \"bob\", \"erin\", \"dave\"]\ncutoff_after = \"2h\"\n\
             [[event.checkpoint]]\nname = \"CP1\"\ndistance_km = 40.0\n\
             [[event.checkpoint]]\nname = \"CP2\"\ndistance_km = 80.0\ncutoff_after = \"1d\"\n\
             [[event]]\nid = \"club\"\ncourse = \"course.gpx\"\nstart = \"{start}\"\nriders = [\"alice\"]\n",
            velometry_core::riders::TokenHash::of(CLUB).to_hex()
        ))
        .build();
    std::fs::write(dir.path().join("riders.toml"), text).expect("riders file");
    dir
}

/// The progress service's readings of a rider of `race` who rode at `mps` from `start`
/// with a fix every 10 s until `end`, stopping (sleeping) from `stop_at` on if given: one
/// `course_progress` per fix, a `course_status` at the start (and at the stop), a
/// `checkpoint` arrival at each of 40 and 80 km reached, and withdrawn points beside them. The ETA to the next checkpoint is
/// at the speed ridden, ±5 minutes.
pub fn progress_lines(rider: &str, start: i64, end: i64, mps: f64, stop_at: Option<i64>) -> String {
    let code =
        velometry_core::event::status::event_code(&velometry_core::ids::EventId::parse("race").expect("id"))
            as u64;
    let tags = format!("device=progress,rider={rider},source=progress");
    let mut out = format!("course_status,{tags} event={code},status=0 {start}\n");
    // A change of status a minute later that a recomputation withdrew: not the status now.
    out += &format!("course_status,{tags} event={code},status=7 {}\n", start + 60 * SECOND);
    let moving_until = stop_at.unwrap_or(end);
    let mut t = start;
    while t <= end {
        let ridden = (t.min(moving_until) - start) as f64 / SECOND as f64 * mps;
        let status = if t > moving_until { 3 } else { 0 };
        let next = [40.0 * KM, 80.0 * KM].iter().position(|&c| c > ridden);
        let mut fields = format!(
            "event={code},current_m={ridden},progress_m={ridden},to_go_m={},from_course_m=3,off_course=0,status={status}",
            100.0 * KM - ridden
        );
        if let Some(i) = next {
            let at = (t + (([40.0, 80.0][i] * KM - ridden) / mps * SECOND as f64) as i64) / SECOND;
            fields += &format!(
                ",next_checkpoint={i},eta_next_p10={},eta_next_p50={at},eta_next_p90={}",
                at - 300,
                at + 300
            );
        }
        let finish = (t + ((100.0 * KM - ridden) / mps * SECOND as f64) as i64) / SECOND;
        fields += &format!(
            ",eta_finish_p10={},eta_finish_p50={finish},eta_finish_p90={}",
            finish - 600,
            finish + 600
        );
        out += &format!("course_progress,{tags} {fields} {t}\n");
        t += 10 * SECOND;
    }
    if let Some(at) = stop_at {
        out += &format!("course_status,{tags} event={code},status=3 {at}\n");
    }
    for (index, km) in [40.0, 80.0].into_iter().enumerate() {
        let at = start + (km * KM / mps * SECOND as f64) as i64;
        if at <= moving_until.min(end) {
            let t = at / 1_000_000 * 1_000_000 + 4 * index as i64;
            out += &format!("checkpoint,{tags} event={code},checkpoint={index},outcome=0,late=0 {t}\n");
            // An arrival ten minutes earlier that a recomputation withdrew: in no answer.
            let withdrawn = t - 600 * SECOND;
            out +=
                &format!("checkpoint,{tags} event={code},checkpoint={index},outcome=3,late=0 {withdrawn}\n");
        }
    }
    out
}
