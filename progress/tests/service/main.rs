//! The progress service against the real parts: InfluxDB, NATS, the collector. A rider's
//! ride synced hours late reaches it through the collector's late markers, another rider's
//! live fixes through NATS; what it derives comes back through the collector's durable
//! path into InfluxDB as readings.

use std::time::Duration;

use serde_json::{json, Value};
use velometry_collector::simulate::course::{ride, RideOptions, SimFix};
use velometry_core::event::status::event_code;
use velometry_core::ids::EventId;
use velometry_core::testkit::{
    courses, metric, post_readings, wait_until, workspace_binary, write_course_gpx, InfluxServer, NatsServer,
    RidersToml, Service,
};
use velometry_core::time::{format_rfc3339, now_nanos, Nanos};

mod recompute;
mod replicas;

const S: Nanos = 1_000_000_000;
const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const SERVICE: &str = "progress-service-token";

fn options(seed: u64, start: Nanos) -> RideOptions {
    let mut o = RideOptions::new(seed, start);
    o.dropouts = false;
    o.detours = false;
    o
}

async fn send(http: &reqwest::Client, collector: &str, token: &str, fixes: &[SimFix]) -> usize {
    let readings: Vec<Value> = fixes.iter().map(|f| f.reading_at(f.time)).collect();
    post_readings(http, collector, token, &readings).await
}

/// Starts a collector on `riders_file`, its WAL in `dir`, and waits until it is ready.
async fn collector(
    riders_file: &std::path::Path,
    influx: &InfluxServer,
    nats: &NatsServer,
    dir: &std::path::Path,
) -> Service {
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
            format!("--nats-url={}", nats.url),
            format!("--wal-dir={}", dir.join("wal").display()),
        ],
    )
    .await
    .expect("the collector starts");
    collector.wait_ready().await.expect("the collector is ready");
    collector
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrants_progress_checkpoints_and_finish_are_readings_in_influxdb() {
    let influx = InfluxServer::start().await.expect("influxd");
    let nats = NatsServer::start().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let course = courses::out_and_back(1);
    let points: Vec<(f64, f64, Option<f64>)> =
        course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
    write_course_gpx(&dir.path().join("course.gpx"), "Out and back", &points, &[]).expect("course file");

    // Alice rode the whole out-and-back and synced it afterwards; Bob started minutes ago.
    let probe = ride(&course, &options(3, 0));
    let duration = probe.truth.finished.expect("the simulated rider finishes");
    let alice_start = (now_nanos() - duration - 30 * 60 * S) / S * S;
    let alice = ride(&course, &options(3, alice_start));
    let bob_start = (now_nanos() - 4 * 60 * S) / S * S;
    let bob = ride(&course, &options(4, bob_start));
    let riders = RidersToml::new()
        .rider("alice", "Alice", true)
        .device("phone", ALICE)
        .rider("bob", "Bob", false)
        .device("phone", BOB)
        .rider("carol", "Carol", true)
        .service("progress", SERVICE, &["*"])
        .raw(&format!(
            "[[event]]\nid = \"oab\"\npublic = true\ncourse = \"course.gpx\"\nriders = [\"alice\", \"bob\"]\n\
             [event.starts]\nalice = \"{}\"\nbob = \"{}\"\n\
             [[event.checkpoint]]\nname = \"Out\"\ndistance_km = 20.0\n\
             [[event.checkpoint]]\nname = \"Back\"\ndistance_km = 60.0\n",
            format_rfc3339(alice_start),
            format_rfc3339(bob_start)
        ))
        .build();
    let riders_file = dir.path().join("riders.toml");
    std::fs::write(&riders_file, riders).expect("riders file");

    let collector = collector(&riders_file, &influx, &nats, dir.path()).await;
    let mut progress = Service::start(
        workspace_binary("velometry-progress", "progress").expect("progress"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
            format!("--nats-url={}", nats.url),
            format!("--collector={}", collector.url),
            format!("--token={SERVICE}"),
            "--sync-every=1s".into(),
        ],
    )
    .await
    .expect("the progress service starts");
    progress.wait_ready().await.expect("the progress service is ready");

    let http = reqwest::Client::new();
    // No device may write what the service derives, and the service writes only for entrants.
    let r = http
        .post(format!("{}/v1/readings", collector.url))
        .header("Authorization", format!("Token {ALICE}"))
        .json(
            &json!([{"metric": "course_progress", "event": 1, "current_m": 1, "progress_m": 1, "to_go_m": 1,
                       "from_course_m": 0, "off_course": 0, "status": 0}]),
        )
        .send()
        .await
        .expect("answer");
    let body = r.text().await.unwrap_or_default();
    assert!(body.contains("derived by the progress service"), "{body}");
    let r = http
        .post(format!("{}/v1/events/oab/riders/carol/derived", collector.url))
        .header("Authorization", format!("Token {SERVICE}"))
        .json(&json!([]))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404, "carol is not an entrant");

    // Her phone first syncs all but twenty minutes around the first checkpoint, which come
    // later still: the arrival first interpolated across the gap, and the "no signal" the
    // gap gave, are then withdrawn.
    let out_at = alice.truth.arrival(20_000.0).expect("the truth has the arrival");
    let (gap, rest): (Vec<SimFix>, Vec<SimFix>) =
        alice.fixes.iter().partition(|f| (f.time - out_at).abs() < 10 * 60 * S);
    assert!(!gap.is_empty());
    let sent = send(&http, &collector.url, ALICE, &rest).await;
    let code = event_code(&EventId::parse("oab").expect("id"));
    let rows = |q: String| {
        let influx = &influx;
        async move { influx.rows("velometry", &q).await }
    };
    let arrivals = wait_until("Alice's two checkpoint arrivals and her finish", Duration::from_millis(500), || {
        async move {
            let cps = rows(format!(
                "SELECT \"checkpoint\", \"outcome\" FROM \"checkpoint\" WHERE \"rider\" = 'alice' AND \"event\" = {code} \
                 AND \"outcome\" <> 3"
            ))
            .await?;
            let finished =
                rows("SELECT \"status\" FROM \"course_status\" WHERE \"rider\" = 'alice' AND \"status\" = 5".into())
                    .await?;
            if cps.len() == 3 && !finished.is_empty() {
                Ok(cps)
            } else {
                Err(format!("{} checkpoint rows, finished {}", cps.len(), !finished.is_empty()))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
    let before = arrivals[0]["time"].as_i64().expect("time");
    let hole_statuses = format!(
        "SELECT \"status\" FROM \"course_status\" WHERE \"rider\" = 'alice' AND \"event\" = {code} \
         AND time > {} AND time < {}",
        out_at - 10 * 60 * S,
        out_at + 10 * 60 * S
    );
    let statuses = rows(hole_statuses.clone()).await.expect("statuses");
    let no_signal = statuses
        .iter()
        .find(|r| r["status"] == 4.0)
        .and_then(|r| r["time"].as_i64())
        .unwrap_or_else(|| panic!("no \"no signal\" in the hole: {statuses:?}"));
    let sent = sent + send(&http, &collector.url, ALICE, &gap).await;
    assert_eq!(sent, alice.fixes.len());
    let arrivals = wait_until("the first arrival withdrawn and derived again", Duration::from_millis(500), || {
        async move {
            let cps = rows(format!(
                "SELECT \"checkpoint\", \"outcome\" FROM \"checkpoint\" WHERE \"rider\" = 'alice' AND \"event\" = {code}"
            ))
            .await?;
            let withdrawn: Vec<i64> =
                cps.iter().filter(|r| r["outcome"] == 3.0).filter_map(|r| r["time"].as_i64()).collect();
            let kept: Vec<_> = cps.into_iter().filter(|r| r["outcome"] != 3.0).collect();
            if withdrawn == [before] && kept.len() == 3 {
                Ok(kept)
            } else {
                Err(format!("withdrawn {withdrawn:?}, kept {kept:?}"))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
    let withdrawn = wait_until("the hole's \"no signal\" withdrawn", Duration::from_millis(500), || async {
        let statuses = rows(hole_statuses.clone()).await?;
        let at = statuses.iter().find(|r| r["time"].as_i64() == Some(no_signal));
        match at.and_then(|r| r["status"].as_f64()) {
            Some(7.0) => Ok(statuses),
            other => Err(format!("its status {other:?}; in the hole {statuses:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
    assert!(withdrawn.iter().all(|r| r["status"] != 4.0), "{withdrawn:?}");
    // The finish is the outcome one past the last checkpoint.
    let finish = arrivals.last().filter(|r| r["checkpoint"] == 2.0).and_then(|r| r["time"].as_i64());
    let truth = alice.truth.finished.expect("the truth finishes");
    assert!(finish.is_some_and(|t| (t - truth).abs() < 60 * S), "the finish {finish:?}, the truth {truth}");
    for (row, km) in arrivals.iter().zip([20.0, 60.0]) {
        assert_eq!(row["outcome"], 0.0, "{row:?}");
        let at = row["time"].as_i64().expect("time");
        let truth = alice.truth.arrival(km * 1_000.0).expect("the truth has the arrival");
        assert!((at - truth).abs() < 60 * S, "arrival at km {km}: {} s from the truth", (at - truth) / S);
    }
    // Every fix of the ride is a course_progress reading, the last one at the finish.
    let progress_rows =
        wait_until("a course_progress reading per fix of Alice", Duration::from_millis(500), || async move {
            let r = rows(
                "SELECT \"progress_m\", \"to_go_m\" FROM \"course_progress\" WHERE \"rider\" = 'alice'"
                    .into(),
            )
            .await?;
            if r.len() >= sent {
                Ok(r)
            } else {
                Err(format!("{} of {sent}", r.len()))
            }
        })
        .await
        .expect("progress of every fix");
    let last = progress_rows.last().expect("rows");
    assert!(last["to_go_m"].as_f64().expect("to go") < 100.0, "{last:?}");
    assert!((last["progress_m"].as_f64().expect("progress") - course.length_m()).abs() < 100.0, "{last:?}");

    // Bob's fixes are live: one request each, as his phone sends them.
    let now = now_nanos();
    let bob_fixes: Vec<SimFix> = bob.fixes.iter().filter(|f| f.time <= now).copied().collect();
    for f in &bob_fixes {
        send(&http, &collector.url, BOB, std::slice::from_ref(f)).await;
    }
    wait_until("Bob's live progress", Duration::from_millis(200), || {
        let n = bob_fixes.len();
        async move {
            let r =
                rows("SELECT \"progress_m\" FROM \"course_progress\" WHERE \"rider\" = 'bob'".into()).await?;
            if r.len() >= n {
                Ok(())
            } else {
                Err(format!("{} of {n}", r.len()))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
    let text = progress.metrics().await.expect("metrics");
    assert!(metric(&text, "progress_fixes_total{path=\"live\"}") > 0.0, "no fix came live:\n{text}");

    // What followers read: the query service's standings of the event, from these readings.
    let query = Service::start(
        workspace_binary("velometry-query", "query").expect("query"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
        ],
    )
    .await
    .expect("the query service starts");
    let standings: Value = http
        .get(format!("{}/v1/events/oab/standings", query.url))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let table = standings["standings"].as_array().unwrap_or_else(|| panic!("no standings: {standings}"));
    assert_eq!(table.len(), 1, "bob is private: {standings}");
    assert_eq!(table[0]["rider"], "alice");
    assert_eq!(
        (table[0]["rank"].as_i64(), table[0]["status"].as_str()),
        (Some(1), Some("finished")),
        "{standings}"
    );
    assert_eq!(table[0]["checkpoints_reached"], 2, "{standings}");
    let finished = table[0]["finished"].as_i64().expect("a finish time") * 1_000_000;
    let truth = alice.truth.finished.expect("the truth has the finish");
    assert!((finished - truth).abs() < 60 * S, "finish {} s from the truth", (finished - truth) / S);

    // A restart reads the history again and goes on with the next live fix.
    progress.kill().await;
    progress.restart().await.expect("restarts");
    progress.wait_ready().await.expect("ready again");
    let next = bob.fixes.iter().find(|f| f.time > now).copied();
    if let Some(mut f) = next {
        f.time = now_nanos();
        send(&http, &collector.url, BOB, std::slice::from_ref(&f)).await;
        wait_until("progress of Bob's fix after the restart", Duration::from_millis(200), || async move {
            let r = rows(format!(
                "SELECT \"progress_m\" FROM \"course_progress\" WHERE \"rider\" = 'bob' AND time = {}",
                f.time / 1_000_000 * 1_000_000
            ))
            .await?;
            if r.is_empty() {
                Err("not yet".into())
            } else {
                Ok(())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
    }
}
