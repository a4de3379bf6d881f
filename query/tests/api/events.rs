//! Events: the course, the standings, the race flow, the checkpoints and the stops, read from
//! the progress service's readings in a real InfluxDB; who may see which event and which
//! entrant.

use serde_json::Value;
use velometry_core::testkit::InfluxServer;

use crate::helpers::*;

/// alice rides 10 m/s for two hours, bob (private) 12 m/s, erin 8 m/s and sleeps from
/// 6,000 s; dave has not started. Alice stopped once; a second stop was withdrawn. The
/// finish closes two hours after the start: Alice had not finished; Bob's finish (late)
/// is there too, the outcome one past the last checkpoint (the reader takes what InfluxDB
/// holds, even a finish short of the end). Returns the service, the riders folder and the start.
async fn race(influx: &InfluxServer) -> (velometry_core::testkit::Service, tempfile::TempDir, i64) {
    let start = (velometry_core::time::now_nanos() - 3 * HOUR) / SECOND * SECOND;
    let end = start + 7_200 * SECOND;
    let code =
        velometry_core::event::status::event_code(&velometry_core::ids::EventId::parse("race").expect("id"))
            as u64;
    let lines = progress_lines("alice", start, end, 10.0, None)
        + &progress_lines("bob", start, end, 12.0, None)
        + &progress_lines("erin", start, end, 8.0, Some(start + 6_000 * SECOND))
        + &format!(
            "stop,device=progress,rider=alice,source=progress event={code},duration_s=300,lat=45.1,lon=7.0,at_m=10000,status=1 {}\n\
             stop,device=progress,rider=alice,source=progress event={code},duration_s=900,lat=45.2,lon=7.0,at_m=20000,status=7 {}\n\
             checkpoint,device=progress,rider=alice,source=progress event={code},checkpoint=2,outcome=2 {}\n\
             checkpoint,device=progress,rider=bob,source=progress event={code},checkpoint=2,outcome=0,late=1 {}\n",
            start + 1_000 * SECOND,
            start + 2_000 * SECOND,
            start + 7_200 * SECOND + 4 * 2 + 2,
            start + 7_300 * SECOND + 4 * 2,
        );
    write_all(influx, &lines).await;
    let riders = event_riders_file(start);
    let service = query(influx, &riders, &[]).await;
    (service, riders, start)
}

fn row<'a>(standings: &'a Value, rider: &str) -> &'a Value {
    standings["standings"]
        .as_array()
        .expect("standings")
        .iter()
        .find(|r| r["rider"] == rider)
        .unwrap_or_else(|| panic!("no {rider} in {standings}"))
}

fn riders_of(standings: &Value) -> Vec<(String, Value)> {
    standings["standings"]
        .as_array()
        .expect("standings")
        .iter()
        .map(|r| (r["rider"].as_str().unwrap_or_default().to_owned(), r["rank"].clone()))
        .collect()
}

#[tokio::test]
async fn standings_rank_gap_and_hide_what_the_caller_may_not_see() {
    let influx = InfluxServer::start().await.expect("influxd");
    let (service, _riders, start) = race(&influx).await;
    let ms = |s: i64| (start + s * SECOND) / 1_000_000;

    let (status, anonymous) = get(&service, "/v1/events/race/standings", None).await;
    assert_eq!(status, 200, "{anonymous}");
    assert_eq!(
        riders_of(&anonymous),
        [
            ("alice".to_owned(), Value::from(1)),
            ("erin".to_owned(), Value::from(2)),
            ("dave".to_owned(), Value::Null)
        ],
        "bob is private: not there, and no rank missing for him"
    );
    let alice = row(&anonymous, "alice");
    assert_eq!(alice["distance_m"], 72_000.0);
    assert_eq!(alice["to_go_m"], 28_000.0);
    assert_eq!((alice["gap_m"].as_f64(), alice["gap_s"].as_f64()), (Some(0.0), Some(0.0)));
    assert_eq!(alice["status"], "riding");
    assert_eq!(alice["status_since"], ms(0));
    assert_eq!(alice["last_fix"], ms(7_200));
    assert_eq!(alice["checkpoints_reached"], 1);
    assert_eq!(alice["next_checkpoint"]["name"], "CP2");
    assert_eq!(alice["next_checkpoint"]["eta"]["p50"], ms(8_000));
    assert_eq!(alice["next_checkpoint"]["eta"]["p10"], ms(7_700));
    assert_eq!(alice["eta_finish"]["p90"], ms(10_600));
    let age = alice["last_fix_age_s"].as_f64().expect("an age");
    assert!((3_600.0..4.0 * 3_600.0).contains(&age), "the last fix is an hour old: {age}");
    let erin = row(&anonymous, "erin");
    assert_eq!(erin["status"], "sleeping");
    assert_eq!(erin["status_since"], ms(6_000));
    assert_eq!(erin["distance_m"], 48_000.0);
    assert_eq!(erin["gap_m"], 24_000.0);
    // alice was at 48 km after 4,800 s; erin's latest fix there is 7,200 s after the start.
    let gap = erin["gap_s"].as_f64().expect("a gap in time");
    assert!((gap - 2_400.0).abs() <= 10.0, "erin is 2,400 s behind: {gap}");
    let dave = row(&anonymous, "dave");
    assert_eq!((dave["status"].as_str(), dave["distance_m"].as_f64()), (Some("not_started"), Some(0.0)));
    assert_eq!(dave["to_go_m"], anonymous["length_m"]);

    // bob's coach sees bob, who leads: the gaps are to him.
    let (_, coach) = get(&service, "/v1/events/race/standings", Some(COACH)).await;
    assert_eq!(
        riders_of(&coach).into_iter().map(|(r, _)| r).collect::<Vec<_>>(),
        ["bob", "alice", "erin", "dave"]
    );
    let alice = row(&coach, "alice");
    assert_eq!(alice["gap_m"], 14_400.0);
    let gap = alice["gap_s"].as_f64().expect("a gap");
    assert!((gap - 1_200.0).abs() <= 10.0, "bob was at 72 km after 6,000 s: {gap}");
    assert_eq!(row(&coach, "bob")["checkpoints_reached"], 2);

    // Gzipped for who accepts it (reqwest asks and decodes by itself: ask by hand here).
    let plain = reqwest::Client::builder().no_gzip().build().expect("a client");
    let url = format!("{}/v1/events/race/standings", service.url);
    let identity = plain.get(&url).send().await.expect("the service answers");
    assert_eq!(identity.headers().get("content-encoding"), None);
    assert_eq!(identity.headers()["vary"], "Accept-Encoding");
    let identity: Value = identity.json().await.expect("JSON");
    let zipped =
        plain.get(&url).header("Accept-Encoding", "br;q=1, gzip;q=0.8").send().await.expect("answers");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.expect("body");
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json).expect("gzip");
    let unzipped: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(unzipped["standings"], identity["standings"]);
    let refused = plain.get(&url).header("Accept-Encoding", "gzip;q=0").send().await.expect("answers");
    assert_eq!(refused.headers().get("content-encoding"), None);

    // CSV: the same rows.
    let (status, headers, csv) = get_raw(&service, "/v1/events/race/standings.csv", None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("rank,rider,name,status,status_since,distance_m"), "{csv}");
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].starts_with("1,alice,Alice,riding,"), "{csv}");
    assert!(lines[3].starts_with(",dave,Dave,not_started,"), "{csv}");
    assert!(!csv.contains("bob"), "{csv}");
}

#[tokio::test]
async fn standings_at_a_moment_are_what_history_held_then() {
    let influx = InfluxServer::start().await.expect("influxd");
    let (service, _riders, start) = race(&influx).await;
    let ms = |s: i64| (start + s * SECOND) / 1_000_000;

    let (status, then) = get(&service, &format!("/v1/events/race/standings?at={}", ms(3_605)), None).await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["as_of"], ms(3_605), "the standings of that moment");
    let alice = row(&then, "alice");
    assert_eq!((alice["rank"].as_u64(), alice["distance_m"].as_f64()), (Some(1), Some(36_000.0)));
    assert_eq!(alice["last_fix"], ms(3_600));
    assert_eq!(alice["last_fix_age_s"], 5.0);
    assert_eq!(alice["checkpoints_reached"], 0, "CP1 came at 4,000 s");
    let [lat, lon] = [0, 1].map(|i| alice["position"][i].as_f64().expect("a dot on the course"));
    assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon), "{alice}");
    let erin = row(&then, "erin");
    assert_eq!((erin["status"].as_str(), erin["gap_m"].as_f64()), (Some("riding"), Some(7_200.0)));
    assert_eq!(row(&then, "dave")["position"], Value::Null, "no dot before a first fix");

    let (_, later) = get(&service, &format!("/v1/events/race/standings?at={}", ms(6_500)), None).await;
    let (alice, erin) = (row(&later, "alice"), row(&later, "erin"));
    assert_eq!(
        (alice["distance_m"].as_f64(), alice["checkpoints_reached"].as_u64()),
        (Some(65_000.0), Some(1))
    );
    assert_eq!((erin["status"].as_str(), erin["status_since"].as_i64()), (Some("sleeping"), Some(ms(6_000))));
    let (_, now) = get(&service, "/v1/events/race/standings", None).await;
    assert_ne!(row(&now, "alice")["position"], alice["position"], "the dot moved on since");

    // Three hours ago is history: caches may keep it.
    let (_, headers, _) =
        get_raw(&service, &format!("/v1/events/race/standings?at={}", ms(3_605)), None).await;
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let (_, _, csv) =
        get_raw(&service, &format!("/v1/events/race/standings.csv?at={}", ms(3_605)), None).await;
    let header: Vec<&str> = csv.lines().next().expect("a header").split(',').collect();
    let alice: Vec<&str> = csv.lines().find(|l| l.contains(",alice,")).expect("alice").split(',').collect();
    let column = |name: &str| alice[header.iter().position(|h| *h == name).expect(name)];
    assert_eq!((column("distance_m"), column("lat").is_empty()), ("36000.0", false));

    let future = velometry_core::time::format_rfc3339(velometry_core::time::now_nanos() + 3_600 * SECOND);
    let (status, refused) = get(&service, &format!("/v1/events/race/standings?at={future}"), None).await;
    assert_eq!(status, 400);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("in the future")), "{refused}");
}

#[tokio::test]
async fn who_may_see_which_event() {
    let influx = InfluxServer::start().await.expect("influxd");
    let (service, _riders, _) = race(&influx).await;
    let ids = |body: &Value| -> Vec<String> {
        body["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["id"].as_str().map(String::from))
            .collect()
    };
    let (_, anonymous) = get(&service, "/v1/events", None).await;
    assert_eq!(ids(&anonymous), ["race"]);
    assert_eq!(anonymous["events"][0]["entrants"], 3, "bob is not counted: {anonymous}");
    assert_eq!(anonymous["events"][0]["checkpoints"], 2);
    let (_, club) = get(&service, "/v1/events", Some(CLUB)).await;
    assert_eq!(ids(&club), ["race", "club"]);
    let (status, _) = get(&service, "/v1/events", Some("velo_wrong")).await;
    assert_eq!(status, 401);

    for path in
        ["/v1/events/club", "/v1/events/club/standings", "/v1/events/club/course", "/v1/events/club/flow"]
    {
        let (status, body) = get(&service, path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains("private"), "{body}");
        let (status, _) = get(&service, path, Some(COACH)).await;
        assert_eq!(status, 403, "{path}: the coach does not list the club's event");
        let (status, body) = get(&service, path, Some(CLUB)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = get(&service, "/v1/events/nope/standings", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("GET /v1/events"), "{body}");

    // The event's detail: checkpoints with their cut-offs, the entrants the caller may see.
    let (_, race) = get(&service, "/v1/events/race", None).await;
    assert_eq!(race["name"], "The Race");
    assert_eq!(race["checkpoints"][1]["name"], "CP2");
    assert_eq!(race["checkpoints"][1]["distance_m"], 80_000.0);
    assert_eq!(race["checkpoints"][1]["cutoff_after_start_s"], 86_400);
    let entrants: Vec<&str> =
        race["entrants"].as_array().expect("entrants").iter().filter_map(|e| e["rider"].as_str()).collect();
    assert_eq!(entrants, ["alice", "erin", "dave"]);

    // A private entrant's stops are no one else's business; alice's are public.
    let (status, _) = get(&service, "/v1/events/race/riders/bob/stops", None).await;
    assert_eq!(status, 404);
    let (status, _) = get(&service, "/v1/events/race/riders/bob/stops", Some(COACH)).await;
    assert_eq!(status, 200);
    let (status, stops) = get(&service, "/v1/events/race/riders/alice/stops", None).await;
    assert_eq!(status, 200, "{stops}");
    assert_eq!(stops["stops"].as_array().map(Vec::len), Some(1), "{stops}");
    assert_eq!(stops["stops"][0]["duration_s"], 300.0);
    assert_eq!(stops["stops"][0]["status"], "stopped");
    assert_eq!(
        stops["stops"][0]["end"].as_i64().zip(stops["stops"][0]["start"].as_i64()).map(|(e, s)| e - s),
        Some(300_000)
    );
    let (status, _) = get(&service, "/v1/events/club/riders/erin/stops", Some(CLUB)).await;
    assert_eq!(status, 404, "erin rides no club event");
}

#[tokio::test]
async fn course_profile_checkpoints_and_race_flow() {
    let influx = InfluxServer::start().await.expect("influxd");
    let (service, _riders, start) = race(&influx).await;

    let (status, course) = get(&service, "/v1/events/race/course?max_points=10", None).await;
    assert_eq!(status, 200, "{course}");
    let features = course["features"].as_array().expect("features");
    assert_eq!(features.len(), 3, "the course and two checkpoints");
    let line = features[0]["geometry"]["coordinates"].as_array().expect("a line");
    assert!((2..=10).contains(&line.len()), "{} positions", line.len());
    assert_eq!(line[0][0], 7.0);
    assert_eq!(line[0][1], 45.0);
    assert_eq!(features[2]["properties"]["name"], "CP2");
    let (status, body) = get(&service, "/v1/events/race/course?max_points=1", None).await;
    assert_eq!(status, 400, "{body}");

    let (_, profile) = get(&service, "/v1/events/race/profile?max_points=12", None).await;
    let points = profile["points"].as_array().expect("points");
    assert!(points.len() <= 12 && points.len() >= 4, "{profile}");
    let highest = points.iter().filter_map(|p| p[1].as_f64()).fold(f64::MIN, f64::max);
    assert_eq!(highest, 470.0, "the highest point survives: {profile}");

    let (_, table) = get(&service, "/v1/events/race/checkpoints", None).await;
    let cp1: Vec<(&str, i64)> = table["checkpoints"][0]["arrivals"]
        .as_array()
        .expect("arrivals")
        .iter()
        .map(|a| (a["rider"].as_str().unwrap_or_default(), a["time"].as_i64().unwrap_or_default()))
        .collect();
    assert_eq!(
        cp1,
        [("alice", (start + 4_000 * SECOND) / 1_000_000), ("erin", (start + 5_000 * SECOND) / 1_000_000)]
    );
    assert_eq!(table["checkpoints"][0]["arrivals"][0]["elapsed_s"], 4_000.0);
    assert_eq!(table["checkpoints"][1]["arrivals"].as_array().map(Vec::len), Some(0), "bob is private");
    // The finish: its cut-off, Alice's breach of it; Bob's late arrival for his viewers only.
    let finish = &table["finish"];
    assert_eq!(
        (finish["index"].as_u64(), finish["cutoff_after_start_s"].as_u64()),
        (Some(2), Some(7_200)),
        "{table}"
    );
    assert!((finish["distance_m"].as_f64().unwrap_or(0.0) - 100_000.0).abs() < 500.0, "{table}");
    let outcomes: Vec<(&str, &str)> = finish["arrivals"]
        .as_array()
        .expect("arrivals")
        .iter()
        .map(|a| (a["rider"].as_str().unwrap_or_default(), a["outcome"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(outcomes, [("alice", "cutoff")], "{table}");
    let (_, table) = get(&service, "/v1/events/race/checkpoints", Some(COACH)).await;
    assert_eq!(table["checkpoints"][1]["arrivals"][0]["rider"], "bob");
    let bob = &table["finish"]["arrivals"][0];
    assert_eq!((bob["rider"].as_str(), bob["late"].as_bool()), (Some("bob"), Some(true)), "{table}");

    // The race flow: every visible rider, within the budget, never falling, ending where
    // the standings say; from the raw readings, and from the hourly tier once rolled up.
    let flow_of = |body: &Value, rider: &str| -> Vec<(i64, f64)> {
        body["riders"]
            .as_array()
            .expect("riders")
            .iter()
            .find(|r| r["rider"] == rider)
            .unwrap_or_else(|| panic!("no {rider} in {body}"))["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| (p[0].as_i64().expect("time"), p[1].as_f64().expect("distance")))
            .collect()
    };
    let (status, flow) = get(&service, "/v1/events/race/flow?max_points=50", None).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["riders"].as_array().map(Vec::len), Some(3), "{flow}");
    let alice = flow_of(&flow, "alice");
    assert!(alice.len() <= 50 && alice.len() >= 10, "{} points", alice.len());
    assert!(alice.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{alice:?}");
    assert_eq!(alice.last().map(|p| p.1), Some(72_000.0));
    assert!(flow_of(&flow, "dave").is_empty());

    wait_for_watermark(&influx, start + 7_300 * SECOND).await;
    let wide = format!(
        "/v1/events/race/flow?from={}&to={}&max_points=10",
        (start - 5 * DAY) / 1_000_000,
        (start + 5 * DAY) / 1_000_000
    );
    let (status, flow) = get(&service, &wide, None).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["tier"], "1h", "{flow}");
    let erin = flow_of(&flow, "erin");
    assert!(!erin.is_empty() && erin.len() <= 10, "{flow}");
    // The furthest erin got, and when she first got there (the fix at 6,000 s).
    assert_eq!(erin.last(), Some(&((start + 6_000 * SECOND) / 1_000_000, 48_000.0)));
}
