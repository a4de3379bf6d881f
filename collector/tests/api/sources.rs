//! Ride files and replays through the real `collector import` and `collector replay`
//! commands into a running collector, checked in InfluxDB.

use std::collections::BTreeMap;
use std::path::Path;

use crate::helpers::*;

/// Runs the collector binary with `args`; returns (success, stdout, stderr).
async fn run(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(args)
        .output()
        .await
        .expect("the collector binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The CSV ground truth's heart rates by UTC time (the last of a repeated second, as a time
/// series keeps it).
fn heart_rates(csv: &Path) -> BTreeMap<i64, f64> {
    velometry_core::testkit::csv_rows(csv)
        .expect("ground truth")
        .iter()
        .filter(|r| !r["heart_rate"].is_empty())
        .map(|r| {
            (velometry_core::testkit::pacific_time(&r["timestamp"]), r["heart_rate"].parse().expect("bpm"))
        })
        .collect()
}

async fn stored_heart_rates(env: &Env, rider: &str, device: &str, n: usize) -> BTreeMap<i64, f64> {
    let q =
        format!("SELECT \"bpm\" FROM \"heart_rate\" WHERE \"rider\" = '{rider}' AND \"device\" = '{device}'");
    env.wait_rows(&q, n)
        .await
        .iter()
        .map(|r| (r["time"].as_i64().expect("time"), r["bpm"].as_f64().expect("bpm")))
        .collect()
}

#[tokio::test]
async fn fit_files_land_in_influxdb_exactly_as_recorded_and_twice_changes_nothing() {
    let Some(dir) = velometry_core::testkit::rides("fit") else { return };
    let env = Env::start(&[]).await;
    let files = [
        ("garmin-edge-500-activity", BOB_PHONE, "bob", "phone"),
        ("garmin-edge-820-bike", ALICE_EDGE, "alice", "edge530"),
        ("garmin-fenix-5-bike", ALICE_PHONE, "alice", "phone"),
    ];
    for round in 0..2 {
        for (name, token, _, _) in files {
            let fit = dir.join(format!("{name}.fit"));
            let (ok, stdout, stderr) = run(&[
                "import",
                "--target",
                &env.collector.url,
                "--token",
                token,
                &fit.display().to_string(),
            ])
            .await;
            assert!(ok, "round {round}, {name}: {stdout}\n{stderr}");
            assert!(stdout.contains("records") && stdout.contains("readings written"), "{stdout}");
        }
    }
    for (name, _, rider, device) in files {
        let truth = heart_rates(&dir.join(format!("{name}-records.csv")));
        let stored = stored_heart_rates(&env, rider, device, truth.len()).await;
        assert_eq!(stored, truth, "{name}: heart rates by UTC time");
    }
    // Imported twice: still one point per instant.
    let edge_500 = heart_rates(&dir.join("garmin-edge-500-activity-records.csv"));
    assert_eq!(
        env.influx
            .rows(DB, "SELECT count(\"bpm\") FROM \"heart_rate\" WHERE \"rider\" = 'bob'")
            .await
            .expect("count")[0]["count"],
        edge_500.len() as u64
    );
    let sources =
        env.influx.query(DB, "SHOW TAG VALUES FROM \"gps\" WITH KEY = \"source\"").await.expect("tags");
    assert!(sources.to_string().contains("\"import\""), "{sources}");
}

#[tokio::test]
async fn bad_files_are_refused_by_name_and_nothing_is_written() {
    let Some(dir) = velometry_core::testkit::rides("bad") else { return };
    let env = Env::start(&[]).await;
    for entry in std::fs::read_dir(&dir).expect("bad/") {
        let path = entry.expect("entry").path();
        let file = path.display().to_string();
        if file.ends_with("unexpected-eof.fit") {
            // Cut short, not corrupt: imported up to the cut (import.rs).
            continue;
        }
        let (ok, stdout, stderr) =
            run(&["import", "--target", &env.collector.url, "--token", ALICE_EDGE, &file]).await;
        assert!(!ok, "{file} was accepted: {stdout}");
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(stderr.contains(name) && stderr.contains("error:"), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let other = tempfile::tempdir().expect("tempdir");
    let docx = other.path().join("ride.docx");
    std::fs::write(&docx, b"PK\x03\x04 not a ride").expect("write");
    let docx = docx.display().to_string();
    let (ok, _, stderr) =
        run(&["import", "--target", &env.collector.url, "--token", ALICE_EDGE, &docx]).await;
    assert!(!ok && stderr.contains(".fit, .gpx or .tcx"), "{stderr}");
    env.settled().await;
    assert_eq!(env.influx.count(DB, "gps", "lat").await.expect("count"), 0);
}

#[tokio::test]
async fn a_wrong_token_or_a_missing_collector_is_named() {
    let Some(dir) = velometry_core::testkit::rides("fit") else { return };
    let env = Env::start(&[]).await;
    let fit = dir.join("garmin-fenix-5-bike.fit").display().to_string();
    let (ok, _, stderr) =
        run(&["import", "--target", &env.collector.url, "--token", "velo_nobody", &fit]).await;
    assert!(!ok && stderr.contains("401") && stderr.contains("--token"), "{stderr}");
    let (ok, _, stderr) =
        run(&["import", "--target", "http://127.0.0.1:9", "--token", ALICE_EDGE, &fit]).await;
    assert!(!ok && stderr.contains("cannot reach the collector"), "{stderr}");
}

#[tokio::test]
async fn synthetic_riders_and_a_replayed_file_arrive_as_live_traffic() {
    let env = Env::start(&[]).await;
    let started = velometry_core::time::now_nanos();
    let (ok, stdout, stderr) = run(&[
        "replay",
        "--target",
        &env.collector.url,
        "--synthetic",
        "--token",
        ALICE_EDGE,
        "--token",
        BOB_PHONE,
        "--speed",
        "10",
        "--duration",
        "3s",
        "--seed",
        "5",
    ])
    .await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 requests failed"), "{stdout}");
    for rider in ["alice", "bob"] {
        let rows = env
            .wait_rows(
                &format!("SELECT \"lat\", \"lon\", \"speed\" FROM \"gps\" WHERE \"rider\" = '{rider}'"),
                20,
            )
            .await;
        assert!(
            rows.iter().all(|r| r["time"].as_i64().is_some_and(|t| t >= started - 1_000_000_000)),
            "{rider}: live times"
        );
        let hr = env
            .wait_rows(&format!("SELECT \"bpm\" FROM \"heart_rate\" WHERE \"rider\" = '{rider}'"), 20)
            .await;
        assert!(hr.iter().all(|r| r["bpm"].as_f64().is_some_and(|b| (60.0..200.0).contains(&b))), "{hr:?}");
    }

    let Some(dir) = velometry_core::testkit::rides("fit") else { return };
    let fit = dir.join("garmin-edge-820-bike.fit").display().to_string();
    let truth = heart_rates(&dir.join("garmin-edge-820-bike-records.csv"));
    let (ok, stdout, stderr) =
        run(&["replay", "--target", &env.collector.url, "--token", ALICE_PHONE, "--speed", "100", &fit])
            .await;
    assert!(ok, "{stdout}\n{stderr}");
    let replayed = stored_heart_rates(&env, "alice", "phone", truth.len()).await;
    let replayed: Vec<(i64, f64)> = replayed.into_iter().filter(|(t, _)| *t >= started).collect();
    let recorded: Vec<(i64, f64)> = truth.into_iter().collect();
    assert_eq!(replayed.len(), recorded.len(), "every recorded instant, shifted to now");
    assert_eq!(
        replayed.iter().map(|p| p.1).collect::<Vec<_>>(),
        recorded.iter().map(|p| p.1).collect::<Vec<_>>()
    );
    // Spacing kept at 100× speed: the recording's gaps, divided by 100, within scheduling slack.
    let span_recorded = (recorded[recorded.len() - 1].0 - recorded[0].0) as f64 / 100.0;
    let span_replayed = (replayed[replayed.len() - 1].0 - replayed[0].0) as f64;
    assert!((span_replayed - span_recorded).abs() < 0.5e9, "{span_replayed} ns vs {span_recorded} ns");
}
