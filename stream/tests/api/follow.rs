//! Following riders: from the collector to a browser, replicas, snapshots, privacy, and
//! the protocol's errors.

use std::time::{Duration, Instant};

use serde_json::json;
use velometry_core::testkit::{InfluxServer, NatsServer, PATIENCE};

use crate::helpers::{collector, hub, nats_client, publish, riders_file, Client, ALICE_PHONE, COACH};

#[tokio::test]
async fn a_reading_sent_to_the_collector_reaches_a_websocket_follower() {
    let nats = NatsServer::start().await.expect("nats");
    let influx = InfluxServer::start().await.expect("influxd");
    let riders = riders_file();
    let wal = tempfile::tempdir().expect("tempdir");
    let collector = collector(&nats, &riders, &wal, &influx.url).await;
    let hub = hub(&nats, &riders, &[]).await;
    let mut client = Client::connect(&hub, "").await;
    client.subscribe(&["alice"]).await;

    let http = reqwest::Client::new();
    let mut reading = None;
    // The collector connects to NATS in the background: send until a fix comes through.
    let deadline = Instant::now() + PATIENCE;
    for i in 0.. {
        if Instant::now() > deadline {
            break;
        }
        let sent = http
            .post(format!("{}/v1/readings", collector.url))
            .header("Authorization", format!("Token {ALICE_PHONE}"))
            .json(&json!([{"metric": "gps", "lat": 45.0 + f64::from(i) / 1000.0, "lon": 7.6, "speed": 8.3},
                          {"metric": "heart_rate", "bpm": 131}]))
            .send()
            .await
            .expect("post");
        assert_eq!(sent.status(), 200);
        if let Some(frame) = client.next(Duration::from_millis(300)).await {
            if frame["type"] == "reading" {
                reading = Some(frame);
                break;
            }
        }
    }
    let reading = reading.unwrap_or_else(|| {
        panic!("waited {} s for a reading to reach the follower: {}", PATIENCE.as_secs(), hub.logs())
    });
    assert_eq!(reading["rider"], "alice");
    assert!(reading["metric"] == "gps" || reading["metric"] == "heart_rate", "{reading}");
    assert!(reading["time"].as_str().is_some());
}

#[tokio::test]
async fn every_replica_delivers_every_reading() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let (one, two) = (hub(&nats, &riders, &[]).await, hub(&nats, &riders, &[]).await);
    let publisher = nats_client(&nats).await;
    let (mut a, mut b) = (Client::connect(&one, "").await, Client::connect(&two, "").await);
    a.subscribe(&["alice"]).await;
    b.subscribe(&["*"]).await;
    publish(&publisher, "alice", "heart_rate", 0.0, json!({"bpm": 142})).await;
    for client in [&mut a, &mut b] {
        let reading = client.next_of("reading").await;
        assert_eq!((reading["rider"].as_str(), reading["bpm"].as_f64()), (Some("alice"), Some(142.0)));
    }
}

#[tokio::test]
async fn a_new_follower_gets_the_latest_and_the_trail_at_once() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &[]).await;
    let publisher = nats_client(&nats).await;
    for i in 0..5 {
        publish(
            &publisher,
            "alice",
            "gps",
            f64::from(50 - i),
            json!({"lat": 45.0 + f64::from(i) * 0.001, "lon": 7.6, "speed": 9.0}),
        )
        .await;
    }
    publish(&publisher, "alice", "heart_rate", 40.0, json!({"bpm": 150})).await;
    let mut client = Client::connect(&hub, "").await;
    let hello = client.next_of("hello").await;
    assert_eq!(hello["riders"], json!([{"id": "alice", "name": "Alice"}]), "bob is private");
    let mut snapshot = json!(null);
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        client.send(json!({"op": "subscribe", "riders": ["alice"]})).await;
        snapshot = client.next_of("snapshot").await;
        if snapshot["trail"].as_array().map(Vec::len) == Some(5) {
            break;
        }
        client.send(json!({"op": "unsubscribe", "riders": ["alice"]})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(snapshot["trail"].as_array().map(Vec::len), Some(5), "{snapshot}");
    let latest = snapshot["latest"].as_array().expect("latest");
    let gps = latest.iter().find(|r| r["metric"] == "gps").expect("latest gps");
    assert_eq!(gps["lat"].as_f64(), Some(45.004));
    let hr = latest.iter().find(|r| r["metric"] == "heart_rate").expect("latest heart rate");
    assert_eq!(hr["bpm"].as_f64(), Some(150.0));
}

#[tokio::test]
async fn a_private_rider_needs_a_viewer_token() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &[]).await;
    let mut anonymous = Client::connect(&hub, "").await;
    anonymous.send(json!({"op": "subscribe", "riders": ["bob"]})).await;
    let error = anonymous.next_of("error").await;
    assert!(error["message"].as_str().expect("message").starts_with("rider \"bob\" is private"), "{error}");
    assert_eq!(anonymous.next_of("subscribed").await["riders"], json!([]));

    let mut coach = Client::connect(&hub, &format!("?token={COACH}")).await;
    assert_eq!(coach.subscribe(&["bob"]).await["riders"], json!(["bob"]));

    // The token may also come in the first message.
    anonymous.send(json!({"op": "auth", "token": COACH})).await;
    let hello = anonymous.next_of("hello").await;
    assert_eq!(hello["riders"].as_array().map(Vec::len), Some(2));
    assert_eq!(anonymous.subscribe(&["*"]).await["riders"], json!(["alice", "bob"]));

    let refused = tokio_tungstenite::connect_async(format!(
        "{}/v1/live?token=wrong",
        hub.url.replace("http://", "ws://")
    ))
    .await
    .expect_err("an unknown token is refused");
    assert!(refused.to_string().contains("401"), "{refused}");
}

#[tokio::test]
async fn bad_messages_get_an_error_and_the_connection_stays_open() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &[]).await;
    let mut client = Client::connect(&hub, "").await;
    for bad in [json!("hello"), json!({"op": "dance"}), json!({"op": "subscribe", "riders": ["zed"]})] {
        client.send(bad.clone()).await;
        let error = client.next_of("error").await;
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{bad}: {error}");
    }
    assert_eq!(client.next_of("subscribed").await["riders"], json!([]), "zed was not followed");
    assert_eq!(client.subscribe(&["alice"]).await["riders"], json!(["alice"]), "still open");
}

#[tokio::test]
async fn origins_and_the_connection_cap_are_enforced_politely() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &["--allowed-origins=https://ride.example", "--max-connections=1"]).await;
    let http = reqwest::Client::new();
    let upgrade = |origin: &'static str| {
        http.get(format!("{}/v1/live", hub.url))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Origin", origin)
            .send()
    };
    assert_eq!(upgrade("https://evil.example").await.expect("request").status(), 403);
    let _first = Client::connect(&hub, "").await;
    let full = upgrade("https://ride.example").await.expect("request");
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"));
}

/// What the progress service writes through the collector reaches the followers of the
/// event: a standings snapshot at subscribe, then a `progress` frame per reading, for the
/// entrants each follower may see.
#[tokio::test]
async fn an_events_followers_get_its_standings_then_the_progress_the_collector_took() {
    const SERVICE: &str = "velo_test_progress_service";
    let nats = NatsServer::start().await.expect("nats");
    let influx = InfluxServer::start().await.expect("influxd");
    let riders = tempfile::tempdir().expect("tempdir");
    let points: Vec<(f64, f64, Option<f64>)> =
        (0..=20).map(|i| (45.0 + f64::from(i) * 0.01, 7.0, None)).collect();
    velometry_core::testkit::courses::write_course_gpx(
        &riders.path().join("course.gpx"),
        "north",
        &points,
        &[],
    )
    .expect("course");
    let start = velometry_core::time::format_rfc3339(velometry_core::time::now_nanos() - 3_600_000_000_000);
    let text = crate::helpers::riders_toml()
        + &velometry_core::testkit::RidersToml::new()
            .service("progress", SERVICE, &["race"])
            .raw(&format!(
                "[[event]]\nid = \"race\"\ncourse = \"course.gpx\"\npublic = true\nstart = \"{start}\"\nriders = [\"alice\", \"bob\"]\n"
            ))
            .build();
    std::fs::write(riders.path().join("riders.toml"), text).expect("riders file");
    let wal = tempfile::tempdir().expect("tempdir");
    let collector = collector(&nats, &riders, &wal, &influx.url).await;
    let hub = hub(&nats, &riders, &[]).await;
    let mut anonymous = Client::connect(&hub, "").await;
    let mut coach = Client::connect(&hub, &format!("?token={COACH}")).await;
    for client in [&mut anonymous, &mut coach] {
        client.send(json!({"op": "subscribe", "events": ["race"]})).await;
        let standings = client.next_of("standings").await;
        assert_eq!(standings["event"], "race");
        let subscribed = client.next_of("subscribed").await;
        assert_eq!(subscribed["events"], json!(["race"]));
    }

    let http = reqwest::Client::new();
    let derived = |rider: &str, progress_m: f64| {
        let url = format!("{}/v1/events/race/riders/{rider}/derived", collector.url);
        let code = velometry_core::event::status::event_code(
            &velometry_core::ids::EventId::parse("race").expect("id"),
        );
        let body = json!([{"metric": "course_progress", "event": code, "current_m": progress_m, "progress_m": progress_m,
            "to_go_m": 2_000.0 - progress_m, "from_course_m": 4.0, "off_course": 0, "status": 0}]);
        let request = http.post(url).header("Authorization", format!("Token {SERVICE}")).json(&body);
        async move {
            let r = request.send().await.expect("post");
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        }
    };
    // The collector connects to NATS in the background: send until a frame comes through.
    let deadline = Instant::now() + PATIENCE;
    let mut progress = None;
    let mut sent = 0.0;
    while progress.is_none() && Instant::now() < deadline {
        sent += 10.0;
        derived("alice", sent).await;
        progress = anonymous.next(Duration::from_millis(1_000)).await.filter(|f| f["type"] == "progress");
    }
    let progress = progress
        .unwrap_or_else(|| panic!("no progress frame within {} s: {}", PATIENCE.as_secs(), hub.logs()));
    assert_eq!(progress["event"], "race");
    let reading = &progress["readings"][0];
    assert_eq!(
        (reading["rider"].as_str(), reading["metric"].as_str()),
        (Some("alice"), Some("course_progress"))
    );
    assert!(reading["progress_m"].as_f64().is_some_and(|m| m > 0.0), "{progress}");

    // bob is private: his progress reaches his coach, not the anonymous follower.
    derived("bob", 500.0).await;
    let deadline = Instant::now() + PATIENCE;
    'coach: loop {
        let frame = coach.next_of("progress").await;
        for reading in frame["readings"].as_array().expect("readings") {
            if reading["rider"] == "bob" {
                assert_eq!(reading["progress_m"], 500.0);
                break 'coach;
            }
        }
        assert!(Instant::now() < deadline, "no progress of bob for his coach");
    }
    derived("alice", 1_000.0).await;
    'anonymous: loop {
        let frame = anonymous.next_of("progress").await;
        for reading in frame["readings"].as_array().expect("readings") {
            assert_eq!(reading["rider"], "alice", "bob's progress leaked: {frame}");
            if reading["progress_m"] == 1_000.0 {
                break 'anonymous;
            }
        }
    }
    // A later follower's snapshot ranks what the hub holds.
    let mut late = Client::connect(&hub, &format!("?token={COACH}")).await;
    late.send(json!({"op": "subscribe", "events": ["*"]})).await;
    let standings = late.next_of("standings").await;
    let rows: Vec<(&str, Option<i64>)> = standings["standings"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["rider"].as_str().unwrap_or_default(), r["rank"].as_i64()))
        .collect();
    assert_eq!(rows, [("alice", Some(1)), ("bob", Some(2))], "{standings}");
    anonymous.send(json!({"op": "subscribe", "events": ["nope"]})).await;
    let error = anonymous.next_of("error").await;
    assert!(error["message"].as_str().unwrap_or_default().contains("unknown event"), "{error}");
}
