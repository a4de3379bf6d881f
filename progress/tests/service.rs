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
    courses, metric, wait_until, workspace_binary, write_course_gpx, InfluxServer, NatsServer, RidersToml,
    Service,
};
use velometry_core::time::{format_rfc3339, now_nanos, Nanos};

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
    let fixes: Vec<Value> = fixes
        .iter()
        .map(|f| {
            json!({"metric": "gps", "time": f.time / 1_000_000, "lat": f.lat, "lon": f.lon, "alt": f.alt,
                   "speed": f.speed, "heading": f.heading})
        })
        .collect();
    for chunk in fixes.chunks(1_000) {
        let r = http
            .post(format!("{collector}/v1/readings"))
            .header("Authorization", format!("Token {token}"))
            .json(chunk)
            .send()
            .await
            .expect("the collector answers");
        assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    fixes.len()
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

    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
            format!("--nats-url={}", nats.url),
            format!("--wal-dir={}", dir.path().join("wal").display()),
        ],
    )
    .await
    .expect("the collector starts");
    collector.wait_ready().await.expect("the collector is ready");
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
    // later still: the arrival first interpolated across the gap is then withdrawn.
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
            if cps.len() == 2 && !finished.is_empty() {
                Ok(cps)
            } else {
                Err(format!("{} checkpoint rows, finished {}", cps.len(), !finished.is_empty()))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
    let before = arrivals[0]["time"].as_i64().expect("time");
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
            if withdrawn == [before] && kept.len() == 2 {
                Ok(kept)
            } else {
                Err(format!("withdrawn {withdrawn:?}, kept {kept:?}"))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", progress.logs()));
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

/// Starts a progress replica named `name` on `riders_file`, sharing the entrants with the
/// other replicas of the same NATS.
async fn replica(
    name: &str,
    riders_file: &std::path::Path,
    influx: &str,
    nats: &str,
    collector: &str,
) -> Service {
    Service::start(
        workspace_binary("velometry-progress", "progress").expect("progress"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={influx}"),
            format!("--nats-url={nats}"),
            format!("--collector={collector}"),
            format!("--token={SERVICE}"),
            "--sync-every=1s".into(),
            format!("--replica={name}"),
            "--lease=3s".into(),
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("progress replica {name} starts: {e}"))
}

/// How many entrants `service` follows.
async fn entrants_of(service: &Service) -> f64 {
    metric(&service.metrics().await.expect("metrics"), "progress_entrants ")
}

/// Waits until `service`'s gauge `name` reads `want`.
async fn wait_gauge(service: &Service, name: &str, want: f64) {
    wait_until(&format!("{name} = {want}"), Duration::from_millis(200), || async move {
        let text = service.metrics().await.map_err(|e| e.to_string())?;
        let got = metric(&text, &format!("{name} "));
        if got == want {
            Ok(())
        } else {
            Err(format!("{name} = {got}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", service.logs()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_entrants_and_one_takes_the_riders_of_one_killed() {
    const RIDERS: usize = 8;
    let influx = InfluxServer::start().await.expect("influxd");
    let nats = NatsServer::start().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let course = courses::out_and_back(2);
    let points: Vec<(f64, f64, Option<f64>)> =
        course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
    write_course_gpx(&dir.path().join("course.gpx"), "Out and back", &points, &[]).expect("course file");

    // Eight riders rode the course from one mass start and sync their rides late, in two
    // halves: the first before a replica dies, the second after.
    let probe = ride(&course, &options(10, 0));
    let duration = probe.truth.finished.expect("the simulated rider finishes");
    let start = (now_nanos() - 2 * duration - 30 * 60 * S) / S * S;
    let rides: Vec<_> = (0..RIDERS).map(|i| ride(&course, &options(10 + i as u64, start))).collect();
    let mut toml = RidersToml::new();
    for i in 0..RIDERS {
        toml =
            toml.rider(&format!("r{i}"), &format!("Rider {i}"), true).device("phone", &format!("token-r{i}"));
    }
    let entrants: Vec<String> = (0..RIDERS).map(|i| format!("\"r{i}\"")).collect();
    let riders = toml
        .service("progress", SERVICE, &["*"])
        .raw(&format!(
            "[[event]]\nid = \"mass\"\npublic = true\ncourse = \"course.gpx\"\nriders = [{}]\nstart = \"{}\"\n\
             [[event.checkpoint]]\nname = \"Out\"\ndistance_km = 20.0\n\
             [[event.checkpoint]]\nname = \"Back\"\ndistance_km = 60.0\n",
            entrants.join(", "),
            format_rfc3339(start),
        ))
        .build();
    let riders_file = dir.path().join("riders.toml");
    std::fs::write(&riders_file, riders).expect("riders file");
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
            format!("--nats-url={}", nats.url),
            format!("--wal-dir={}", dir.path().join("wal").display()),
        ],
    )
    .await
    .expect("the collector starts");
    collector.wait_ready().await.expect("the collector is ready");
    let mut a = replica("a", &riders_file, &influx.url, &nats.url, &collector.url).await;
    let b = replica("b", &riders_file, &influx.url, &nats.url, &collector.url).await;
    a.wait_ready().await.expect("replica a is ready");
    b.wait_ready().await.expect("replica b is ready");
    wait_gauge(&a, "progress_replicas", 2.0).await;
    wait_gauge(&b, "progress_replicas", 2.0).await;

    // Every entrant is followed by exactly one of the two, and each has some.
    let shared = wait_until("the entrants shared out", Duration::from_millis(200), || async {
        let (on_a, on_b) = (entrants_of(&a).await, entrants_of(&b).await);
        if on_a + on_b == RIDERS as f64 {
            Ok((on_a, on_b))
        } else {
            Err(format!("a follows {on_a}, b {on_b}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", a.logs(), b.logs()));
    assert!(shared.0 > 0.0 && shared.1 > 0.0, "one replica follows every entrant: {shared:?}");

    let http = reqwest::Client::new();
    let half = |r: &velometry_collector::simulate::course::Ride, second: bool| -> Vec<SimFix> {
        let middle = r.truth.arrival(40_000.0).expect("the truth passes the turn");
        r.fixes.iter().filter(|f| (f.time > middle) == second).copied().collect()
    };
    let code = event_code(&EventId::parse("mass").expect("id"));
    let rows = |q: String| {
        let influx = &influx;
        async move { influx.rows("velometry", &q).await }
    };
    let progress_count = |rider: String| {
        let rows = &rows;
        async move {
            let r = rows(format!(
                "SELECT count(\"progress_m\") FROM \"course_progress\" WHERE \"rider\" = '{rider}'"
            ))
            .await?;
            Ok::<f64, String>(r.first().and_then(|r| r["count"].as_f64()).unwrap_or(0.0))
        }
    };
    for (i, r) in rides.iter().enumerate() {
        let first = half(r, false);
        send(&http, &collector.url, &format!("token-r{i}"), &first).await;
        let n = first.len() as f64;
        wait_until(
            &format!("r{i}'s progress of the first half"),
            Duration::from_millis(500),
            || async move {
                let got = progress_count(format!("r{i}")).await?;
                if got >= n {
                    Ok(())
                } else {
                    Err(format!("{got} of {n}"))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", a.logs(), b.logs()));
    }

    // A dies without a word; B takes its riders once A's lease runs out.
    a.kill().await;
    wait_gauge(&b, "progress_replicas", 1.0).await;
    wait_gauge(&b, "progress_entrants", RIDERS as f64).await;
    for (i, r) in rides.iter().enumerate() {
        send(&http, &collector.url, &format!("token-r{i}"), &half(r, true)).await;
    }
    for (i, r) in rides.iter().enumerate() {
        let rider = format!("r{i}");
        let arrivals = wait_until(&format!("{rider}'s two arrivals and finish"), Duration::from_millis(500), || {
            let rider = rider.clone();
            async move {
                let cps = rows(format!(
                    "SELECT \"checkpoint\", \"outcome\" FROM \"checkpoint\" WHERE \"rider\" = '{rider}' AND \"event\" = {code}"
                ))
                .await?;
                let finished = rows(format!(
                    "SELECT \"status\" FROM \"course_status\" WHERE \"rider\" = '{rider}' AND \"status\" = 5"
                ))
                .await?;
                let all = progress_count(rider.clone()).await?;
                if cps.len() >= 2 && !finished.is_empty() && all >= r.fixes.len() as f64 {
                    Ok(cps)
                } else {
                    Err(format!("{} checkpoint rows, finished {}, {all} of {} fixes", cps.len(), !finished.is_empty(), r.fixes.len()))
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", a.logs(), b.logs()));
        assert_eq!(arrivals.len(), 2, "{rider}: each checkpoint exactly once: {arrivals:?}");
        for (row, km) in arrivals.iter().zip([20.0, 60.0]) {
            assert_eq!(row["outcome"], 0.0, "{rider}: {row:?}");
            let at = row["time"].as_i64().expect("time");
            let truth = r.truth.arrival(km * 1_000.0).expect("the truth has the arrival");
            assert!((at - truth).abs() < 60 * S, "{rider} at km {km}: {} s from the truth", (at - truth) / S);
        }
    }
}

/// Runs `progress recompute` with `args`, and gives its exit, stdout and stderr.
async fn recompute(args: &[String]) -> (bool, String, String) {
    let out =
        tokio::process::Command::new(workspace_binary("velometry-progress", "progress").expect("progress"))
            .arg("recompute")
            .args(args)
            .output()
            .await
            .expect("progress recompute runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_event_is_recomputed_from_history_after_its_course_is_fixed() {
    let influx = InfluxServer::start().await.expect("influxd");
    let nats = NatsServer::start().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let course = courses::out_and_back(5);
    let points: Vec<(f64, f64, Option<f64>)> =
        course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
    write_course_gpx(&dir.path().join("course.gpx"), "Out and back", &points, &[]).expect("course file");
    // The organiser's first file: the same road 55 km north, so nobody is ever on it.
    let wrong: Vec<(f64, f64, Option<f64>)> =
        points.iter().map(|(lat, lon, ele)| (lat + 0.5, *lon, *ele)).collect();
    write_course_gpx(&dir.path().join("wrong.gpx"), "Out and back", &wrong, &[]).expect("course file");
    let probe = ride(&course, &options(7, 0));
    let duration = probe.truth.finished.expect("the simulated rider finishes");
    let start = (now_nanos() - duration - 30 * 60 * S) / S * S;
    let alice = ride(&course, &options(7, start));
    let riders_with = |file: &str, out_km: f64, back_km: f64| {
        RidersToml::new()
            .rider("alice", "Alice", true)
            .device("phone", ALICE)
            .rider("bob", "Bob", true)
            .service("progress", SERVICE, &["*"])
            .raw(&format!(
                "[[event]]\nid = \"oab\"\npublic = true\ncourse = \"{file}\"\nriders = [\"alice\"]\nstart = \"{}\"\n\
                 [[event.checkpoint]]\nname = \"Out\"\ndistance_km = {out_km:.1}\n\
                 [[event.checkpoint]]\nname = \"Back\"\ndistance_km = {back_km:.1}\n",
                format_rfc3339(start),
            ))
            .build()
    };
    let riders_file = dir.path().join("riders.toml");
    std::fs::write(&riders_file, riders_with("wrong.gpx", 20.0, 60.0)).expect("riders file");
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
            format!("--nats-url={}", nats.url),
            format!("--wal-dir={}", dir.path().join("wal").display()),
        ],
    )
    .await
    .expect("the collector starts");
    collector.wait_ready().await.expect("the collector is ready");
    let http = reqwest::Client::new();
    let sent = send(&http, &collector.url, ALICE, &alice.fixes).await as f64;
    let count = |q: &'static str| {
        let influx = &influx;
        async move {
            let r = influx.rows("velometry", q).await?;
            Ok::<f64, String>(r.first().and_then(|r| r["count"].as_f64()).unwrap_or(0.0))
        }
    };
    wait_until("Alice's fixes in InfluxDB", Duration::from_millis(200), || async {
        let n = count("SELECT count(\"lat\") FROM \"gps\" WHERE \"rider\" = 'alice'").await?;
        if n >= sent {
            Ok(())
        } else {
            Err(format!("{n} of {sent}"))
        }
    })
    .await
    .expect("fixes stored");

    let flags = |extra: &[&str]| -> Vec<String> {
        let mut f = vec![
            format!("--riders={}", riders_file.display()),
            format!("--influx-url={}", influx.url),
            format!("--collector={}", collector.url),
            format!("--token={SERVICE}"),
        ];
        f.extend(extra.iter().map(|s| (*s).to_string()));
        f
    };
    // Mistakes are named.
    let (ok, _, err) = recompute(&flags(&["--event=nope"])).await;
    assert!(!ok && err.contains("has no event \"nope\"; its events: oab"), "{err}");
    let (ok, _, err) = recompute(&flags(&["--event=oab", "--rider=bob"])).await;
    assert!(!ok && err.contains("bob is not an entrant of oab"), "{err}");

    let progress_rows = || {
        let influx = &influx;
        async move {
            influx
                .rows("velometry", "SELECT \"progress_m\", \"off_course\" FROM \"course_progress\" WHERE \"rider\" = 'alice'")
                .await
                .expect("rows")
        }
    };
    let wait_progress = |what: &'static str| {
        let count = &count;
        async move {
            wait_until(what, Duration::from_millis(200), || async {
                let n =
                    count("SELECT count(\"progress_m\") FROM \"course_progress\" WHERE \"rider\" = 'alice'")
                        .await?;
                if n >= sent {
                    Ok(())
                } else {
                    Err(format!("{n} of {sent}"))
                }
            })
            .await
            .expect("a course_progress per fix");
        }
    };
    let (ok, out, err) = recompute(&flags(&["--event=oab"])).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("oab: 1 entrants recomputed") && out.contains("0 of 2"), "{out}");
    wait_progress("course_progress of every fix on the wrong course").await;
    let rows = progress_rows().await;
    assert!(rows.iter().all(|r| r["off_course"] == 1.0 || r["progress_m"] == 0.0), "on a course 55 km away?");

    // The organiser fixes the course (with the checkpoints 5 km off); one command derives
    // the event again.
    let arrivals_where = |outcome: &'static str| {
        let influx = &influx;
        async move {
            let q = format!(
                "SELECT \"checkpoint\", \"outcome\" FROM \"checkpoint\" WHERE \"rider\" = 'alice' AND \"outcome\" {outcome}"
            );
            influx.rows("velometry", &q).await
        }
    };
    let wait_arrivals = |what: &'static str, outcome: &'static str, km: [f64; 2]| {
        let arrivals_where = &arrivals_where;
        let alice = &alice;
        async move {
            wait_until(what, Duration::from_millis(200), || async {
                let cps = arrivals_where(outcome).await?;
                let times: Vec<i64> = cps.iter().filter_map(|r| r["time"].as_i64()).collect();
                let truth: Vec<i64> = km.iter().filter_map(|k| alice.truth.arrival(k * 1_000.0)).collect();
                let close = times.len() == 2 && times.iter().zip(&truth).all(|(t, u)| (t - u).abs() < 60 * S);
                if close {
                    Ok(())
                } else {
                    Err(format!("arrivals at {times:?}, the truth {truth:?}"))
                }
            })
            .await
            .expect("arrivals as the truth has them");
        }
    };
    std::fs::write(&riders_file, riders_with("course.gpx", 25.0, 55.0)).expect("riders file");
    let (ok, out, err) = recompute(&flags(&["--event=oab"])).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("2 of 2") && out.contains("finished"), "{out}");
    wait_arrivals("arrivals at km 25 and 55", "= 0", [25.0, 55.0]).await;
    // The checkpoints put right: the arrivals at km 25 and 55 are withdrawn.
    std::fs::write(&riders_file, riders_with("course.gpx", 20.0, 60.0)).expect("riders file");
    let (ok, out, err) = recompute(&flags(&["--event=oab"])).await;
    assert!(ok, "{out}\n{err}");
    let line = out.lines().find(|l| l.starts_with("alice")).unwrap_or_default().to_string();
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns.get(6), Some(&"2"), "two withdrawn: {out}");
    wait_arrivals("the withdrawn arrivals at km 25 and 55", "= 3", [25.0, 55.0]).await;
    wait_arrivals("arrivals at km 20 and 60", "<> 3", [20.0, 60.0]).await;
    let arrivals = arrivals_where("<> 3").await.expect("arrivals");
    assert_eq!(arrivals.len(), 2, "{arrivals:?}");
    for (row, km) in arrivals.iter().zip([20.0, 60.0]) {
        let at = row["time"].as_i64().expect("time");
        let truth = alice.truth.arrival(km * 1_000.0).expect("the truth has the arrival");
        assert!((at - truth).abs() < 60 * S, "arrival at km {km}: {} s from the truth", (at - truth) / S);
    }
    // Every fix's progress was overwritten, not added to.
    let rows = wait_until("the last fix's progress at the finish", Duration::from_millis(200), || async {
        let rows = progress_rows().await;
        let last = rows.last().and_then(|r| r["progress_m"].as_f64()).unwrap_or(0.0);
        if (last - course.length_m()).abs() < 100.0 {
            Ok(rows)
        } else {
            Err(format!("the last progress is {last} m of {}", course.length_m()))
        }
    })
    .await
    .expect("progress on the fixed course");
    assert_eq!(rows.len() as f64, sent, "one course_progress per fix");
}
