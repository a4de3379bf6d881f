//! Line protocol against the real InfluxDB (1.6.7 here): the same lines sent to InfluxDB
//! directly and through the collector must be stored identically or refused by both, for
//! InfluxDB's reasons; what the collector acknowledges must all be stored, with no dead
//! letter; and the field types the collector checks against come from the database too,
//! and outlive restarts.

mod cases;
mod compare;
mod generate;

use compare::{compare, compare_field_keys, Harness, DIRECT};
use generate::Generator;
use velometry_core::testkit::InfluxServer;

use crate::helpers::{eventually, metric, poll, Collector, ALICE_EDGE, DB};

/// Generated requests of 1 to 39 lines each.
const GENERATED_REQUESTS: usize = 150;

/// A whole second from which every line of the run gets a time of its own, a second apart:
/// in the past, and in one InfluxDB shard (a week from Monday), where InfluxDB fixes field
/// types.
fn base_time(lines: i64) -> i64 {
    let now = chrono::Utc::now().timestamp();
    let week = 7 * 86_400;
    // 1970-01-05 was a Monday.
    let shard_start = (now - 4 * 86_400).div_euclid(week) * week + 4 * 86_400;
    let base =
        if now - shard_start > lines + 3_600 { now - lines - 600 } else { shard_start - lines - 3_600 };
    base * 1_000_000_000
}

#[tokio::test]
async fn the_collector_stores_what_influxdb_stores_and_refuses_what_it_refuses() {
    let harness = Harness::start().await;
    let mut g = Generator::new(14, base_time(10_000));
    let mut requests = cases::cases(&mut g);
    requests.extend((0..GENERATED_REQUESTS).map(|_| g.request()));
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        outcomes.push(harness.send(request).await);
    }
    harness.drained().await;
    let direct = harness.points(DIRECT).await;
    let collector = harness.points(DB).await;
    let mut report = compare(&outcomes, &direct, &collector);
    compare_field_keys(
        &harness.field_keys(DIRECT).await,
        &harness.field_keys(DB).await,
        &direct,
        &outcomes,
        &mut report,
    );
    let metrics = harness.collector.metrics().await;
    let dead_letters = metric(&metrics, "collector_dead_letter_lines_total");
    println!(
        "{} requests ({} answered 400), {} lines: {} stored identically by both, {} refused by both, \
         {} refused by the collector only (documented), {} out of SELECT's reach; {} acknowledged, \
         {} dead letters",
        report.requests,
        report.refusals,
        report.lines,
        report.stored,
        report.refused,
        report.stricter,
        report.unreachable,
        report.acknowledged,
        dead_letters as u64
    );
    println!("InfluxDB's reasons for the lines both refused: {:?}", report.reasons);
    let dead = harness.collector.wal_dir().join("dead-letters.influx_v1.jsonl");
    for letter in std::fs::read_to_string(&dead).unwrap_or_default().lines().take(20) {
        report.failures.push(format!("dead letter: {letter}"));
    }
    let shown: Vec<&String> = report.failures.iter().take(40).collect();
    assert!(report.failures.is_empty(), "{} differences, the first:\n{shown:#?}", report.failures.len());
    assert!(
        dead_letters == 0.0 && !dead.exists(),
        "dead letters: {}",
        std::fs::read_to_string(&dead).unwrap_or_default()
    );
    assert!(report.stored > 500 && report.refused > 500, "the cases cover too little: {report:?}");
    assert_eq!(report.acknowledged, report.stored + report.unreachable, "every acknowledged line is stored");
}

#[tokio::test]
async fn a_line_without_a_timestamp_gets_the_clock_cut_to_the_precision_as_in_influxdb() {
    let harness = Harness::start().await;
    for (i, precision) in ["s", "m", "h", "ms"].into_iter().enumerate() {
        let line = format!("clock{i} f=1");
        let url = format!("{}/write?db={DIRECT}&precision={precision}", harness.influx.url);
        let direct = reqwest::Client::new().post(url).body(line.clone()).send().await.expect("InfluxDB");
        assert_eq!(direct.status(), 204);
        let answer = harness.through_collector(precision, line.into_bytes()).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        harness.drained().await;
        for db in [DIRECT, DB] {
            let rows = harness.influx.rows(db, &format!("SELECT f FROM clock{i}")).await.expect("rows");
            let time =
                rows.first().and_then(|r| r["time"].as_i64()).unwrap_or_else(|| panic!("clock{i} in {db}"));
            let unit: i64 = match precision {
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => 1_000_000,
            };
            assert_eq!(time % unit, 0, "{db}: {time} under precision={precision}");
        }
    }
}

#[tokio::test]
async fn every_refusal_of_a_write_has_influxdb_s_shape() {
    let harness = Harness::start().await;
    let client = reqwest::Client::new();
    let url = |query: &str| format!("{}/write?{query}", harness.collector.url);
    let post = |query: &str, body: Vec<u8>, gzip: bool| {
        let mut request =
            client.post(url(query)).header("Authorization", format!("Token {ALICE_EDGE}")).body(body);
        if gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        request.send()
    };
    for (what, response) in [
        ("an unknown precision", post("precision=fortnight", b"m f=1".to_vec(), false).await),
        ("an unknown source", post("source=elsewhere", b"m f=1".to_vec(), false).await),
        ("a body that is not gzip", post("", b"m f=1".to_vec(), true).await),
        ("a body that is not UTF-8", post("", b"m s=\"\xff\"".to_vec(), false).await),
        ("a partial write", post("", b"m f=1\nm f=x".to_vec(), false).await),
    ] {
        let response = response.expect("the collector answers");
        assert_eq!(response.status(), 400, "{what}");
        let header = response
            .headers()
            .get("x-influxdb-error")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body: serde_json::Value = response.json().await.expect("JSON");
        let error = body["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.starts_with("unable to parse") || error.starts_with("partial write: unable to parse"),
            "{what}: {error}"
        );
        assert_eq!(header.as_deref(), Some(error.as_str()), "{what}: the same error in X-Influxdb-Error");
    }
}

/// Starts a collector on `influx` that asks for field types every second.
async fn collector_asking_often(influx: &InfluxServer) -> Collector {
    Collector::start(&influx.url, &["--field-types-refresh=1s"]).await
}

/// Waits for `n` more answers about field types than `seen`.
async fn refreshed(collector: &Collector, seen: f64, n: f64) -> f64 {
    let (done, count) = poll(
        || async {
            metric(&collector.metrics().await, "collector_field_type_refreshes_total{result=\"ok\"}")
        },
        |count| *count >= seen + n,
    )
    .await;
    assert!(
        done,
        "InfluxDB was asked for its field types {count} times, not {}: {}",
        seen + n,
        collector.logs()
    );
    count
}

async fn write(collector: &Collector, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/write", collector.url))
        .header("Authorization", format!("Token {ALICE_EDGE}"))
        .body(body.to_owned())
        .send()
        .await
        .expect("the collector answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn field_types_are_learned_from_the_database_and_forgotten_with_it() {
    let influx = InfluxServer::start().await.expect("influxd");
    // Written behind the collector's back, before it starts and while it runs.
    influx.write(DB, "before f=\"text\" 1700000000000000000").await.expect("direct write");
    let collector = collector_asking_often(&influx).await;
    let (status, body) = write(&collector, "before f=1").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("field type conflict: input field \\\"f\\\" on measurement \\\"before\\\" is type float, already exists as type string"), "{body}");
    let seen = refreshed(&collector, 0.0, 1.0).await;
    influx.write(DB, "during g=1i 1700000000000000000").await.expect("direct write");
    refreshed(&collector, seen, 2.0).await;
    let (status, body) = write(&collector, "during g=1.5").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is type float, already exists as type integer"), "{body}");

    // The database dropped: once the collector knows, a new type is a new field.
    influx.query("", &format!("DROP DATABASE \"{DB}\"")).await.expect("drop");
    let seen = metric(&collector.metrics().await, "collector_field_type_refreshes_total{result=\"ok\"}");
    refreshed(&collector, seen, 2.0).await;
    let (status, body) = write(&collector, "during g=1.5").await;
    assert_eq!(status, 204, "{body}");
    let stored = eventually(|| async { influx.count(DB, "during", "g").await.unwrap_or(0) == 1 }).await;
    assert!(stored, "the line never reached the recreated database: {}", collector.logs());
    assert_eq!(metric(&collector.metrics().await, "collector_dead_letter_lines_total"), 0.0);
}

#[tokio::test]
async fn field_types_of_lines_still_in_the_log_outlive_a_restart() {
    let mut influx = InfluxServer::start().await.expect("influxd");
    let mut collector = Collector::start(&influx.url, &[]).await;
    influx.kill().await;
    let (status, body) = write(&collector, "kept f=1i").await;
    assert_eq!(status, 204, "InfluxDB down: acknowledged from the log: {body}");
    collector.restart().await;
    let (status, body) = write(&collector, "kept f=2.5").await;
    assert_eq!(status, 400, "the type of the line waiting in the log holds: {body}");
    influx.restart().await.expect("influxd back");
    let stored = eventually(|| async { influx.count(DB, "kept", "f").await.unwrap_or(0) == 1 }).await;
    assert!(stored, "the acknowledged line never reached InfluxDB: {}", collector.logs());
    assert_eq!(
        metric(&collector.metrics().await, "collector_dead_letter_lines_total"),
        0.0,
        "{}",
        collector.logs()
    );
}
