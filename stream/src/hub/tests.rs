use super::*;

/// The `rider` of each object of a JSON array, in order.
fn riders_of(list: &serde_json::Value) -> Vec<&str> {
    list.as_array().expect("an array").iter().filter_map(|r| r["rider"].as_str()).collect()
}

const RIDERS: &str = r#"
[[rider]]
id = "alice"
public = true
[[rider]]
id = "bob"
"#;

fn hub() -> Hub {
    Hub::new(SharedRegistry::fixed(Registry::parse(RIDERS).expect("valid")), Duration::from_secs(60))
}

fn gps(rider: &str, second: i64, lat: f64) -> Reading {
    let payload = serde_json::json!({"rider": rider, "device": "d", "metric": "gps",
        "time": velometry_core::time::format_rfc3339(1_700_000_000_000_000_000 + second * 1_000_000_000),
        "accepted_at_ms": 1, "lat": lat, "lon": 7.0});
    Reading::parse(payload.to_string().as_bytes()).expect("valid")
}

#[tokio::test]
async fn followers_get_a_snapshot_then_newer_readings_only() {
    let hub = hub();
    let alice = RiderId::parse("alice").expect("valid");
    hub.publish(&gps("alice", 1, 45.0));
    hub.publish(&gps("alice", 2, 45.1));
    let queue = Arc::new(Queue::new(16, Duration::from_secs(10)));
    assert!(hub.follow(&alice, 1, &queue));
    assert!(!hub.follow(&alice, 1, &queue), "following twice is one follow");
    assert!(hub.publish(&gps("alice", 3, 45.2)));
    assert!(!hub.publish(&gps("alice", 0, 44.0)), "older than the latest");
    assert!(!hub.publish(&gps("alice", 3, 45.2)), "the latest again (a replay)");
    let frames = queue.take().await.expect("frames");
    let snapshot: serde_json::Value = serde_json::from_str(frames[0].text.as_str()).expect("json");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["latest"][0]["lat"], 45.1);
    assert_eq!(snapshot["trail"].as_array().map(Vec::len), Some(2));
    let first = &snapshot["trail"][0];
    assert!(first[0].is_i64(), "trail times are integer milliseconds: {first}");
    assert_eq!(first[0].as_i64(), Some(1_700_000_001_000));
    assert_eq!(frames.len(), 2);
    let reading: serde_json::Value = serde_json::from_str(frames[1].text.as_str()).expect("json");
    assert_eq!((reading["type"].as_str(), reading["lat"].as_f64()), (Some("reading"), Some(45.2)));
    assert!(hub.unfollow(&alice, 1));
}

#[test]
fn private_riders_need_a_viewer_and_unknown_ones_are_named() {
    let hub = hub();
    assert_eq!(hub.check(None, "alice").map(|r| r.to_string()), Ok("alice".into()));
    assert_eq!(hub.check(None, "bob"), Err(FollowError::Private("bob".into())));
    assert_eq!(hub.check(None, "Zed"), Err(FollowError::Unknown("Zed".into())));
    assert_eq!(hub.visible(None).len(), 1);
}

/// alice (public) and bob (private, seen by the coach) ride the public event `race`.
fn race_hub(dir: &std::path::Path) -> Hub {
    let points: Vec<(f64, f64, Option<f64>)> =
        (0..=10).map(|i| (45.0 + f64::from(i) * 0.01, 7.0, None)).collect();
    velometry_core::testkit::courses::write_course_gpx(&dir.join("course.gpx"), "north", &points, &[])
        .expect("course");
    let text = velometry_core::testkit::RidersToml::new()
        .rider("alice", "Alice", true)
        .rider("bob", "Bob", false)
        .viewer("coach", "velo_coach", &["bob"])
        .raw("[[event]]\nid = \"race\"\ncourse = \"course.gpx\"\npublic = true\nstart = \"2023-11-14T22:00:00Z\"\nriders = [\"alice\", \"bob\"]\n")
        .build();
    let registry = Registry::parse_in(&text, dir).expect("valid");
    Hub::new(SharedRegistry::fixed(registry), Duration::from_secs(60))
}

fn progress(rider: &str, second: i64, progress_m: f64) -> Reading {
    let code = event_code(&EventId::parse("race").expect("id"));
    let payload = serde_json::json!({"rider": rider, "device": "progress", "metric": "course_progress",
        "time": velometry_core::time::format_rfc3339(1_700_000_000_000_000_000 + second * 1_000_000_000),
        "accepted_at_ms": 1, "event": code, "progress_m": progress_m, "current_m": progress_m,
        "to_go_m": 1_000.0 - progress_m, "from_course_m": 2.0, "off_course": 0.0, "status": 0.0});
    Reading::parse(payload.to_string().as_bytes()).expect("valid")
}

#[tokio::test]
async fn event_followers_get_standings_then_the_progress_of_entrants_they_may_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = race_hub(dir.path());
    let race = hub.check_event(None, "race").expect("a public event");
    assert_eq!(hub.check_event(None, "nope"), Err(FollowError::UnknownEvent("nope".into())));
    hub.publish(&progress("alice", 1, 100.0));
    hub.publish(&progress("bob", 1, 300.0));
    let anonymous = Arc::new(Queue::new(16, Duration::from_secs(10)));
    let registry = hub.registry();
    let coach = registry.authenticate_viewer("velo_coach").cloned();
    let coached = Arc::new(Queue::new(16, Duration::from_secs(10)));
    assert!(hub.follow_event(&race, None, 1, &anonymous));
    assert!(!hub.follow_event(&race, None, 1, &anonymous), "following twice is one follow");
    assert!(hub.follow_event(&race, coach.as_ref(), 2, &coached));
    hub.publish(&progress("alice", 2, 200.0));
    hub.publish(&progress("bob", 2, 400.0));

    hub.send_progress();

    let frames = anonymous.take().await.expect("frames");
    let json = |f: &Queued| serde_json::from_str::<serde_json::Value>(f.text.as_str()).expect("json");
    let snapshot = json(&frames[0]);
    assert_eq!(snapshot["type"], "standings");
    let rows = snapshot["standings"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "bob is private: {snapshot}");
    assert_eq!((rows[0]["rider"].as_str(), rows[0]["rank"].as_i64()), (Some("alice"), Some(1)));
    assert_eq!(rows[0]["distance_m"], 100.0);
    assert!(rows[0].get("checkpoints_reached").is_none(), "the hub does not count them: {snapshot}");
    assert_eq!(frames.len(), 2, "the snapshot, then one frame of progress");
    let update = json(&frames[1]);
    assert_eq!((update["type"].as_str(), update["event"].as_str()), (Some("progress"), Some("race")));
    let readings = update["readings"].as_array().expect("readings");
    assert_eq!(readings.len(), 1, "alice's progress only: {update}");
    assert_eq!(
        (readings[0]["rider"].as_str(), readings[0]["progress_m"].as_f64()),
        (Some("alice"), Some(200.0))
    );
    assert!(readings[0].get("type").is_none() && readings[0].get("event").is_none(), "{update}");

    let frames = coached.take().await.expect("frames");
    let snapshot = json(&frames[0]);
    let ranked = riders_of(&snapshot["standings"]);
    assert_eq!(ranked, ["bob", "alice"]);
    assert_eq!(snapshot["standings"][1]["gap_m"], 200.0);
    assert_eq!(frames.len(), 2, "the snapshot, then one frame of progress");
    let update = json(&frames[1]);
    let riders = riders_of(&update["readings"]);
    assert_eq!(riders, ["alice", "bob"], "both riders' progress, in order");
    hub.send_progress();
    hub.publish(&progress("alice", 3, 300.0));
    hub.send_progress();
    hub.publish(&progress("alice", 4, 400.0));
    hub.send_progress();
    let frames = coached.take().await.expect("frames");
    assert_eq!(frames.len(), 2, "a frame per call with something new: {}", frames.len());

    // A rider's own followers see the event by its id too.
    let alice = RiderId::parse("alice").expect("id");
    let own = Arc::new(Queue::new(16, Duration::from_secs(10)));
    hub.follow(&alice, 3, &own);
    let frames = own.take().await.expect("frames");
    let snapshot = json(&frames[0]);
    assert_eq!(snapshot["latest"][0]["event"], "race", "{snapshot}");
    assert!(hub.unfollow_event(&race, 1));
    assert!(!hub.unfollow_event(&race, 1));
}
