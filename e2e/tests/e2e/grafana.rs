//! grafana/: the provisioned data sources and the three dashboards. Grafana cannot run here, so
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
use velometry_core::testkit::{
    workspace_binary, InfluxServer, PrometheusServer, RidersToml, Service, PATIENCE,
};

use crate::helpers::*;

mod influxql;
mod promql;
mod race;

const DB: &str = "velometry";

/// One series of an InfluxQL answer, with its `rider` tag (empty when not grouped by rider).
#[derive(Debug)]
struct Series {
    rider: String,
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Series {
    /// The non-null numbers of a column (none when the answer has no such column).
    fn numbers(&self, column: &str) -> Vec<f64> {
        let Some(i) = self.columns.iter().position(|c| c == column) else { return Vec::new() };
        self.rows.iter().filter_map(|r| r.get(i)?.as_f64()).collect()
    }

    /// Every value of a column as a number: the column must be there and none null.
    fn every_number(&self, name: &str) -> Vec<f64> {
        let i = self.columns.iter().position(|c| c == name);
        let i = i.unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns));
        self.rows
            .iter()
            .map(|r| {
                r.get(i)
                    .and_then(Value::as_f64)
                    .unwrap_or_else(|| panic!("{}: a {name} is null: {:?}", self.rider, self.rows))
            })
            .collect()
    }

    /// The single value of a one-row answer.
    fn one(&self, name: &str) -> f64 {
        assert_eq!(self.rows.len(), 1, "{}: one row expected: {:?}", self.rider, self.rows);
        self.every_number(name)[0]
    }
}

/// The series of an InfluxQL query against the test database (InfluxDB must take it).
async fn influxql(influx: &InfluxServer, q: &str) -> Vec<Series> {
    let body = influx.query(DB, q).await.unwrap_or_else(|e| panic!("InfluxDB refused {q}: {e}"));
    assert!(body.pointer("/results/0/error").is_none(), "{q}: {body}");
    body.pointer("/results/0/series")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| Series {
            rider: s["tags"]["rider"].as_str().unwrap_or_default().to_owned(),
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

/// The first number of the first row (after its time) of a query's answer; 0 when none.
async fn first_number(influx: &InfluxServer, q: &str) -> f64 {
    influxql(influx, q).await.first().and_then(|s| s.rows.first()?.get(1)?.as_f64()).unwrap_or(0.0)
}
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
    for (name, uid) in [("rider", "velometry-rider"), ("ops", "velometry-ops"), ("race", "velometry-race")] {
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

/// Polls `check` every 100 ms until it holds or [`PATIENCE`] passes.
async fn poll<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
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
