//! Sending the same requests to InfluxDB directly, one line per request so that each line
//! gets InfluxDB's own verdict, and through the collector, as the client sent them; then
//! comparing what each database holds, point by point.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use velometry_core::testkit::InfluxServer;

use super::generate::Request;
use crate::helpers::{metric, poll, Collector, ALICE_EDGE};

/// InfluxDB's own database, beside the collector's.
pub const DIRECT: &str = "direct";

/// The tags the collector adds to every line.
const ORIGIN: [&str; 3] = ["device", "rider", "source"];

/// One InfluxDB and a collector writing to it, each into a database of its own.
pub struct Harness {
    pub influx: InfluxServer,
    pub collector: Collector,
    http: reqwest::Client,
}

/// InfluxDB's verdict on one line sent alone.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub stored: bool,
    /// Its reason for refusing the line.
    pub reason: Option<String>,
}

/// The collector's answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The JSON body's `error`.
    pub error: Option<String>,
    /// `X-Influxdb-Error`.
    pub header: Option<String>,
}

/// One request with both answers.
#[derive(Debug)]
pub struct Outcome {
    pub request: Request,
    pub verdicts: Vec<Verdict>,
    pub answer: Answer,
}

/// A stored point: its measurement and its non-null columns (tags and fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub values: BTreeMap<String, serde_json::Value>,
}

impl Harness {
    /// InfluxDB and a collector that learns no field types from the database during the
    /// run: every type it knows comes from the lines it was sent, as InfluxDB's do.
    pub async fn start() -> Harness {
        let influx = InfluxServer::start().await.expect("influxd");
        influx.query("", &format!("CREATE DATABASE \"{DIRECT}\"")).await.expect("create");
        let collector = Collector::start(&influx.url, &["--field-types-refresh=1h"]).await;
        Harness { influx, collector, http: reqwest::Client::new() }
    }

    /// Sends `request` to both.
    pub async fn send(&self, request: Request) -> Outcome {
        let mut verdicts = Vec::with_capacity(request.lines.len());
        for line in &request.lines {
            verdicts.push(self.direct(request.precision, &line.direct).await);
        }
        let mut body = Vec::new();
        for line in &request.lines {
            body.extend_from_slice(&line.sent);
            body.push(b'\n');
        }
        let answer = self.through_collector(request.precision, body).await;
        Outcome { request, verdicts, answer }
    }

    async fn direct(&self, precision: &str, line: &[u8]) -> Verdict {
        let url = format!("{}/write?db={DIRECT}&precision={precision}", self.influx.url);
        let response = self.http.post(url).body(line.to_vec()).send().await.expect("InfluxDB answers");
        if response.status().is_success() {
            return Verdict { stored: true, reason: None };
        }
        let body: serde_json::Value = response.json().await.expect("InfluxDB's JSON");
        let error = body["error"].as_str().unwrap_or_default();
        Verdict { stored: false, reason: Some(influx_reason(error)) }
    }

    /// Sends a body to the collector's `/write`.
    pub async fn through_collector(&self, precision: &str, body: Vec<u8>) -> Answer {
        let response = self
            .http
            .post(format!("{}/write?db=ignored&precision={precision}", self.collector.url))
            .header("Authorization", format!("Token {ALICE_EDGE}"))
            .body(body)
            .send()
            .await
            .expect("the collector answers");
        let status = response.status().as_u16();
        let header = response
            .headers()
            .get("x-influxdb-error")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let text = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned));
        Answer { status, error, header }
    }

    /// Waits until the collector has stored (or dead-lettered) all it acknowledged.
    pub async fn drained(&self) {
        let (done, unstored) = poll(
            || async {
                let metrics = self.collector.metrics().await;
                metric(&metrics, "collector_wal_bytes ")
            },
            |unstored| *unstored == 0.0,
        )
        .await;
        assert!(
            done,
            "the collector still holds {unstored} bytes it has not stored after 120 s: {}",
            self.collector.logs()
        );
    }

    /// Every point of `db` that `SELECT *` reaches, by time (the collector's tags left out),
    /// asked measurement by measurement: over several at once, InfluxQL gives a field one
    /// type for all of them and leaves out the values of the others.
    pub async fn points(&self, db: &str) -> HashMap<i64, Point> {
        let names = self.influx.query(db, "SHOW MEASUREMENTS").await.expect("show measurements");
        let names: Vec<String> = names
            .pointer("/results/0/series/0/values")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|row| row[0].as_str().map(str::to_owned))
            .collect();
        let mut points = HashMap::new();
        for name in names {
            let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
            let Ok(body) = self.influx.query(db, &format!("SELECT * FROM \"{quoted}\"")).await else {
                continue;
            };
            for series in body.pointer("/results/0/series").and_then(|s| s.as_array()).into_iter().flatten() {
                let measurement = series["name"].as_str().unwrap_or_default().to_owned();
                let columns: Vec<&str> =
                    series["columns"].as_array().into_iter().flatten().filter_map(|c| c.as_str()).collect();
                for row in series["values"].as_array().into_iter().flatten().filter_map(|r| r.as_array()) {
                    let time = row.first().and_then(serde_json::Value::as_i64).expect("a time");
                    let values = columns
                        .iter()
                        .zip(row)
                        .skip(1)
                        .filter(|(c, v)| !v.is_null() && !ORIGIN.contains(c))
                        .map(|(c, v)| ((*c).to_owned(), v.clone()))
                        .collect();
                    points.insert(time, Point { measurement: measurement.clone(), values });
                }
            }
        }
        points
    }

    /// `(measurement, field, type)` of every field `db` holds.
    pub async fn field_keys(&self, db: &str) -> BTreeSet<(String, String, String)> {
        let body = self.influx.query(db, "SHOW FIELD KEYS").await.expect("show field keys");
        let mut keys = BTreeSet::new();
        for series in body.pointer("/results/0/series").and_then(|s| s.as_array()).into_iter().flatten() {
            let measurement = series["name"].as_str().unwrap_or_default();
            for row in series["values"].as_array().into_iter().flatten() {
                let field = row[0].as_str().unwrap_or_default();
                let t = row[1].as_str().unwrap_or_default();
                keys.insert((measurement.to_owned(), field.to_owned(), t.to_owned()));
            }
        }
        keys
    }
}

/// InfluxDB's reason, without `partial write:`, `dropped=` and `unable to parse '<line>':`.
pub fn influx_reason(error: &str) -> String {
    let e = error.strip_prefix("partial write: ").unwrap_or(error);
    let e = match e.rfind(" dropped=") {
        Some(i) if e[i + 9..].bytes().all(|b| b.is_ascii_digit()) => &e[..i],
        _ => e,
    };
    match e.strip_prefix("unable to parse '") {
        Some(rest) => rest.rsplit_once("': ").map_or(rest, |(_, reason)| reason).to_owned(),
        None => e.to_owned(),
    }
}

/// The collector's first refusal in an answer: its line number, its reason, and how many
/// lines were refused in all.
pub fn first_refusal(error: &str, lines: usize) -> Option<(usize, String, usize)> {
    let (message, dropped) = match error.strip_prefix("partial write: ") {
        Some(rest) => {
            let (message, n) = rest.rsplit_once(" dropped=")?;
            (message, n.parse().ok()?)
        }
        None => (error, lines),
    };
    let (_, tail) = message.strip_prefix("unable to parse '")?.rsplit_once("' (line ")?;
    let (number, reason) = tail.split_once("): ")?;
    let others = format!(" (and {} other errors)", dropped.saturating_sub(1));
    let reason = reason.strip_suffix(others.as_str()).unwrap_or(reason);
    Some((number.parse().ok()?, reason.to_owned(), dropped))
}

/// What the comparison found.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: usize,
    pub lines: usize,
    /// Stored by both, identically.
    pub stored: usize,
    /// Refused by both.
    pub refused: usize,
    /// Stored by InfluxDB, refused by the collector for a documented reason.
    pub stricter: usize,
    /// Stored by InfluxDB where `SELECT *` cannot reach (names it reads two ways).
    pub unreachable: usize,
    /// Lines the collector acknowledged.
    pub acknowledged: usize,
    /// Requests answered 400.
    pub refusals: usize,
    /// InfluxDB's reasons for the lines both refused, by kind.
    pub reasons: BTreeMap<String, usize>,
    pub failures: Vec<String>,
}

impl Report {
    fn fail(&mut self, mut failure: String) {
        if failure.len() > 600 {
            let cut = (0..=600).rev().find(|i| failure.is_char_boundary(*i)).unwrap_or(0);
            failure.truncate(cut);
            failure.push('…');
        }
        self.failures.push(failure);
    }
}

/// Compares what each database stored of each line, and each answer of the collector.
pub fn compare(
    outcomes: &[Outcome],
    direct: &HashMap<i64, Point>,
    collector: &HashMap<i64, Point>,
) -> Report {
    let mut report = Report::default();
    for outcome in outcomes {
        report.requests += 1;
        compare_request(outcome, direct, collector, &mut report);
    }
    report
}

fn compare_request(
    outcome: &Outcome,
    direct: &HashMap<i64, Point>,
    collector: &HashMap<i64, Point>,
    report: &mut Report,
) {
    let Outcome { request, verdicts, answer } = outcome;
    let show = |bytes: &[u8]| format!("{:?}", String::from_utf8_lossy(bytes));
    let mut taken = Vec::with_capacity(request.lines.len());
    let mut unreachable = false;
    for (line, verdict) in request.lines.iter().zip(verdicts) {
        report.lines += 1;
        let (d, c) = (direct.get(&line.time), collector.get(&line.time));
        taken.push(c.is_some());
        match (verdict.stored, d, c) {
            (true, None, _) => {
                report.unreachable += 1;
                unreachable = true;
            }
            (true, Some(d), Some(c)) if d == c => report.stored += 1,
            (true, Some(d), Some(c)) => report.fail(format!(
                "{} stored differently: InfluxDB {d:?}, the collector {c:?}",
                show(&line.sent)
            )),
            (true, Some(_), None) if line.stricter.is_some() => report.stricter += 1,
            (true, Some(d), None) => report
                .fail(format!("{} stored by InfluxDB ({d:?}), refused by the collector", show(&line.sent))),
            (false, _, Some(c)) => report.fail(format!(
                "{} refused by InfluxDB ({:?}), stored by the collector: {c:?}",
                show(&line.sent),
                verdict.reason
            )),
            (false, _, None) => {
                report.refused += 1;
                let reason = verdict.reason.as_deref().unwrap_or_default();
                let kind = reason.split([':', '(']).next().unwrap_or(reason).trim().to_owned();
                *report.reasons.entry(kind).or_default() += 1;
            }
        }
    }
    let stored = taken.iter().filter(|t| **t).count();
    let all = request.lines.len();
    let context = || format!("request {:?} ({} lines): {answer:?}", request.precision, all);
    if answer.status == 204 {
        report.acknowledged += all;
        if stored != all && !unreachable {
            report.fail(format!("204, but only {stored} of {all} lines stored: {}", context()));
        }
        return;
    }
    report.refusals += 1;
    let error = answer.error.clone().unwrap_or_default();
    let in_header: String =
        error.chars().map(|c| if c.is_ascii_control() && c != '\t' { ' ' } else { c }).collect();
    if answer.status != 400 || answer.header.as_deref() != Some(in_header.as_str()) {
        report.fail(format!("not InfluxDB's shape (400, the error in X-Influxdb-Error): {}", context()));
    }
    let Some((number, reason, dropped)) = first_refusal(&error, all) else {
        report.fail(format!("no `unable to parse '…' (line N): reason` in {}", context()));
        return;
    };
    report.acknowledged += all - dropped;
    if !unreachable && (stored == 0) == error.starts_with("partial write: ") {
        report.fail(format!("`partial write:` only when lines were kept: {}", context()));
    }
    if !unreachable && dropped != all - stored {
        report.fail(format!(
            "dropped={dropped}, but {} of {all} lines were not stored: {}",
            all - stored,
            context()
        ));
    }
    let Some((line, verdict)) = number.checked_sub(1).and_then(|i| request.lines.get(i).zip(verdicts.get(i)))
    else {
        report.fail(format!("line {number} is not in the request: {}", context()));
        return;
    };
    if !unreachable && taken[..number - 1].iter().any(|t| !t) {
        report.fail(format!("line {number} is not the first refused: {}", context()));
    }
    let agrees = match (&verdict.reason, line.stricter) {
        (_, Some(stricter)) if reason.contains(stricter) => true,
        (Some(influx), _) => reason.contains(influx.as_str()),
        (None, _) => false,
    };
    if !agrees {
        report.fail(format!(
            "line {number} {}: the collector says {reason:?}, InfluxDB {:?}",
            show(&line.sent),
            verdict.reason
        ));
    }
}

/// Fields only InfluxDB's database holds must have no value there (InfluxDB creates the
/// first type of a field a refused line holds twice with two types, and stores nothing),
/// or only from lines the collector refuses for a documented reason.
pub fn compare_field_keys(
    direct_keys: &BTreeSet<(String, String, String)>,
    collector_keys: &BTreeSet<(String, String, String)>,
    direct: &HashMap<i64, Point>,
    outcomes: &[Outcome],
    report: &mut Report,
) {
    let stricter: std::collections::HashSet<i64> = outcomes
        .iter()
        .flat_map(|o| o.request.lines.iter())
        .filter(|l| l.stricter.is_some())
        .map(|l| l.time)
        .collect();
    for key in collector_keys.difference(direct_keys) {
        report.fail(format!("the collector's database has field {key:?}, InfluxDB's does not"));
    }
    for (measurement, field, t) in direct_keys.difference(collector_keys) {
        let valued = direct.iter().any(|(time, p)| {
            p.measurement == *measurement && p.values.contains_key(field) && !stricter.contains(time)
        });
        if valued {
            report.fail(format!("InfluxDB's database has field ({measurement:?}, {field:?}, {t}) with values; the collector's does not"));
        }
    }
}
