//! grafana/: the provisioned data sources and the two dashboards. Grafana cannot run here, so
//! the dashboards are proven the way Grafana would use them: every panel's query, with
//! Grafana's macros and variables expanded as Grafana expands them, runs against a real
//! InfluxDB holding a real ride (sent by the real `collector import`, rolled up by the real
//! query service) and against a real Prometheus scraping the real services.
//!
//! How Grafana expands a query (and so how these tests do):
//! - `$__interval` / `$__interval_ms`: the range divided by the panel's `maxDataPoints`,
//!   rounded to Grafana's ladder of round intervals, at least the data source's
//!   `timeInterval` ([`grafana_interval_ms`]); written `15s`, `10m`, `3h` ([`interval_text`]).
//! - `$timeFilter` (InfluxQL): `time >= <from>ms and time <= <to>ms`.
//! - `$__range` (PromQL): the range in seconds, `3600s`; `$__rate_interval`: the larger of
//!   `$__interval` plus one scrape interval and four scrape intervals.
//! - `$rider`: single-valued (neither multi nor include-all), so Grafana inserts the value
//!   unescaped; the dashboard quotes it itself, `"rider" = '$rider'` → `"rider" = 'alice'`.
//!   `${rider}` and `[[rider]]` are the same variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use velometry_core::testkit::{workspace_binary, InfluxServer, PrometheusServer, RidersToml, Service};

use crate::helpers::*;

const DB: &str = "velometry";
const INFLUX_UID: &str = "velometry-influxdb";
const PROMETHEUS_UID: &str = "velometry-prometheus";
const MS: i64 = 1_000_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

// ---------------------------------------------------------------------------------------
// The files

fn dashboard(name: &str) -> Value {
    let path = root().join("grafana/dashboards").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap_or_default()
}

/// The uids of the provisioned data sources. serde_yaml is not a dependency, and the file is
/// ours: its `uid:` lines are enough.
fn provisioned_uids() -> Vec<String> {
    let path = root().join("grafana/provisioning/datasources/velometry.yml");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uid:"))
        .map(|uid| uid.trim().trim_matches(['"', '\'']).to_owned())
        .collect()
}

/// A line `key: value` of the provisioning file, inside the data source with `uid`.
fn provisioned(uid: &str, key: &str) -> String {
    let path = root().join("grafana/provisioning/datasources/velometry.yml");
    let text = std::fs::read_to_string(path).expect("datasources");
    let section = text.split("- name:").find(|s| s.contains(&format!("uid: {uid}"))).expect("data source");
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{uid} has no {key}"))
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------------------
// Grafana's expansion

/// Grafana's `roundInterval` (`@grafana/data` rangeutil): a raw interval in ms to the round
/// one at or below it.
fn round_interval(ms: i64) -> i64 {
    const LADDER: [(i64, i64); 29] = [
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
        (604_800_000, 86_400_000),
        (1_814_400_000, 604_800_000),
        (3_628_800_000, 2_592_000_000),
    ];
    LADDER.iter().find(|(below, _)| ms < *below).map_or(31_536_000_000, |(_, round)| *round)
}

/// `$__interval_ms` for a range (Grafana's `calculateInterval`): the range over the panel's
/// `maxDataPoints`, rounded, and at least the data source's `timeInterval`.
fn grafana_interval_ms(from_ms: i64, to_ms: i64, max_data_points: i64, min_interval_ms: i64) -> i64 {
    round_interval((to_ms - from_ms) / max_data_points).max(min_interval_ms)
}

/// `$__interval` as Grafana writes it (`gtime.FormatInterval`): the largest whole unit.
fn interval_text(ms: i64) -> String {
    const UNITS: [(&str, i64); 6] =
        [("y", 365 * DAY_MS), ("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", 1_000), ("ms", 1)];
    let (unit, size) = UNITS.iter().find(|(_, size)| ms >= *size).copied().unwrap_or(("ms", 1));
    format!("{}{unit}", ms / size)
}

/// A Grafana duration (`15s`, `1m`) in ms.
fn duration_ms(text: &str) -> i64 {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().unwrap_or_else(|_| panic!("odd duration {text:?}"));
    n * match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        other => panic!("odd unit {other:?} in {text:?}"),
    }
}

/// Replaces `$name`, `${name}` and `[[name]]` as Grafana's template service does: a `$`
/// takes the longest run of word characters as the name, so `$__interval_ms` is never read as
/// `$__interval` followed by `_ms`. Unknown names stay as they are.
fn expand(query: &str, vars: &BTreeMap<&str, String>) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (name, len) = if let Some(braced) = rest.strip_prefix("${") {
            let end = braced.find('}').unwrap_or(braced.len());
            (&braced[..end], end + 3)
        } else if let Some(bracketed) = rest.strip_prefix("[[") {
            let end = bracketed.find("]]").unwrap_or(bracketed.len());
            (&bracketed[..end], end + 4)
        } else if let Some(plain) = rest.strip_prefix('$') {
            let end = plain.find(|c: char| !word(c)).unwrap_or(plain.len());
            (&plain[..end], end + 1)
        } else {
            ("", 1)
        };
        match vars.get(name) {
            Some(value) if !name.is_empty() => {
                out.push_str(value);
                rest = &rest[len.min(rest.len())..];
            }
            _ => {
                out.push_str(&rest[..1]);
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What Grafana substitutes in an InfluxQL query of a panel over `[from_ms, to_ms]`.
fn influx_vars(from_ms: i64, to_ms: i64, interval_ms: i64, rider: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("timeFilter", format!("time >= {from_ms}ms and time <= {to_ms}ms")),
        ("__interval", interval_text(interval_ms)),
        ("__interval_ms", interval_ms.to_string()),
        ("interval", interval_text(interval_ms)),
        ("rider", rider.to_owned()),
    ])
}

/// What Grafana substitutes in a PromQL query over `range_ms` ending now.
fn prometheus_vars(range_ms: i64, interval_ms: i64, scrape_ms: i64) -> BTreeMap<&'static str, String> {
    let rate_interval = (interval_ms + scrape_ms).max(4 * scrape_ms);
    BTreeMap::from([
        ("__interval", interval_text(interval_ms)),
        ("__interval_ms", interval_ms.to_string()),
        ("__rate_interval", interval_text(rate_interval)),
        ("__range", format!("{}s", range_ms / 1_000)),
        ("__range_s", (range_ms / 1_000).to_string()),
        ("__range_ms", range_ms.to_string()),
    ])
}

/// The tier a range's interval selects: raw readings below a minute, the 1-minute rollups
/// below an hour, the 1-hour rollups beyond.
fn tier_for(interval_ms: i64) -> &'static str {
    match interval_ms {
        i if i < MINUTE_MS => "raw",
        i if i < HOUR_MS => "1m",
        _ => "1h",
    }
}

/// The tier an InfluxQL query reads.
fn tier_of(query: &str) -> &'static str {
    if query.contains("_1h\"") {
        "1h"
    } else if query.contains("_1m\"") {
        "1m"
    } else {
        "raw"
    }
}

#[test]
fn grafana_variables_and_intervals_expand_as_grafana_expands_them() {
    let vars = influx_vars(1_000, 2_000, 15_000, "alice");
    assert_eq!(
        expand(
            "SELECT mean(\"bpm\") FROM \"heart_rate\" WHERE \"rider\" = '$rider' AND $timeFilter \
             AND $__interval_ms < 60000 GROUP BY time($__interval)",
            &vars
        ),
        "SELECT mean(\"bpm\") FROM \"heart_rate\" WHERE \"rider\" = 'alice' AND time >= 1000ms and \
         time <= 2000ms AND 15000 < 60000 GROUP BY time(15s)"
    );
    assert_eq!(
        expand("'${rider}' '[[rider]]' $rider_x $unknown $", &vars),
        "'alice' 'alice' $rider_x $unknown $"
    );
    let vars = prometheus_vars(HOUR_MS, 15_000, 15_000);
    assert_eq!(
        expand("increase(x[$__range]) rate(x[$__rate_interval]) $__interval $__interval_ms", &vars),
        "increase(x[3600s]) rate(x[1m]) 15s 15000"
    );
    // maxDataPoints 1000 and a 1 s floor: the tier changes at 12.5 h and at 31.25 days.
    let interval = |range_ms: i64| grafana_interval_ms(0, range_ms, 1_000, 1_000);
    assert_eq!(interval(MINUTE_MS), 1_000);
    assert_eq!(interval_text(interval(12 * HOUR_MS)), "30s");
    assert_eq!((tier_for(interval(12 * HOUR_MS)), tier_for(interval(13 * HOUR_MS))), ("raw", "1m"));
    assert_eq!(interval_text(interval(13 * HOUR_MS)), "1m");
    assert_eq!((tier_for(interval(31 * DAY_MS)), tier_for(interval(32 * DAY_MS))), ("1m", "1h"));
    assert_eq!(interval_text(interval(365 * DAY_MS)), "6h");
    assert_eq!(duration_ms(&provisioned(INFLUX_UID, "timeInterval")), 1_000);
}

#[test]
fn the_dashboards_are_well_formed_and_use_only_the_provisioned_data_sources() {
    let uids = provisioned_uids();
    assert_eq!(uids, [INFLUX_UID, PROMETHEUS_UID], "grafana/provisioning/datasources/velometry.yml");
    let provider = std::fs::read_to_string(root().join("grafana/provisioning/dashboards/velometry.yml"))
        .expect("provider");
    assert!(provider.contains("path: /var/lib/grafana/dashboards") && provider.contains("folder: velometry"));

    let mut dashboard_uids = BTreeSet::new();
    for (name, uid) in [("rider", "velometry-rider"), ("ops", "velometry-ops")] {
        let d = dashboard(name);
        assert_eq!(d["uid"], uid, "{name}.json");
        assert!(dashboard_uids.insert(uid), "uid {uid} used twice");
        assert!(d["schemaVersion"].as_i64().is_some_and(|v| v >= 36), "{name}: schemaVersion");
        let uses = |ds: &Value, what: &str| {
            assert!(ds.get("name").is_none(), "{what}: a data source by name");
            let uid = ds["uid"].as_str().unwrap_or_else(|| panic!("{what}: no data source uid"));
            assert!(uids.iter().any(|u| u == uid), "{what}: unknown data source uid {uid}");
        };
        for variable in d["templating"]["list"].as_array().expect("templating") {
            uses(&variable["datasource"], &format!("{name}: variable {}", variable["name"]));
        }
        let mut ids = BTreeSet::new();
        for panel in panels(&d) {
            let what = format!("{name}: panel {:?}", title(panel));
            assert!(!title(panel).trim().is_empty(), "{name}: a panel without a title");
            assert!(ids.insert(panel["id"].as_i64().expect("id")), "{what}: id used twice");
            assert!(panel["description"].as_str().is_some_and(|s| s.len() > 20), "{what}: no description");
            assert!(
                panel["fieldConfig"]["defaults"]["unit"].as_str().is_some_and(|u| !u.is_empty()),
                "{what}: no unit"
            );
            uses(&panel["datasource"], &what);
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{what}: no query");
            for target in targets {
                uses(&target["datasource"], &format!("{what} {}", target["refId"]));
                assert!(target["query"].is_string() || target["expr"].is_string(), "{what}: empty target");
            }
        }
    }

    // The rider dashboard: InfluxQL only, a rider variable, and every time series that reads
    // raw readings for short ranges reads the 1m and 1h tiers for long ones.
    let rider = dashboard("rider");
    let variable = &rider["templating"]["list"][0];
    assert_eq!((variable["name"].as_str(), variable["multi"].as_bool()), (Some("rider"), Some(false)));
    assert_eq!(variable["query"], "SHOW TAG VALUES FROM \"gps\" WITH KEY = \"rider\"");
    for panel in panels(&rider) {
        assert_eq!(panel["datasource"]["uid"], INFLUX_UID, "{}", title(panel));
        let queries: Vec<&str> =
            panel["targets"].as_array().into_iter().flatten().filter_map(|t| t["query"].as_str()).collect();
        let tiers: BTreeSet<&str> =
            queries.iter().filter(|q| q.contains("$__interval_ms")).map(|q| tier_of(q)).collect();
        if panel["type"] == "timeseries"
            && queries.iter().any(|q| tier_of(q) == "raw" && q.contains("$__interval_ms"))
        {
            assert_eq!(
                tiers,
                BTreeSet::from(["raw", "1m", "1h"]),
                "{}: raw, 1m and 1h queries",
                title(panel)
            );
        }
        if !tiers.is_empty() {
            assert_eq!(panel["maxDataPoints"], 1000, "{}: the tier depends on maxDataPoints", title(panel));
        }
    }
    let geomap = panels(&rider).into_iter().find(|p| p["type"] == "geomap").expect("a geomap panel");
    for layer in geomap["options"]["layers"].as_array().expect("layers") {
        let target = geomap["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["refId"] == layer["filterData"]["options"]);
        let target = target.unwrap_or_else(|| panic!("layer {} shows no query", layer["name"]));
        assert_eq!(target["resultFormat"], "table", "{}: lat and lon in one table frame", layer["name"]);
        assert_eq!(
            (layer["location"]["latitude"].as_str(), layer["location"]["longitude"].as_str()),
            (Some("lat"), Some("lon"))
        );
    }

    // The ops dashboard charts every metric of docs/metrics.md.
    let ops = dashboard("ops");
    let exprs: Vec<String> = panels(&ops)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().expect("PromQL").to_owned())
        .collect();
    let documented = std::fs::read_to_string(root().join("docs/metrics.md")).expect("metrics.md");
    let metrics: Vec<&str> =
        documented.lines().filter_map(|l| l.strip_prefix("| `")?.split('`').next()).collect();
    assert!(metrics.len() >= 40, "{metrics:?}");
    for metric in metrics {
        assert!(exprs.iter().any(|e| e.contains(metric)), "the ops dashboard does not chart {metric}");
    }
}

// ---------------------------------------------------------------------------------------
// InfluxQL against a real ride

const EDGE_500: &str = "velo_grafana_alice_edge500";

/// One series of an InfluxQL answer.
#[derive(Debug)]
struct Series {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Series {
    /// The non-null numbers of a column.
    fn numbers(&self, column: &str) -> Vec<f64> {
        let Some(i) = self.columns.iter().position(|c| c == column) else { return Vec::new() };
        self.rows.iter().filter_map(|r| r.get(i)?.as_f64()).collect()
    }
}

async fn influxql(influx: &InfluxServer, q: &str) -> Vec<Series> {
    let body = influx.query(DB, q).await.unwrap_or_else(|e| panic!("InfluxDB refused it: {e}"));
    body.pointer("/results/0/series")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| Series {
            columns: s["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| c.as_str().expect("column").to_owned())
                .collect(),
            rows: s["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|r| r.as_array().expect("row").clone())
                .collect(),
        })
        .collect()
}

async fn number(influx: &InfluxServer, q: &str) -> f64 {
    influxql(influx, q).await.first().and_then(|s| s.rows.first()?.get(1)?.as_f64()).unwrap_or(0.0)
}

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
        poll(Duration::from_secs(20), || async { number(&influx, watermark).await > 0.0 }).await,
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
        number(&influx, "SELECT count(\"bpm\") FROM \"heart_rate\"").await as usize == truth.heart_rates
            && number(&influx, "SELECT count(\"watts\") FROM \"power\"").await == 120.0
    };
    assert!(poll(Duration::from_secs(30), stored).await, "the ride did not land: {}", collector.logs());
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
            let raw = number(&influx, &format!("SELECT count(\"{f}\") FROM \"{m}\"")).await;
            for tier in ["1m", "1h"] {
                if number(&influx, &format!("SELECT sum(\"{f}_count\") FROM \"{m}_{tier}\"")).await != raw {
                    return false;
                }
            }
        }
        true
    };
    assert!(poll(Duration::from_secs(30), rolled_up).await, "the ride was not rolled up: {}", query.logs());

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

// ---------------------------------------------------------------------------------------
// PromQL against a real Prometheus scraping the real services

/// Metrics that only appear after events this test does not cause: connection limits
/// reached, NATS failing, scheduled pollers (the stack runs none), slow WebSocket clients,
/// and closed WebSocket connections (the test's follower stays connected).
const EVENT_ONLY: [&str; 8] = [
    "collector_http_connections_refused_total",
    "query_connections_refused_total",
    "stream_connections_refused_total",
    "collector_live_publish_failures_total",
    "collector_source_",
    "stream_readings_coalesced_total",
    "stream_readings_dropped_total",
    "stream_closes_total",
];

/// Opens a WebSocket to the hub and follows `rider`: the RFC 6455 handshake and one masked
/// text frame, enough to make the hub deliver without a WebSocket crate in this package.
async fn follow(hub: &str, rider: &str) -> TcpStream {
    let host = hub.trim_start_matches("http://").trim_end_matches('/');
    let mut socket = TcpStream::connect(host).await.expect("the hub accepts");
    let handshake = format!(
        "GET /v1/live HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.expect("handshake");
    assert!(read_until(&mut socket, "\r\n\r\n").await.starts_with("HTTP/1.1 101"), "no upgrade");
    send_text(&mut socket, format!(r#"{{"op":"subscribe","riders":["{rider}"]}}"#).as_bytes()).await;
    read_until(&mut socket, "\"subscribed\"").await;
    socket
}

/// A text frame from a client (masked, as clients must), shorter than 126 bytes.
async fn send_text(socket: &mut TcpStream, payload: &[u8]) {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | u8::try_from(payload.len()).expect("short payload")];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).await.expect("frame");
}

/// Reads until `needle` has arrived; returns what was read.
async fn read_until(socket: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let mut buf = [0u8; 4096];
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => panic!("{needle:?} never came; got {:?}", String::from_utf8_lossy(&seen)),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Traffic that makes every metric the stack can have appear: readings live and late,
/// refusals, a field type conflict (a dead letter), a follower, series.
async fn traffic(stack: &Stack) {
    let http = reqwest::Client::new();
    let post = |body: Value, token: &str| {
        http.post(format!("{}/v1/readings", stack.collector.url))
            .header("Authorization", format!("Token {token}"))
            .json(&body)
            .send()
    };
    let mut follower = follow(&stack.stream.url, "alice").await;

    let now = velometry_core::time::now_nanos() / MS;
    let live = json!([{"metric": "gps", "time": now, "lat": 45.1, "lon": 7.6, "speed": 8.3},
                      {"metric": "heart_rate", "time": now, "bpm": 142},
                      {"metric": "heart_rate", "time": now - HOUR_MS, "bpm": 120}]);
    assert_eq!(post(live, ALICE_PHONE).await.expect("collector").status(), 200);
    read_until(&mut follower, "\"type\":\"reading\"").await;
    assert_eq!(
        post(json!([{"metric": "heart_rate", "bpm": 142}]), "velo_nobody").await.expect("collector").status(),
        401
    );
    assert_eq!(
        post(json!([{"metric": "heart_rate", "bpm": 999}]), ALICE_PHONE).await.expect("collector").status(),
        400
    );
    for line in ["grafana_probe,host=a value=1i", "grafana_probe,host=a value=\"text\""] {
        let status = http
            .post(format!("{}/write", stack.collector.url))
            .header("Authorization", format!("Token {ALICE_PHONE}"))
            .body(line)
            .send()
            .await
            .expect("collector")
            .status();
        assert_eq!(status, 204, "{line}");
        // Apart, so that InfluxDB knows the first type when the second line comes.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (path, status) in
        [("/v1/riders/alice/series/heart_rate", 200), ("/v1/riders/carol/series/heart_rate", 404)]
    {
        assert_eq!(
            http.get(format!("{}{path}", stack.query.url)).send().await.expect("query").status(),
            status,
            "{path}"
        );
    }
    // Held open, so that the connection gauges read 1 while Prometheus scrapes.
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while matches!(follower.read(&mut buf).await, Ok(n) if n > 0) {}
    });
}

#[tokio::test]
async fn every_promql_target_answers_from_prometheus_scraping_the_services() {
    let stack = Stack::start().await;
    // As in prometheus.rs: the shipped configuration, pointed at the services, scraping fast.
    let mut config =
        std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml")).expect("config");
    for ((_, target), default) in
        stack.metrics_targets().iter().zip(["127.0.0.1:9180", "127.0.0.1:9170", "127.0.0.1:9190"])
    {
        config = config.replace(default, target);
    }
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s");
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules/velometry.yml")).expect("rules");
    let prometheus =
        PrometheusServer::start(&config, &[("rules/velometry.yml", &rules)]).await.expect("prometheus");
    let up = || async { prometheus.query("up == 1").await.unwrap_or_default().len() == 3 };
    assert!(poll(Duration::from_secs(20), up).await, "{}", prometheus.log());

    traffic(&stack).await;

    // Grafana's expansion for the last hour, with the provisioned scrape interval (15 s: so
    // $__rate_interval is 1m, which the 1 s scrapes here fill at once).
    let scrape_ms = duration_ms(&provisioned(PROMETHEUS_UID, "timeInterval"));
    let vars = prometheus_vars(HOUR_MS, grafana_interval_ms(0, HOUR_MS, 1_000, scrape_ms), scrape_ms);
    let ops = dashboard("ops");
    let mut targets = Vec::new();
    for panel in panels(&ops) {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("PromQL");
            let expanded = expand(expr, &vars);
            assert!(!expanded.contains('$'), "{}: unexpanded variable in {expanded}", title(panel));
            let may_be_empty = EVENT_ONLY.iter().any(|m| expr.contains(m));
            targets.push((title(panel), target["refId"].as_str().expect("refId"), expanded, may_be_empty));
        }
    }
    let mut missing = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        missing.clear();
        for (panel, ref_id, expr, may_be_empty) in &targets {
            let result = prometheus.query(expr).await.unwrap_or_else(|e| panic!("{panel} {ref_id}: {e}"));
            if result.is_empty() && !may_be_empty {
                missing.push(format!("{panel} {ref_id}: {expr}"));
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(missing.is_empty(), "no series for:\n{}\n{}", missing.join("\n"), stack.collector.logs());
}

/// Polls `check` every 100 ms until it holds or `timeout` passes.
async fn poll<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
