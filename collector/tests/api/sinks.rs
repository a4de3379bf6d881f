//! The sinks: the v2 API against a real server that answers it, dead letters, a full WAL,
//! and the flush on SIGTERM.

use serde_json::json;
use velometry_core::testkit::{free_port, InfluxServer, VictoriaMetrics};

use crate::helpers::{eventually, metric, ms_ago, poll, Collector, Env, ALICE_EDGE, DB};

/// Posts one heart-rate reading from Alice's bike computer, `ago_s` seconds old.
async fn post_heart_rate(
    http: &reqwest::Client,
    collector: &Collector,
    ago_s: i64,
    bpm: u32,
) -> reqwest::Response {
    http.post(format!("{}/v1/readings", collector.url))
        .header("Authorization", format!("Token {ALICE_EDGE}"))
        .json(&json!([{"metric": "heart_rate", "time": ms_ago(ago_s), "bpm": bpm}]))
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn the_v2_sink_writes_through_api_v2_write() {
    let vm = VictoriaMetrics::start().await.expect("victoria-metrics");
    let collector = Collector::start(
        &vm.url,
        &["--sink=influx-v2", "--influx-token=secret", "--influx-org=club", "--influx-bucket=rides"],
    )
    .await;
    let resp = post_heart_rate(&reqwest::Client::new(), &collector, 10, 142).await;
    assert_eq!(resp.status(), 200);
    let (found, series) = poll(
        || async { vm.export("{__name__=\"heart_rate_bpm\"}").await.unwrap_or_default() },
        |series| !series.is_empty(),
    )
    .await;
    assert!(found, "nothing reached VictoriaMetrics: {}", collector.logs());
    assert_eq!(series[0]["metric"]["rider"], json!("alice"));
    assert_eq!(series[0]["values"], json!([142]));
}

#[tokio::test]
async fn the_questdb_sink_writes_alongside_influxdb() {
    // No QuestDB server is packaged here; VictoriaMetrics answers the same ILP-over-HTTP
    // `/write` that questdb-rs speaks, so the client is exercised end to end for real.
    let vm = VictoriaMetrics::start().await.expect("victoria-metrics");
    let addr = vm.url.trim_start_matches("http://");
    let env = Env::start(&[&format!("--questdb=http::addr={addr};protocol_version=1;")]).await;
    let resp =
        env.post_json(ALICE_EDGE, &json!([{"metric": "power", "time": ms_ago(5), "watts": 250}])).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(env.wait_rows("SELECT watts FROM power", 1).await.len(), 1, "InfluxDB still gets it");
    let (found, series) = poll(
        || async { vm.export("{__name__=\"power_watts\"}").await.unwrap_or_default() },
        |series| !series.is_empty(),
    )
    .await;
    assert!(found, "nothing reached the QuestDB sink: {}", env.collector.logs());
    assert_eq!(series[0]["metric"]["rider"], json!("alice"));
    assert_eq!(series[0]["metric"]["source"], json!("json"));
    assert_eq!(series[0]["values"], json!([250]));
}

/// A dead letter now means the database changed behind the collector's back: here a field
/// written directly with another type, between two of the collector's questions.
#[tokio::test]
async fn lines_influxdb_refuses_go_to_the_dead_letter_file_and_the_rest_flows_on() {
    let env = Env::start(&["--field-types-refresh=1h"]).await;
    let t = ms_ago(60) * 1_000_000;
    let write = |body: String| {
        env.http
            .post(env.url("/write"))
            .header("Authorization", format!("Token {ALICE_EDGE}"))
            .body(body)
            .send()
    };
    // Once the collector has asked for the types (at start-up, before it serves).
    let asked = eventually(|| async {
        metric(&env.collector.metrics().await, "collector_field_type_refreshes_total") >= 1.0
    })
    .await;
    assert!(asked, "the collector never asked InfluxDB for its field types: {}", env.collector.logs());
    env.influx.write(DB, &format!("mood score=\"happy\" {t}")).await.expect("a direct write");
    let batch = format!("mood score=1i {}\nheart_rate bpm=99 {t}\n", t + 1);
    assert_eq!(write(batch).await.expect("post").status(), 204, "the collector has not seen the string yet");
    env.wait_rows("SELECT bpm FROM heart_rate", 1).await;
    let dead = env.collector.wal_dir().join("dead-letters.influx_v1.jsonl");
    assert!(eventually(|| async { dead.exists() }).await, "no dead-letter file: {}", env.collector.logs());
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0]["line"].as_str().expect("line").starts_with("mood,"), "{entries:?}");
    assert!(entries[0]["reason"].as_str().expect("reason").contains("field type conflict"), "{entries:?}");
    let metrics = env.collector.metrics().await;
    assert_eq!(metric(&metrics, "collector_dead_letter_lines_total"), 1.0, "{metrics}");
}

#[tokio::test]
async fn a_full_wal_answers_503_and_accepts_nothing_it_cannot_keep() {
    let nowhere = format!("http://127.0.0.1:{}", free_port().expect("port"));
    let collector = Collector::start(&nowhere, &["--wal-max-bytes=4KiB"]).await;
    let http = reqwest::Client::new();
    let mut accepted = 0;
    let mut full = None;
    for i in 0..200 {
        let resp = post_heart_rate(&http, &collector, i, 100).await;
        match resp.status().as_u16() {
            200 => accepted += 1,
            503 => {
                full = Some(resp);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let full = full.expect("the WAL fills up");
    assert!(accepted > 10, "4 KiB holds a few dozen readings, took {accepted}");
    assert_eq!(full.headers()["retry-after"], "5");
    let body: serde_json::Value = full.json().await.expect("json");
    assert!(body["error"].as_str().expect("error").contains("write-ahead log is full"), "{body}");
    let ready = http.get(format!("{}/readyz", collector.url)).send().await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let metrics = collector.metrics().await;
    assert!(metric(&metrics, "collector_wal_bytes") > 0.0, "{metrics}");
    assert!(
        metric(&metrics, "collector_sink_errors_total{sink=\"influx_v1\",kind=\"network\"}") >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn sigterm_flushes_what_was_accepted_then_exits() {
    let mut env = Env::start(&[]).await;
    let readings: Vec<_> = (0..500)
        .map(|i| json!({"metric": "heart_rate", "time": ms_ago(1000) + i, "bpm": 60 + i % 100}))
        .collect();
    assert_eq!(env.post_json(ALICE_EDGE, &json!(readings)).await.status(), 200);
    let status = env.collector.terminate().await;
    assert!(status.success(), "{status}: {}", env.collector.logs());
    assert_eq!(env.influx.count(DB, "heart_rate", "bpm").await.expect("count"), 500);
}

/// InfluxDB with authentication on, as production runs it. A collector whose user may not
/// create databases says clearly that its database is missing, keeps the readings it
/// acknowledges, and delivers them once the database exists; restarted then, it reports the
/// database ready instead of warning again.
#[tokio::test]
async fn with_authentication_a_missing_database_is_named_and_its_readings_wait_for_it() {
    let influx = InfluxServer::start_with_auth().await.expect("influxd");
    influx.query("", "CREATE USER \"collector\" WITH PASSWORD 'collector-password'").await.expect("user");
    let mut collector =
        Collector::start(&influx.url, &["--influx-user=collector", "--influx-password=collector-password"])
            .await;
    let warning = "Cannot create the InfluxDB database; readings stay in the WAL until it exists";
    assert!(
        eventually(|| async { collector.logs().contains(warning) }).await,
        "no warning about the missing database: {}",
        collector.logs()
    );
    let resp = post_heart_rate(&reqwest::Client::new(), &collector, 10, 142).await;
    assert_eq!(resp.status(), 200, "an InfluxDB the collector cannot write to never refuses readings");

    // An operator creates the database and gives the collector's user its rights on it.
    influx.query("", &format!("CREATE DATABASE \"{DB}\"")).await.expect("create");
    influx.query("", &format!("GRANT ALL ON \"{DB}\" TO \"collector\"")).await.expect("grant");
    let stored = eventually(|| async { influx.count(DB, "heart_rate", "bpm").await.unwrap_or(0) == 1 }).await;
    assert!(stored, "the reading never reached InfluxDB: {}", collector.logs());

    collector.restart().await;
    let ready = "InfluxDB database ready (it exists; the collector may not create databases, and need not)";
    assert!(eventually(|| async { collector.logs().contains(ready) }).await, "{}", collector.logs());
    let logs = collector.logs();
    let since_restart = logs.rsplit("--- restart ---").next().unwrap_or_default();
    assert!(!since_restart.contains(warning), "warned again after the restart: {logs}");
}
