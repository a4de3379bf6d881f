//! Each ingest protocol end to end: request in, rows read back from InfluxDB.

use std::io::Write;

use flate2::write::GzEncoder;
use serde_json::json;

use crate::helpers::{metric, ms_ago, Env, ALICE_EDGE, ALICE_PHONE, BOB_PHONE};

#[tokio::test]
async fn line_protocol_v1_lands_normalised_and_tagged_from_the_token() {
    let env = Env::start(&[]).await;
    let t = ms_ago(60) / 1000;
    let body = format!(
        "heart_rate,rider=bob bpm=142i {t}\ngps lat=45.1,lon=7.6,alt=250,speed=8.3 {t}\ncpu,host=a usage=5i,busy=t {t}\n"
    );
    let resp = env
        .http
        .post(env.url("/write?db=anything&precision=s"))
        .header("Authorization", format!("Token {ALICE_EDGE}"))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap_or_default());

    let hr = env.wait_rows("SELECT bpm, rider, device, source FROM heart_rate", 1).await;
    assert_eq!(hr[0]["bpm"].as_f64(), Some(142.0));
    assert_eq!(hr[0]["rider"], json!("alice"), "the rider comes from the token, not the payload's tag");
    assert_eq!(hr[0]["device"], json!("edge530"));
    assert_eq!(hr[0]["source"], json!("lineproto"));
    assert_eq!(hr[0]["time"], json!(t * 1_000_000_000));
    let gps = env.wait_rows("SELECT lat, lon, alt, speed FROM gps", 1).await;
    assert_eq!((gps[0]["lat"].as_f64(), gps[0]["speed"].as_f64()), (Some(45.1), Some(8.3)));
    let cpu = env.wait_rows("SELECT usage, busy, host, rider FROM cpu", 1).await;
    assert_eq!(cpu[0]["usage"], json!(5), "unknown measurements pass through unchanged");
    assert_eq!(cpu[0]["busy"], json!(true));
    assert_eq!(cpu[0]["rider"], json!("alice"));
    let types = env.influx.rows(crate::helpers::DB, "SHOW FIELD KEYS FROM heart_rate").await.expect("keys");
    assert_eq!(types[0]["fieldType"], json!("float"), "bpm=142i is stored as a float");
}

#[tokio::test]
async fn line_protocol_v2_accepts_gzip_and_basic_auth() {
    let env = Env::start(&[]).await;
    let t = ms_ago(30);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..100 {
        writeln!(gz, "power watts={} {}", 200 + i, t + i).expect("write");
    }
    let resp = env
        .http
        .post(env.url("/api/v2/write?org=o&bucket=b&precision=ms"))
        .basic_auth("alice", Some(ALICE_PHONE))
        .header("Content-Encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 204);
    let rows = env.wait_rows("SELECT watts, device FROM power", 100).await;
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[99]["watts"].as_f64(), Some(299.0));
    assert_eq!(rows[0]["device"], json!("phone"));
}

#[tokio::test]
async fn a_partial_write_keeps_the_good_lines_and_answers_like_influxdb() {
    let env = Env::start(&[]).await;
    let t = ms_ago(10) * 1_000_000;
    let body = format!("cadence rpm=90 {t}\ngps lat=95,lon=7 {t}\ncadence rpm=91 {}\n", t + 1);
    let resp = env
        .http
        .post(env.url(&format!("/write?u=alice&p={ALICE_EDGE}")))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    let answer: serde_json::Value = resp.json().await.expect("json");
    let error = answer["error"].as_str().expect("error");
    assert!(error.starts_with("partial write: unable to parse 'gps lat=95,lon=7"), "{error}");
    assert!(error.contains("lat 95 is out of range") && error.ends_with("dropped=1"), "{error}");
    assert_eq!(env.wait_rows("SELECT rpm FROM cadence", 2).await.len(), 2);
}

#[tokio::test]
async fn json_readings_are_accepted_all_together() {
    let env = Env::start(&[]).await;
    let body = json!([
        {"metric": "heart_rate", "time": chrono::Utc::now().to_rfc3339(), "bpm": 142},
        {"metric": "gps", "time": ms_ago(1), "lat": 45.1, "lon": 7.6, "alt": 250, "speed": 8.3},
        {"metric": "blood_pressure", "time": ms_ago(3600), "systolic": 120, "diastolic": 80, "pulse": 60},
    ]);
    let resp = env.post_json(BOB_PHONE, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<serde_json::Value>().await.expect("json"), json!({"accepted": 3}));
    let rows = env.wait_rows("SELECT systolic, diastolic, rider, source FROM blood_pressure", 1).await;
    assert_eq!((rows[0]["systolic"].as_f64(), rows[0]["rider"].clone()), (Some(120.0), json!("bob")));
    assert_eq!(rows[0]["source"], json!("json"));
    env.wait_rows("SELECT bpm FROM heart_rate", 1).await;
    env.wait_rows("SELECT lat FROM gps", 1).await;
    let metrics = env.collector.metrics().await;
    assert_eq!(metric(&metrics, "collector_readings_accepted_total{protocol=\"json\"}"), 3.0, "{metrics}");
}

#[tokio::test]
async fn osmand_query_form_and_json_variants() {
    let env = Env::start(&[]).await;
    let ts = ms_ago(120) / 1000;
    let get = env
        .http
        .get(env.url(&format!(
            "/v1/osmand?id={ALICE_PHONE}&lat=45.1&lon=7.6&timestamp={ts}&speed=10&bearing=90&altitude=300&accuracy=4&batt=80&heartRate=150"
        )))
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), 200);
    assert_eq!(get.text().await.expect("body"), "", "Traccar expects an empty body");

    let form = env
        .http
        .post(env.url("/v1/osmand"))
        .form(&[
            ("deviceid", ALICE_PHONE),
            ("location", "45.2,7.7"),
            ("timestamp", &(ts + 1).to_string()),
            ("speed", "36"),
            ("speed_unit", "kmh"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 200);

    let json_fix = env
        .http
        .post(env.url("/v1/osmand"))
        .json(&json!({"device_id": ALICE_PHONE, "location": {"timestamp": chrono::DateTime::from_timestamp(ts + 2, 0).expect("time").to_rfc3339(),
            "coords": {"latitude": 45.3, "longitude": 7.8, "speed": 5.0, "heading": -1, "accuracy": 3, "altitude": 310},
            "battery": {"level": 0.8}, "extras": {}}}))
        .send()
        .await
        .expect("request");
    assert_eq!(json_fix.status(), 200);

    let rows = env.wait_rows("SELECT lat, speed, heading, source FROM gps", 3).await;
    let speed = |i: usize| rows[i]["speed"].as_f64().expect("speed");
    assert!((speed(0) - 5.14444).abs() < 1e-6, "10 knots");
    assert!((speed(1) - 10.0).abs() < 1e-9, "36 km/h");
    assert!((speed(2) - 5.0).abs() < 1e-9, "JSON speed is m/s");
    assert_eq!(rows[2]["heading"], json!(null), "a heading of -1 means unknown");
    assert_eq!(rows[0]["source"], json!("osmand"));
    let hr = env.wait_rows("SELECT bpm FROM heart_rate", 1).await;
    assert_eq!(hr[0]["bpm"].as_f64(), Some(150.0));
}

#[tokio::test]
async fn owntracks_locations_land_and_other_messages_are_ignored() {
    let env = Env::start(&[]).await;
    let tst = ms_ago(5) / 1000;
    let post = |body: serde_json::Value| {
        env.http
            .post(env.url("/v1/owntracks"))
            .basic_auth("alice", Some(ALICE_PHONE))
            .header("X-Limit-D", "phone")
            .json(&body)
            .send()
    };
    let resp = post(json!({"_type":"location","lat":48.85833,"lon":2.29513,"tst":tst,"tid":"JJ","alt":35,"acc":10,"vel":18,"cog":270,"batt":80}))
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "[]");
    let other = post(json!({"_type":"transition","event":"enter","tst":tst})).await.expect("request");
    assert_eq!((other.status().as_u16(), other.text().await.expect("body")), (200, "[]".to_owned()));
    let rows = env.wait_rows("SELECT lat, speed, heading FROM gps", 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["speed"].as_f64(), rows[0]["heading"].as_f64()), (Some(5.0), Some(270.0)));
}

#[tokio::test]
async fn each_token_has_a_rate_limit_answered_with_retry_after() {
    let env = Env::start(&["--rate-limit=1", "--rate-burst=2"]).await;
    let reading = json!([{"metric": "heart_rate", "bpm": 100}]);
    // Twenty at once: the burst of two goes through, and however slowly this machine sends
    // them, nowhere near twenty seconds' worth of the rate refills in between.
    let answers = futures::future::join_all((0..20).map(|_| env.post_json(ALICE_EDGE, &reading))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((2..20).contains(&ok), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    let limited = answers.iter().find(|r| r.status() == 429).expect("a 429");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(env.post_json(BOB_PHONE, &reading).await.status(), 200, "other tokens are not starved");
}

#[tokio::test]
async fn health_and_readiness() {
    let env = Env::start(&[]).await;
    assert_eq!(env.http.get(env.url("/healthz")).send().await.expect("healthz").status(), 200);
    assert_eq!(env.http.get(env.url("/readyz")).send().await.expect("readyz").status(), 200);
    assert_eq!(env.http.get(env.url("/ping")).send().await.expect("ping").status(), 204);
}

#[tokio::test]
async fn create_database_from_influx_clients_succeeds_and_queries_are_sent_elsewhere() {
    let env = Env::start(&[]).await;
    let query = |q: &str, token: Option<&str>| {
        let mut request = env.http.post(env.url("/query")).form(&[("q", q)]);
        if let Some(t) = token {
            request = request.header("Authorization", format!("Token {t}"));
        }
        request.send()
    };
    // What Telegraf's InfluxDB output sends at start.
    let created = query("CREATE DATABASE \"telegraf\"", Some(ALICE_EDGE)).await.expect("answers");
    assert_eq!(created.status(), 200);
    let body: serde_json::Value = created.json().await.expect("JSON");
    assert_eq!(body, serde_json::json!({"results": [{"statement_id": 0}]}));
    let refused = query("SELECT * FROM gps", Some(ALICE_EDGE)).await.expect("answers");
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("query service")), "{body}");
    assert_eq!(query("CREATE DATABASE x", None).await.expect("answers").status(), 401);
}
