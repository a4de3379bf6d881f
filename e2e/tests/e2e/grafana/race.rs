//! The race dashboard against a real race: two riders of an event ride a simulated course
//! and sync it afterwards through the real collector, the real progress service derives
//! their progress, checkpoints and stops from it, the real query service rolls it up, and a
//! third rider who is no entrant rides beside them. Every InfluxQL target of the dashboard
//! then runs, expanded as Grafana expands it, over three ranges (one per tier).

use velometry_collector::simulate::course::{ride, RideOptions, SimFix};
use velometry_core::event::status::event_code;
use velometry_core::ids::EventId;
use velometry_core::testkit::{courses, post_readings, wait_until, write_course_gpx, NatsServer};
use velometry_core::time::{format_rfc3339, now_nanos, Nanos};

use super::*;

const S: Nanos = 1_000_000_000;
const ALICE: &str = "velo_race_alice_phone";
const BOB: &str = "velo_race_bob_phone";
const CAROL: &str = "velo_race_carol_phone";
const SERVICE: &str = "velo_race_progress_service";
const CHECKPOINTS_KM: [f64; 2] = [20.0, 60.0];

/// The series of each rider, by rider.
fn by_rider(series: Vec<Series>) -> BTreeMap<String, Series> {
    series.into_iter().map(|s| (s.rider.clone(), s)).collect()
}

async fn send(http: &reqwest::Client, collector: &str, token: &str, fixes: &[SimFix]) {
    let readings: Vec<Value> = fixes.iter().map(|f| f.reading_at(f.time)).collect();
    post_readings(http, collector, token, &readings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_race_dashboard_target_answers_from_a_race_the_progress_service_followed() {
    let influx = InfluxServer::start().await.expect("influxd");
    influx.query(DB, &format!("CREATE DATABASE \"{DB}\"")).await.expect("database");
    let nats = NatsServer::start().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let course = courses::out_and_back(1);
    let points: Vec<(f64, f64, Option<f64>)> =
        course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
    write_course_gpx(&dir.path().join("course.gpx"), "Out and back", &points, &[]).expect("course file");

    // Two days ago Alice rode the whole course and Bob, ten minutes behind her, the first
    // 40% of it before his phone died; both synced afterwards. Carol rode beside them, in no
    // event.
    let options = |seed: u64, start: Nanos| {
        let mut o = RideOptions::new(seed, start);
        o.dropouts = false;
        o.detours = false;
        o
    };
    let alice_start = (now_nanos() - 2 * 24 * 3_600 * S) / S * S;
    let bob_start = alice_start + 10 * 60 * S;
    let alice = ride(&course, &options(3, alice_start));
    let bob = ride(&course, &options(4, bob_start));
    let bob_fixes = &bob.fixes[..bob.fixes.len() * 2 / 5];
    let bob_last = bob_fixes.last().expect("fixes");
    let bob_truth_m =
        bob.truth.rows.iter().find(|r| r.time == bob_last.time).expect("the truth of a fix").distance_m;
    let carol = &ride(&course, &options(5, alice_start)).fixes[..200];
    let alice_end = alice.truth.finished.expect("Alice finishes");
    let code = event_code(&EventId::parse("tour").expect("id"));
    let checkpoints: String = CHECKPOINTS_KM
        .iter()
        .map(|km| format!("[[event.checkpoint]]\nname = \"km {km}\"\ndistance_km = {km}\n"))
        .collect();
    let riders = RidersToml::new()
        .rider("alice", "Alice", true)
        .device("phone", ALICE)
        .rider("bob", "Bob", true)
        .device("phone", BOB)
        .rider("carol", "Carol", true)
        .device("phone", CAROL)
        .service("progress", SERVICE, &["*"])
        .raw(&format!(
            "[[event]]\nid = \"tour\"\nname = \"The Tour\"\npublic = true\ncourse = \"course.gpx\"\n\
             riders = [\"alice\", \"bob\"]\n[event.starts]\nalice = \"{}\"\nbob = \"{}\"\n{checkpoints}",
            format_rfc3339(alice_start),
            format_rfc3339(bob_start)
        ))
        .build();
    let riders_file = dir.path().join("riders.toml");
    std::fs::write(&riders_file, riders).expect("riders file");
    let common = |extra: Vec<String>| {
        let mut args: Vec<String> =
            ["serve", "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"].map(String::from).into();
        args.push(format!("--riders={}", riders_file.display()));
        args.push(format!("--influx-url={}", influx.url));
        args.extend(extra);
        args
    };
    // Started on the empty database, the query service rolls up what comes late from its
    // late-reading markers (see the rider dashboard's test).
    let query = Service::start(
        workspace_binary("velometry-query", "query").expect("query"),
        common(vec!["--rollup-interval=1s".into()]),
    )
    .await
    .expect("the query service starts");
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        common(vec![
            format!("--nats-url={}", nats.url),
            format!("--wal-dir={}", dir.path().join("wal").display()),
        ]),
    )
    .await
    .expect("the collector starts");
    collector.wait_ready().await.expect("the collector is ready");
    let progress = Service::start(
        workspace_binary("velometry-progress", "progress").expect("progress"),
        common(vec![
            format!("--nats-url={}", nats.url),
            format!("--collector={}", collector.url),
            format!("--token={SERVICE}"),
            "--sync-every=1s".into(),
        ]),
    )
    .await
    .expect("the progress service starts");
    progress.wait_ready().await.expect("the progress service is ready");

    let http = reqwest::Client::new();
    send(&http, &collector.url, ALICE, &alice.fixes).await;
    send(&http, &collector.url, BOB, bob_fixes).await;
    send(&http, &collector.url, CAROL, carol).await;

    // Everything derived and rolled up: a progress reading per fix of each entrant, Alice's
    // finish, and every progress reading counted in both tiers.
    let influx = &influx;
    let expected = [("alice", alice.fixes.len()), ("bob", bob_fixes.len())];
    wait_until("the progress of every fix, Alice's finish, and its rollups", Duration::from_millis(500), || async move {
        for (rider, fixes) in expected {
            let q = format!("SELECT count(\"progress_m\") FROM \"course_progress\" WHERE \"rider\" = '{rider}'");
            let n = first_number(influx, &q).await as usize;
            if n < fixes {
                return Err(format!("{rider}: {n} of {fixes} progress readings"));
            }
        }
        let finished = "SELECT count(\"status\") FROM \"course_status\" WHERE \"rider\" = 'alice' AND \"status\" = 5";
        if first_number(influx, finished).await < 1.0 {
            return Err("Alice has not finished".into());
        }
        let raw = first_number(influx, "SELECT count(\"progress_m\") FROM \"course_progress\"").await;
        for tier in ["1m", "1h"] {
            let rolled = first_number(influx, &format!("SELECT sum(\"progress_m_count\") FROM \"course_progress_{tier}\"")).await;
            if rolled != raw {
                return Err(format!("{tier}: {rolled} of {raw} progress readings rolled up"));
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nprogress: {}\nquery: {}", progress.logs(), query.logs()));

    // The event variable lists the event's code, which `GET /v1/events` gives beside its id.
    let race = dashboard("race");
    let variable = &race["templating"]["list"][0];
    assert_eq!((variable["name"].as_str(), variable["multi"].as_bool()), (Some("event"), Some(false)));
    let events: Value = http
        .get(format!("{}/v1/events", query.url))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(events["events"][0]["code"], code, "{events}");
    let min_interval = duration_ms(&provisioned(INFLUX_UID, "timeInterval"));
    let (start_ms, end_ms) = (alice_start / MS, alice_end / MS);
    let vars = |from: i64, to: i64, max_points: i64| {
        let mut v = influx_vars(from, to, grafana_interval_ms(from, to, max_points, min_interval), "");
        v.insert("event", code.to_string());
        v
    };
    let listed =
        influxql(influx, &expand(variable["query"].as_str().expect("query"), &vars(start_ms, end_ms, 1_000)))
            .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].rows.iter().map(|r| r[1].as_f64()).collect::<Vec<_>>(), [Some(code)]);

    // Three ranges, one per tier: the race, the week, four months.
    let now_ms = now_nanos() / MS;
    let ranges = [
        ("the race", start_ms - HOUR_MS, end_ms + HOUR_MS),
        ("the week", now_ms - 7 * DAY_MS, now_ms),
        ("four months", now_ms - 120 * DAY_MS, now_ms),
    ];
    let length = course.length_m();
    let mut tiers_seen = BTreeSet::new();
    for (range, from, to) in ranges {
        let band = tier_for(grafana_interval_ms(from, to, 1_000, min_interval));
        tiers_seen.insert(band);
        for panel in panels(&race) {
            assert_eq!(panel["datasource"]["uid"], INFLUX_UID, "{}", title(panel));
            let vars = vars(from, to, panel["maxDataPoints"].as_i64().unwrap_or(1_000));
            let mut answers = BTreeMap::new();
            for target in panel["targets"].as_array().expect("targets") {
                let query = target["query"].as_str().expect("InfluxQL");
                let expanded = expand(query, &vars);
                assert!(!expanded.contains('$'), "{}: unexpanded variable in {expanded}", title(panel));
                let series = influxql(influx, &expanded).await;
                let gated = query.contains("$__interval_ms");
                if gated && tier_of(query) != band {
                    assert!(
                        series.is_empty(),
                        "{range}: {} {}: answered for another tier",
                        title(panel),
                        target["refId"]
                    );
                    continue;
                }
                answers.insert(target["refId"].as_str().expect("refId"), by_rider(series));
            }
            let what = format!("{range}: {}", title(panel));
            match title(panel) {
                "Standings" => {
                    let rows = &answers["A"];
                    assert_eq!(rows.keys().collect::<Vec<_>>(), ["alice", "bob"], "{what}: the entrants");
                    let a = &rows["alice"];
                    assert!(
                        (a.one("distance") - length).abs() < 100.0,
                        "{what}: Alice {a:?}, course {length}"
                    );
                    assert!(a.one("to go") < 100.0, "{what}: {a:?}");
                    assert_eq!(a.one("status"), 5.0, "{what}: Alice finished");
                    let b = &rows["bob"];
                    assert!(
                        (b.one("distance") - bob_truth_m).abs() < 200.0,
                        "{what}: Bob {b:?}, truth {bob_truth_m}"
                    );
                    assert!((b.one("to go") - (length - b.one("distance"))).abs() < 1.0, "{what}: {b:?}");
                    assert!(
                        [0.0, 1.0, 2.0, 3.0, 4.0].contains(&b.one("status")),
                        "{what}: Bob did not finish: {b:?}"
                    );
                    let eta = b.one("ETA finish");
                    assert!(
                        eta > (bob_last.time / MS) as f64,
                        "{what}: Bob's ETA {eta} is in ms and after his last fix"
                    );
                }
                "Riders on the course" => {
                    // Grafana's merge joins A and B by rider; the filter keeps riders in B.
                    let (positions, entrants) = (&answers["A"], &answers["B"]);
                    assert_eq!(positions.keys().collect::<Vec<_>>(), ["alice", "bob", "carol"], "{what}");
                    assert_eq!(entrants.keys().collect::<Vec<_>>(), ["alice", "bob"], "{what}: the entrants");
                    for (rider, last) in [("alice", alice.fixes.last().expect("fixes")), ("bob", bob_last)] {
                        let p = &positions[rider];
                        assert!(
                            (p.one("lat") - last.lat).abs() < 1e-6 && (p.one("lon") - last.lon).abs() < 1e-6,
                            "{what}: {p:?}"
                        );
                        let along = entrants[rider].one("along");
                        assert!((0.0..=length + 100.0).contains(&along), "{what}: {rider} at {along} m");
                    }
                }
                "Race flow" => {
                    let tier = answers.values().next().expect("the range's tier answers");
                    assert_eq!(answers.len(), 1, "{what}: one tier answers");
                    assert_eq!(
                        tier.keys().collect::<Vec<_>>(),
                        ["alice", "bob"],
                        "{what}: a line per entrant"
                    );
                    for (rider, furthest) in [("alice", length), ("bob", bob_truth_m)] {
                        let line = tier[rider].every_number("distance");
                        assert!(
                            line.windows(2).all(|w| w[0] <= w[1]),
                            "{what}: {rider} went back in the standings"
                        );
                        let last = *line.last().expect("points");
                        assert!(
                            (last - furthest).abs() < 200.0,
                            "{what}: {rider} ends at {last}, not {furthest}"
                        );
                    }
                    // Four months in 3-hour intervals still draw Alice's four hours as a line.
                    let points = tier["alice"].rows.len();
                    assert!(points >= 2, "{what}: {points} points");
                }
                "Checkpoint arrivals" => {
                    let rows = &answers["A"];
                    let a = &rows["alice"];
                    // The finish is the outcome one past the last checkpoint.
                    assert_eq!(a.every_number("checkpoint"), [0.0, 1.0, 2.0], "{what}");
                    assert_eq!(a.every_number("outcome"), [0.0, 0.0, 0.0], "{what}: arrived");
                    let finish = a.rows.last().and_then(|r| r[0].as_i64()).expect("time (ns)");
                    let truth = alice.truth.finished.expect("Alice finishes");
                    assert!(
                        (finish - truth).abs() < 60 * S,
                        "{what}: the finish {} s from the truth",
                        (finish - truth) / S
                    );
                    for (row, km) in a.rows.iter().zip(CHECKPOINTS_KM) {
                        let at = row[0].as_i64().expect("time (ns)");
                        let truth = alice.truth.arrival(km * 1_000.0).expect("an arrival");
                        assert!(
                            (at - truth).abs() < 60 * S,
                            "{what}: km {km} {} s from the truth",
                            (at - truth) / S
                        );
                    }
                    assert_eq!(rows["bob"].every_number("checkpoint"), [0.0], "{what}: Bob passed the first");
                }
                "Stops" => {
                    let longest = alice.truth.stops.iter().map(|s| (s.end - s.start) / S).max().unwrap_or(0);
                    assert!(longest >= 5 * 60, "the simulated ride stops: {:?}", alice.truth.stops);
                    let a = &answers["A"]["alice"];
                    let durations = a.every_number("duration");
                    let found = durations.iter().copied().fold(0.0, f64::max);
                    assert!(
                        (found - longest as f64).abs() < 0.2 * longest as f64,
                        "{what}: {durations:?}, truth {longest} s"
                    );
                    assert!(
                        a.every_number("status").iter().all(|s| (1.0..=3.0).contains(s)),
                        "{what}: {:?}",
                        a.rows
                    );
                    assert!(
                        a.every_number("at").iter().all(|m| (0.0..=length).contains(m)),
                        "{what}: {:?}",
                        a.rows
                    );
                }
                other => panic!("panel {other:?} has no expectation here: add one"),
            }
        }
    }
    assert_eq!(tiers_seen, BTreeSet::from(["raw", "1m", "1h"]), "the ranges cover every tier");
}
