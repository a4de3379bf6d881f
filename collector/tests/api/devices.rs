//! The device protocols as real phones use them: fixes that can never be stored do not block
//! the phone, OwnTracks queues arrive as arrays, and OwnTracks encrypts.

use serde_json::{json, Value};

use crate::helpers::{eventually, metric, riders_toml, Env, ALICE_PHONE, BOB_PHONE, DB};

const SECOND: i64 = 1_000_000_000;

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The entries of the devices' dead-letter file, once there are `n`.
async fn dead_letters(env: &Env, n: usize) -> Vec<Value> {
    let path = env.collector.wal_dir().join("dead-letters.devices.jsonl");
    let read = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect::<Vec<Value>>()
    };
    let found = eventually(|| async { read().len() >= n }).await;
    assert!(found, "expected {n} dead letters in {}, have {:?}", path.display(), read());
    read()
}

async fn osmand(env: &Env, query: &str) -> u16 {
    let url = env.url(&format!("/v1/osmand?id={ALICE_PHONE}&{query}"));
    env.http.get(url).send().await.expect("request").status().as_u16()
}

async fn owntracks(env: &Env, token: &str, body: &Value) -> (u16, String) {
    let resp = env
        .http
        .post(env.url("/v1/owntracks"))
        .basic_auth("alice", Some(token))
        .json(body)
        .send()
        .await
        .expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn a_fix_that_can_never_be_stored_is_answered_200_and_dead_lettered_and_the_next_fixes_flow() {
    let env = Env::start(&[]).await;
    let t = now_s() - 60;
    // What Traccar Client would resend forever if it were refused.
    for (query, why) in [
        ("lat=45.1&lon=7.6&timestamp=0".to_owned(), "1970"),
        ("lat=45.1&lon=7.6&timestamp=631151999".to_owned(), "the last second of 1989"),
        (format!("lat=95&lon=7.6&timestamp={t}"), "lat out of range"),
        (format!("lat=45.1&lon=NaN&timestamp={t}"), "NaN"),
        (format!("lat=45.2&lon=7.7&timestamp={}&heartRate=300", t + 1), "heart rate out of range"),
    ] {
        assert_eq!(osmand(&env, &query).await, 200, "{why}");
    }
    let traccar = json!({"device_id": ALICE_PHONE, "location": {"timestamp": "1980-01-01T00:00:00Z",
        "coords": {"latitude": 45.0, "longitude": 7.0}}});
    let resp = env.http.post(env.url("/v1/osmand")).json(&traccar).send().await.expect("request");
    assert_eq!(resp.status(), 200, "Traccar JSON from 1980");
    assert_eq!(osmand(&env, &format!("lat=45.3&lon=7.8&timestamp={}", t + 2)).await, 200);
    // Not an OsmAnd fix at all: the person setting up the app is told.
    assert_eq!(osmand(&env, "lat=abc&lon=7").await, 400);

    // The position of the fix with a wild heart rate, and the next fix, are stored.
    let rows = env.wait_rows("SELECT lat FROM gps", 2).await;
    let lats: Vec<f64> = rows.iter().filter_map(|r| r["lat"].as_f64()).collect();
    assert_eq!(lats, [45.2, 45.3]);
    let letters = dead_letters(&env, 6).await;
    let reasons: Vec<&str> = letters.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert_eq!(reasons, ["too_old", "too_old", "out_of_range", "not_finite", "out_of_range", "too_old"]);
    assert_eq!(letters[4]["error"], json!("heart_rate: bpm 300 is out of range [20, 250] beats/min"));
    assert_eq!(letters[0]["message"]["timestamp"], json!("0"));
    assert_eq!((letters[0]["rider"].as_str(), letters[0]["device"].as_str()), (Some("alice"), Some("phone")));
    let text = serde_json::to_string(&letters).expect("JSON");
    assert!(!text.contains(ALICE_PHONE), "the token is never in a dead letter");
    let metrics = env.collector.metrics().await;
    let count = |reason: &str| {
        metric(
            &metrics,
            &format!("collector_device_dead_letters_total{{protocol=\"osmand\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!((count("too_old"), count("out_of_range"), count("not_finite")), (3.0, 2.0, 1.0), "{metrics}");
    assert_eq!(env.influx.count(DB, "heart_rate", "bpm").await.expect("count"), 0);
}

#[tokio::test]
async fn a_fix_stamped_ahead_by_a_wrong_phone_clock_is_kept_at_the_collectors_time() {
    let env = Env::start(&[]).await;
    let ahead = now_s() + 600;
    let before = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    assert_eq!(osmand(&env, &format!("lat=45.1&lon=7.6&timestamp={ahead}&heartRate=140")).await, 200);
    let tst = now_s() + 3600;
    let (status, body) =
        owntracks(&env, ALICE_PHONE, &json!({"_type": "location", "lat": 46.0, "lon": 8.0, "tst": tst}))
            .await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    let after = chrono::Utc::now().timestamp_nanos_opt().expect("now");

    let gps = env.wait_rows("SELECT lat, source FROM gps", 2).await;
    for row in &gps {
        let time = row["time"].as_i64().expect("time");
        assert!((before..=after).contains(&time), "stored at the collector's time: {row:?}");
    }
    let hr = env.wait_rows("SELECT bpm FROM heart_rate", 1).await;
    assert_eq!(hr[0]["time"], gps[0]["time"], "the fix's readings keep one time");
    let notes =
        env.wait_rows("SELECT device_time_ns, offset_s, source, rider FROM velometry_retimed", 2).await;
    assert_eq!(notes[0]["device_time_ns"].as_i64(), Some(ahead * SECOND));
    assert_eq!(notes[1]["device_time_ns"].as_i64(), Some(tst * SECOND));
    assert!(notes[0]["offset_s"].as_f64().is_some_and(|s| s > 500.0 && s <= 600.0), "{notes:?}");
    assert_eq!(
        (notes[0]["source"].as_str(), notes[1]["source"].as_str()),
        (Some("osmand"), Some("owntracks"))
    );
    let metrics = env.collector.metrics().await;
    assert_eq!(
        metric(&metrics, "collector_device_fixes_retimed_total{protocol=\"osmand\"}"),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "collector_device_fixes_retimed_total{protocol=\"owntracks\"}"), 1.0);
}

#[tokio::test]
async fn an_owntracks_array_is_each_of_its_messages() {
    let env = Env::start(&[]).await;
    let t = now_s() - 600;
    let queue = json!([
        {"_type": "location", "lat": 48.1, "lon": 2.1, "tst": t, "vel": 18},
        {"_type": "transition", "event": "enter", "tst": t},
        {"_type": "location", "lat": 48.2, "lon": 2.2, "tst": t + 10},
        {"_type": "location", "lat": 48.3, "lon": 2.3, "tst": 0},
        {"_type": "location", "lon": 2.4, "tst": t + 20},
        {"_type": "location", "lat": 48.5, "lon": 2.5, "tst": t + 30},
    ]);
    let (status, body) = owntracks(&env, ALICE_PHONE, &queue).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    let rows = env.wait_rows("SELECT lat, speed FROM gps", 3).await;
    let got: Vec<(i64, f64)> =
        rows.iter().map(|r| (r["time"].as_i64().expect("t"), r["lat"].as_f64().expect("lat"))).collect();
    assert_eq!(got, [(t * SECOND, 48.1), ((t + 10) * SECOND, 48.2), ((t + 30) * SECOND, 48.5)]);
    assert_eq!(rows[0]["speed"].as_f64(), Some(5.0));
    let letters = dead_letters(&env, 2).await;
    let reasons: Vec<&str> = letters.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert_eq!(reasons, ["too_old", "invalid"]);
    assert_eq!(letters[1]["message"]["lon"], json!(2.4));
    // Still 400 for a body that is not JSON.
    let resp = env
        .http
        .post(env.url("/v1/owntracks"))
        .basic_auth("alice", Some(ALICE_PHONE))
        .body("[{")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
}

/// OwnTracks messages encrypted as the app does: libsodium's `crypto_secretbox` under the
/// secret zero-padded to 32 bytes, `data` = base64(nonce ‖ box). PyNaCl is libsodium;
/// deploy/local/test.sh installs it.
async fn encrypt(secret: &str, messages: &Value) -> Vec<Value> {
    let script = r#"
import base64, json, os, nacl.secret
key = os.environ["SECRET"].encode("utf-8")[:32].ljust(32, b"\0")
box = nacl.secret.SecretBox(key)
print(json.dumps([{"_type": "encrypted", "data": base64.b64encode(bytes(box.encrypt(json.dumps(m).encode()))).decode()}
                  for m in json.loads(os.environ["MESSAGES"])]))
"#;
    let output = tokio::process::Command::new("python3")
        .args(["-c", script])
        .env("SECRET", secret)
        .env("MESSAGES", messages.to_string())
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python3 with PyNaCl failed (deploy/local/test.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[tokio::test]
async fn encrypted_owntracks_messages_are_opened_with_the_devices_key_and_the_rest_is_counted() {
    let secret = "correct horse battery staple — a long passphrase";
    let riders = riders_toml().replacen(
        "  id = \"phone\"\n",
        &format!("  id = \"phone\"\n  owntracks_key = {}\n", json!(secret)),
        1,
    );
    assert!(riders.contains("owntracks_key"), "{riders}");
    let env = Env::start_with(&riders, None, &[]).await;
    let t = now_s() - 300;
    let sealed = encrypt(
        secret,
        &json!([
            {"_type": "location", "lat": 45.1, "lon": 7.1, "tst": t},
            {"_type": "location", "lat": 45.2, "lon": 7.2, "tst": t + 1},
            {"_type": "location", "lat": 45.3, "lon": 7.3, "tst": t + 2},
        ]),
    )
    .await;
    // One message alone, then the app's queue of two.
    assert_eq!(owntracks(&env, ALICE_PHONE, &sealed[0]).await.0, 200);
    assert_eq!(owntracks(&env, ALICE_PHONE, &json!(sealed[1..])).await.0, 200);
    let rows = env.wait_rows("SELECT lat FROM gps WHERE rider = 'alice'", 3).await;
    let lats: Vec<f64> = rows.iter().filter_map(|r| r["lat"].as_f64()).collect();
    assert_eq!(lats, [45.1, 45.2, 45.3]);

    // Bob's phone encrypts, and the riders file has no key for it; Alice's app has another
    // secret now. Both are answered 200, so the phones go on, and nothing is silent.
    assert_eq!(owntracks(&env, BOB_PHONE, &sealed[0]).await.0, 200);
    let other =
        encrypt("another secret", &json!([{"_type": "location", "lat": 1.0, "lon": 2.0, "tst": t}])).await;
    assert_eq!(owntracks(&env, ALICE_PHONE, &other[0]).await.0, 200);
    let letters = dead_letters(&env, 2).await;
    let reasons: Vec<(&str, &str)> =
        letters.iter().filter_map(|l| Some((l["rider"].as_str()?, l["reason"].as_str()?))).collect();
    assert_eq!(reasons, [("bob", "no_key"), ("alice", "wrong_key")]);
    assert_eq!(letters[0]["message"], sealed[0], "kept as it came, to be read once the key is known");
    let metrics = env.collector.metrics().await;
    for reason in ["no_key", "wrong_key"] {
        let name =
            format!("collector_device_dead_letters_total{{protocol=\"owntracks\",reason=\"{reason}\"}}");
        assert_eq!(metric(&metrics, &name), 1.0, "{metrics}");
    }
    let logs = env.collector.logs();
    assert!(logs.contains("owntracks_key"), "the log says why nothing arrives: {logs}");
    assert!(!logs.contains("horse"), "the key is never logged");
    assert_eq!(env.influx.count(DB, "gps", "lat").await.expect("count"), 3);
}
