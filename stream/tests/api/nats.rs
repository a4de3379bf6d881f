//! The hub and its NATS: `/readyz` says whether the feed follows, and a JetStream store with
//! less room than `--history-max-bytes` still carries live readings.

use std::time::Duration;

use serde_json::json;
use velometry_core::testkit::{NatsServer, Service};

use crate::helpers::{hub, hub_args, nats_client, publish, riders_file, Client};

const MIB: i64 = 1 << 20;

#[tokio::test]
async fn the_hub_is_ready_once_it_follows_nats_and_stays_ready_through_an_outage() {
    let mut nats = NatsServer::start().await.expect("nats");
    nats.kill().await;
    let riders = riders_file();
    let hub = Service::start(env!("CARGO_BIN_EXE_stream").into(), hub_args(&nats, &riders, &[]))
        .await
        .expect("the hub starts without NATS");
    let http = reqwest::Client::new();
    let readyz = || async {
        let r = http.get(format!("{}/readyz", hub.url)).send().await.expect("readyz");
        (r.status().as_u16(), r.text().await.expect("body"))
    };
    // Give the feed time to fail at least once, so that the answer names why.
    let mut answer = readyz().await;
    for _ in 0..50 {
        if answer.1.contains("connect") && answer.1 != "not following NATS yet: connecting\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = readyz().await;
    }
    assert_eq!(answer.0, 503, "{answer:?}");
    assert!(answer.1.starts_with("not following NATS yet:"), "{answer:?}");

    nats.restart().await.expect("nats comes back");
    hub.wait_ready().await.expect("ready once NATS is there");
    assert_eq!(readyz().await, (200, "following live readings\n".to_owned()));

    // Having followed, the hub keeps serving what it knows while NATS is away.
    nats.kill().await;
    let mut answer = readyz().await;
    for _ in 0..50 {
        if answer.1.starts_with("reconnecting") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = readyz().await;
    }
    assert_eq!(answer.0, 200, "{answer:?}");
    assert!(answer.1.starts_with("reconnecting to NATS"), "{answer:?}");
}

#[tokio::test]
async fn a_small_jetstream_store_gets_a_smaller_stream_a_warning_and_every_reading() {
    let nats = NatsServer::start_with_file_store(64 << 20).await.expect("nats with a 64 MiB store");
    let riders = riders_file();
    let first = hub(&nats, &riders, &[]).await;
    let publisher = nats_client(&nats).await;
    let js = async_nats::jetstream::new(publisher.clone());
    let max_bytes = || async {
        let mut live = js.get_stream("VELOMETRY_LIVE").await.expect("the hub made the live stream");
        live.info().await.expect("stream info").config.max_bytes
    };
    let kept = max_bytes().await;
    assert!((32 * MIB..=64 * MIB).contains(&kept), "the stream keeps {kept} bytes");
    assert!(first.logs().contains("NATS cannot reserve --history-max-bytes"), "{}", first.logs());

    let mut client = Client::connect(&first, "").await;
    client.subscribe(&["alice"]).await;
    publish(&publisher, "alice", "heart_rate", 0.0, json!({"bpm": 128})).await;
    assert_eq!(client.next_of("reading", Duration::from_secs(5)).await["bpm"].as_f64(), Some(128.0));

    // A hub started with a smaller limit updates the stream, without a warning.
    drop(first);
    let second = hub(&nats, &riders, &["--history-max-bytes=16MiB"]).await;
    assert_eq!(max_bytes().await, 16 * MIB);
    assert!(!second.logs().contains("cannot reserve"), "{}", second.logs());
}
