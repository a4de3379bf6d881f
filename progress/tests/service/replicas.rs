//! Replicas share the entrants, and one takes the riders of one killed.

use super::*;

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
    let collector = collector(&riders_file, &influx, &nats, dir.path()).await;
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
                if cps.len() >= 3 && !finished.is_empty() && all >= r.fixes.len() as f64 {
                    Ok(cps)
                } else {
                    Err(format!("{} checkpoint rows, finished {}, {all} of {} fixes", cps.len(), !finished.is_empty(), r.fixes.len()))
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", a.logs(), b.logs()));
        // The finish is the outcome one past the last checkpoint.
        let indices: Vec<f64> = arrivals.iter().filter_map(|r| r["checkpoint"].as_f64()).collect();
        assert_eq!(
            indices,
            [0.0, 1.0, 2.0],
            "{rider}: each checkpoint and the finish exactly once: {arrivals:?}"
        );
        for (row, km) in arrivals.iter().zip([20.0, 60.0]) {
            assert_eq!(row["outcome"], 0.0, "{rider}: {row:?}");
            let at = row["time"].as_i64().expect("time");
            let truth = r.truth.arrival(km * 1_000.0).expect("the truth has the arrival");
            assert!((at - truth).abs() < 60 * S, "{rider} at km {km}: {} s from the truth", (at - truth) / S);
        }
    }
}
