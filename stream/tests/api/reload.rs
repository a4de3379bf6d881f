//! The riders file changed under a running hub: a rider added mid-race can be followed at
//! once, a viewer's new rights hold on a connection already open, and a broken file keeps
//! the configuration in force.

use std::time::Duration;

use serde_json::json;
use velometry_core::testkit::{metric, wait_until, NatsServer, RidersToml, Service};

use crate::helpers::{hub, nats_client, publish, riders_file, riders_toml, Client, COACH};

/// The riders file with carol (public) and dave (private, and now the coach's too).
fn with_carol_and_dave() -> String {
    RidersToml::new()
        .rider("alice", "Alice", true)
        .rider("bob", "Bob", false)
        .rider("carol", "Carol", true)
        .rider("dave", "Dave", false)
        .viewer("coach", COACH, &["bob", "dave"])
        .build()
}

async fn wait_metric(hub: &Service, what: &str, name: &str, wanted: impl Fn(f64) -> bool) {
    wait_until(what, Duration::from_millis(100), || async {
        let value = metric(&hub.metrics().await?, name);
        if wanted(value) {
            Ok(())
        } else {
            Err(format!("{name} is {value}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", hub.logs()));
}

#[tokio::test]
async fn a_rider_added_mid_race_can_be_followed_without_a_restart() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &["--riders-poll=100ms"]).await;
    let mut coach = Client::connect(&hub, &format!("?token={COACH}")).await;
    coach.next_of("hello").await;
    let refused = coach.subscribe(&["dave"]).await;
    assert_eq!(refused["riders"], json!([]), "dave is not in the riders file yet");

    std::fs::write(riders.path().join("riders.toml"), with_carol_and_dave()).expect("written");
    wait_metric(&hub, "the new riders file in force", "stream_config_reloads_total{result=\"ok\"}", |n| {
        n >= 1.0
    })
    .await;
    let mut spectator = Client::connect(&hub, "").await;
    let hello = spectator.next_of("hello").await;
    let ids: Vec<&str> =
        hello["riders"].as_array().expect("riders").iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["alice", "carol"], "public riders, carol among them");
    assert_eq!(spectator.subscribe(&["carol"]).await["riders"], json!(["carol"]));
    // The coach's connection was open before the change: its token now covers dave.
    assert_eq!(coach.subscribe(&["dave"]).await["riders"], json!(["dave"]));

    let publisher = nats_client(&nats).await;
    publish(&publisher, "carol", "gps", 0.0, json!({"lat": 45.2, "lon": 7.1})).await;
    let reading = spectator.next_of("reading").await;
    assert_eq!((reading["rider"].as_str(), reading["lat"].as_f64()), (Some("carol"), Some(45.2)));

    // A broken file: nothing changes for followers, the metrics say it.
    std::fs::write(riders.path().join("riders.toml"), "[[rider]\nid = \"carol\"\n").expect("written");
    wait_metric(&hub, "the broken file counted", "stream_config_reloads_total{result=\"error\"}", |n| {
        n >= 1.0
    })
    .await;
    assert_eq!(metric(&hub.metrics().await.expect("scrape"), "stream_config_last_reload_successful"), 0.0);
    let mut late = Client::connect(&hub, "").await;
    late.next_of("hello").await;
    assert_eq!(late.subscribe(&["carol"]).await["riders"], json!(["carol"]), "carol is still in force");

    std::fs::write(riders.path().join("riders.toml"), riders_toml()).expect("written");
    wait_metric(&hub, "the fixed file in force", "stream_config_last_reload_successful", |v| v == 1.0).await;
}
