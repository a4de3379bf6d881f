//! Every InfluxQL target against a real InfluxDB holding a real ride and its rollups.

use super::*;

const EDGE_500: &str = "velo_grafana_alice_edge500";

/// What the Garmin Edge 500 file holds, from the FIT SDK's CSV dump beside it (a repeated
/// second keeps its last record, as a time series does).
struct Truth {
    start_ms: i64,
    end_ms: i64,
    mean_bpm: f64,
    distance_m: f64,
    lat: (f64, f64),
    lon: (f64, f64),
    altitude: (f64, f64),
    celsius: (f64, f64),
    heart_rates: usize,
}

impl Truth {
    fn read(csv: &Path) -> Truth {
        let rows: BTreeMap<i64, BTreeMap<String, String>> = velometry_core::testkit::csv_rows(csv)
            .expect("ground truth")
            .into_iter()
            .map(|r| (velometry_core::testkit::pacific_time(&r["timestamp"]) / MS, r))
            .collect();
        let column =
            |name: &str| -> Vec<f64> { rows.values().filter_map(|r| r.get(name)?.parse().ok()).collect() };
        let span = |values: Vec<f64>| {
            values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
        };
        let degrees = |name: &str| span(column(name).iter().map(|s| s * 180.0 / 2f64.powi(31)).collect());
        let bpm = column("heart_rate");
        Truth {
            start_ms: *rows.keys().next().expect("records"),
            end_ms: *rows.keys().next_back().expect("records"),
            mean_bpm: bpm.iter().sum::<f64>() / bpm.len() as f64,
            distance_m: span(column("distance")).1 - span(column("distance")).0,
            lat: degrees("position_lat"),
            lon: degrees("position_long"),
            altitude: span(column("altitude")),
            celsius: span(column("temperature")),
            heart_rates: bpm.len(),
        }
    }
}

/// The readings besides the ride, sent as JSON: the night's sleep, blood pressure before and
/// after the ride, a gel every hour, and two minutes of power (the Edge 500 had no power meter).
fn extra_readings(start_ms: i64, end_ms: i64) -> Value {
    let blood_pressure = |time: i64, systolic: u32, diastolic: u32, pulse: u32| {
        json!({"metric": "blood_pressure", "time": time, "systolic": systolic, "diastolic": diastolic,
               "pulse": pulse})
    };
    let mut readings = vec![
        json!({"metric": "sleep", "time": start_ms - 40 * MINUTE_MS, "duration_s": 27000,
               "deep_s": 5400, "light_s": 14400, "rem_s": 5400, "awake_s": 1800, "efficiency": 93}),
        blood_pressure(start_ms - 30 * MINUTE_MS, 118, 76, 52),
        blood_pressure(end_ms + 5 * MINUTE_MS, 126, 80, 88),
    ];
    for hour in 1..=3 {
        readings.push(json!({"metric": "nutrition", "time": start_ms + hour * HOUR_MS, "kcal": 250,
                             "carbs_g": 60, "fat_g": 2, "protein_g": 5}));
    }
    for second in 0..120 {
        readings.push(json!({"metric": "power", "time": start_ms + 10 * MINUTE_MS + second * 1_000,
                             "watts": 180 + second % 40}));
    }
    Value::Array(readings)
}

/// One query of a panel, run over one range.
struct Run<'a> {
    ref_id: &'a str,
    query: &'a str,
    /// Whether it carries a condition on `$__interval_ms`, which picks the tier it answers for.
    gated: bool,
    series: Vec<Series>,
}

/// What a panel must show for the ride: for each column its queries return, the range every
/// number in it lies in.
fn expectation(title: &str, truth: &Truth) -> Vec<(&'static str, (f64, f64))> {
    let elapsed_s = (truth.end_ms - truth.start_ms) as f64 / 1e3;
    let columns = |names: &[&'static str], range: (f64, f64)| names.iter().map(|n| (*n, range)).collect();
    match title {
        "Route and position" => vec![("lat", truth.lat), ("lon", truth.lon)],
        "Distance" => columns(&["distance"], (0.99 * truth.distance_m, truth.distance_m + 1.0)),
        "Moving time" => columns(&["moving"], (0.5 * elapsed_s, elapsed_s)),
        "Average heart rate" => columns(&["bpm"], (truth.mean_bpm - 0.01, truth.mean_bpm + 0.01)),
        "Heart rate" => columns(&["mean", "max"], (30.0, 250.0)),
        "Speed" => columns(&["speed"], (0.0, 100.0)),
        "Elevation" => columns(&["elevation"], (truth.altitude.0 - 1.0, truth.altitude.1 + 1.0)),
        "Cadence" => columns(&["cadence"], (0.0, 300.0)),
        "Power" => columns(&["power"], (180.0, 219.0)),
        "Temperature" => columns(&["temperature"], truth.celsius),
        "Sleep" => columns(&["deep", "light", "REM", "awake"], (1_800.0, 14_400.0)),
        "Energy intake" => columns(&["kcal"], (250.0, 750.0)),
        "Carbohydrate, fat and protein intake" => columns(&["carbohydrate", "fat", "protein"], (2.0, 180.0)),
        "Blood pressure" => columns(&["systolic", "diastolic", "pulse"], (52.0, 126.0)),
        other => panic!("panel {other:?} has no expectation here: add one"),
    }
}

#[tokio::test]
async fn every_influxql_target_answers_from_an_imported_ride_and_its_rollups() {
    let Some(rides) = velometry_core::testkit::rides("fit") else { return };
    let truth = Truth::read(&rides.join("garmin-edge-500-activity-records.csv"));
    let influx = InfluxServer::start().await.expect("influxd");
    influx.query(DB, &format!("CREATE DATABASE \"{DB}\"")).await.expect("database");
    let dir = tempfile::tempdir().expect("tempdir");
    let riders = dir.path().join("riders.toml");
    std::fs::write(
        &riders,
        RidersToml::new().rider("alice", "Alice", true).max_hr(190).device("edge500", EDGE_500).build(),
    )
    .expect("riders file");
    let common = |extra: &[String]| {
        let mut args: Vec<String> =
            ["serve", "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"].map(String::from).into();
        args.push(format!("--riders={}", riders.display()));
        args.push(format!("--influx-url={}", influx.url));
        args.extend_from_slice(extra);
        args
    };
    // The query service starts on an empty database, so its watermark starts at now. Had it
    // started on the ride, its first cycle would roll up every day since 2011 (about 80 days
    // a second: over a minute). Started first, it rolls up the ride in its next cycle, from the
    // late-reading markers the collector writes with readings older than --late-after: the
    // path a ride file imported after the fact takes in production.
    let query = Service::start(
        workspace_binary("velometry-query", "query").expect("query"),
        common(&["--rollup-interval=1s".into()]),
    )
    .await
    .expect("the query service starts");
    let collector = Service::start(
        workspace_binary("velometry-collector", "collector").expect("collector"),
        common(&[format!("--wal-dir={}", dir.path().join("wal").display())]),
    )
    .await
    .expect("the collector starts");
    let watermark = "SELECT last(\"watermark_ns\") FROM \"velometry_rollup_state\"";
    assert!(
        poll(|| async { first_number(&influx, watermark).await > 0.0 }).await,
        "no rollup watermark: {}",
        query.logs()
    );

    // The ride through `collector import`, the rest through the JSON API.
    let fit = rides.join("garmin-edge-500-activity.fit").display().to_string();
    let import = tokio::process::Command::new(
        workspace_binary("velometry-collector", "collector").expect("collector"),
    )
    .args(["import", "--target", &collector.url, "--token", EDGE_500, &fit])
    .output()
    .await
    .expect("collector import runs");
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let response = reqwest::Client::new()
        .post(format!("{}/v1/readings", collector.url))
        .header("Authorization", format!("Token {EDGE_500}"))
        .json(&extra_readings(truth.start_ms, truth.end_ms))
        .send()
        .await
        .expect("the collector answers");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());

    // Everything stored, then every reading counted in both tiers.
    let stored = || async {
        first_number(&influx, "SELECT count(\"bpm\") FROM \"heart_rate\"").await as usize == truth.heart_rates
            && first_number(&influx, "SELECT count(\"watts\") FROM \"power\"").await == 120.0
    };
    assert!(poll(stored).await, "the ride did not land: {}", collector.logs());
    let fields = [
        ("gps", "lat"),
        ("heart_rate", "bpm"),
        ("cadence", "rpm"),
        ("power", "watts"),
        ("temperature", "celsius"),
        ("distance", "meters"),
    ];
    let rolled_up = || async {
        for (m, f) in fields {
            let raw = first_number(&influx, &format!("SELECT count(\"{f}\") FROM \"{m}\"")).await;
            for tier in ["1m", "1h"] {
                if first_number(&influx, &format!("SELECT sum(\"{f}_count\") FROM \"{m}_{tier}\"")).await
                    != raw
                {
                    return false;
                }
            }
        }
        true
    };
    assert!(poll(rolled_up).await, "the ride was not rolled up: {}", query.logs());

    // The rider variable lists alice.
    let rider = dashboard("rider");
    let variable = rider["templating"]["list"][0]["query"].as_str().expect("variable query");
    let riders = influxql(&influx, variable).await;
    assert_eq!(riders[0].columns, ["key", "value"]);
    assert_eq!(riders[0].rows, [vec![json!("rider"), json!("alice")]]);

    // Three ranges, one per tier: the ride (with the morning before it), a week, four months.
    let min_interval = duration_ms(&provisioned(INFLUX_UID, "timeInterval"));
    let ranges = [
        ("the ride", truth.start_ms - HOUR_MS, truth.end_ms + 15 * MINUTE_MS),
        ("a week", truth.start_ms - 3 * DAY_MS, truth.end_ms + 3 * DAY_MS),
        ("four months", truth.start_ms - 55 * DAY_MS, truth.end_ms + 65 * DAY_MS),
    ];
    let mut tiers_seen = BTreeSet::new();
    let mut stats: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (range, from, to) in ranges {
        let band = tier_for(grafana_interval_ms(from, to, 1_000, min_interval));
        tiers_seen.insert(band);
        for panel in panels(&rider) {
            let max_points = panel["maxDataPoints"].as_i64().unwrap_or(1_000);
            let vars =
                influx_vars(from, to, grafana_interval_ms(from, to, max_points, min_interval), "alice");
            let mut runs = Vec::new();
            for target in panel["targets"].as_array().expect("targets") {
                let query = target["query"].as_str().expect("InfluxQL");
                let expanded = expand(query, &vars);
                assert!(!expanded.contains('$'), "{}: unexpanded variable in {expanded}", title(panel));
                let ref_id = target["refId"].as_str().expect("refId");
                let gated = query.contains("$__interval_ms");
                runs.push(Run { ref_id, query, gated, series: influxql(&influx, &expanded).await });
            }
            // Of the tier-gated queries exactly one answers: the one of the range's tier (or
            // the 1-minute one, in stats, which have no hourly query).
            let gated: Vec<&Run> = runs.iter().filter(|r| r.gated).collect();
            let answering = gated
                .iter()
                .find(|r| tier_of(r.query) == band)
                .or_else(|| gated.iter().find(|r| tier_of(r.query) == "1m"))
                .map(|r| r.ref_id);
            for run in &runs {
                let what = format!("{range}: {} {} ({})", title(panel), run.ref_id, tier_of(run.query));
                if run.gated && answering != Some(run.ref_id) {
                    let rows: usize = run.series.iter().map(|s| s.rows.len()).sum();
                    assert!(
                        run.series.is_empty(),
                        "{what} answered ({rows} rows) though another tier should"
                    );
                    continue;
                }
                assert_eq!(run.series.len(), 1, "{what}: one series expected");
                let series = &run.series[0];
                let expected = expectation(title(panel), &truth);
                for (column, (lo, hi)) in &expected {
                    let values = series.numbers(column);
                    assert!(!values.is_empty(), "{what}: no {column} in {:?}", series.columns);
                    for v in &values {
                        assert!((lo..=hi).contains(&v), "{what}: {column} {v} is outside [{lo}, {hi}]");
                    }
                }
                if matches!(title(panel), "Distance" | "Moving time" | "Average heart rate") {
                    stats.entry(title(panel)).or_default().extend(series.numbers(expected[0].0));
                }
                if title(panel) == "Energy intake" {
                    assert_eq!(series.numbers("kcal").last(), Some(&750.0), "{what}: three gels of 250 kcal");
                }
            }
        }
    }
    assert_eq!(tiers_seen, BTreeSet::from(["raw", "1m", "1h"]), "the ranges cover every tier");
    // The stats agree across tiers: the mean heart rate exactly, distance within the first
    // minute's riding, moving time within its window's coarseness.
    assert_eq!(stats["Average heart rate"].len(), 3);
    let distance = &stats["Distance"];
    assert!(
        (distance[0] - truth.distance_m).abs() < 1.0,
        "raw distance {distance:?} vs {}",
        truth.distance_m
    );
    let moving = &stats["Moving time"];
    assert!(moving.iter().all(|m| (m - moving[0]).abs() < 0.1 * moving[0]), "{moving:?}");
}
