//! `progress recompute`: a whole event derived again from history.

use super::*;

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
    let collector = collector(&riders_file, &influx, &nats, dir.path()).await;
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

    let alice_rows = |q: &'static str| {
        let influx = &influx;
        async move { influx.rows("velometry", q).await.expect("rows") }
    };
    let progress_rows = || {
        alice_rows("SELECT \"progress_m\", \"off_course\" FROM \"course_progress\" WHERE \"rider\" = 'alice'")
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
    let off_course = || alice_rows("SELECT \"off\" FROM \"off_course\" WHERE \"rider\" = 'alice'");
    let left = wait_until("Alice leaving the wrong course", Duration::from_millis(200), || async {
        let r = off_course().await;
        r.first().filter(|r| r["off"] == 1.0).and_then(|r| r["time"].as_i64()).ok_or(format!("{r:?}"))
    })
    .await
    .expect("off the wrong course from the start");

    // The organiser fixes the course (with the checkpoints 5 km off); one command derives
    // the event again.
    let arrivals_where = |outcome: &'static str| {
        let influx = &influx;
        async move {
            let q = format!(
                "SELECT \"checkpoint\", \"outcome\" FROM \"checkpoint\" WHERE \"rider\" = 'alice' AND \"outcome\" {outcome} \
                 AND \"checkpoint\" < 2"
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
    // On the right course she never left it at the start: that leaving is withdrawn.
    let r = off_course().await;
    let first = r.iter().find(|r| r["time"].as_i64() == Some(left));
    assert_eq!(first.map(|r| r["off"].as_f64()), Some(Some(2.0)), "{r:?}");
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
