//! The hub and its NATS: `/readyz` says whether the feed follows, and a JetStream store with
//! less room than `--history-max-bytes` still carries live readings.

use std::time::{Duration, Instant};

use serde_json::json;
use velometry_core::testkit::{NatsServer, Service, PATIENCE};

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
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
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
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
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
    assert_eq!(client.next_of("reading").await["bpm"].as_f64(), Some(128.0));

    // A hub started with a smaller limit updates the stream, without a warning.
    drop(first);
    let second = hub(&nats, &riders, &["--history-max-bytes=16MiB"]).await;
    assert_eq!(max_bytes().await, 16 * MIB);
    assert!(!second.logs().contains("cannot reserve"), "{}", second.logs());
}

#[tokio::test]
async fn with_three_replicas_the_streams_outlive_a_nats_server_and_readings_flow() {
    let mut cluster = NatsServer::start_cluster(3).await.expect("a NATS cluster of three");
    let riders = riders_file();
    // Streams made with one replica, as by a hub started with the default, are raised to
    // three by the next hub started with --nats-replicas=3.
    drop(hub(&cluster[0], &riders, &[]).await);
    let hub = hub(&cluster[0], &riders, &["--nats-replicas=3"]).await;
    let publisher = nats_client(&cluster[0]).await;
    let js = async_nats::jetstream::new(publisher.clone());
    for name in ["VELOMETRY_LIVE", "VELOMETRY_LATEST"] {
        let mut stream = js.get_stream(name).await.expect("the hub made the stream");
        let info = stream.info().await.expect("stream info");
        assert_eq!(info.config.num_replicas, 3, "{name}");
    }

    // Once the new replicas have caught up, the live stream's leader goes away (asked first
    // to hand over if it is the server the hub and the publisher use): the two others elect
    // a new one and carry on. A rider sends every half second; readings published during
    // the election may be lost (the collector publishes live readings without waiting for
    // JetStream), and the ones after reach the follower.
    let mut leader = None;
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let mut live = js.get_stream("VELOMETRY_LIVE").await.expect("live stream");
        let cluster_info = live.info().await.expect("info").cluster.clone().unwrap_or_default();
        let caught_up = cluster_info.replicas.len() == 2 && cluster_info.replicas.iter().all(|p| p.current);
        match cluster_info.leader {
            Some(name) if caught_up && name != "n0" => {
                leader = Some(name);
                break;
            }
            Some(_) if caught_up => {
                let _ = publisher.request("$JS.API.STREAM.LEADER.STEPDOWN.VELOMETRY_LIVE", "".into()).await;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leader = leader.expect("the replicas caught up and a server other than n0 leads");
    cluster[leader[1..].parse::<usize>().expect("n<i>")].kill().await;
    let mut client = Client::connect(&hub, "").await;
    client.subscribe(&["alice"]).await;
    let mut delivered = None;
    // Typically 5–8 s here; on a loaded machine a NATS election and the hub's retries can take
    // tens of seconds.
    let deadline = Instant::now() + PATIENCE;
    for bpm in 100.. {
        if Instant::now() > deadline {
            break;
        }
        publish(&publisher, "alice", "heart_rate", 0.0, json!({"bpm": bpm})).await;
        if let Some(frame) = client.next(Duration::from_millis(500)).await {
            delivered = frame["bpm"].as_f64();
            break;
        }
    }
    assert!(
        delivered.is_some(),
        "waited {} s for a reading to reach the follower: {}",
        PATIENCE.as_secs(),
        hub.logs()
    );
    let mut live = js.get_stream("VELOMETRY_LIVE").await.expect("live stream");
    assert!(live.info().await.expect("info").state.messages >= 1);
}

#[tokio::test]
async fn more_replicas_than_nats_servers_is_named_in_readyz() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub =
        Service::start(env!("CARGO_BIN_EXE_stream").into(), hub_args(&nats, &riders, &["--nats-replicas=3"]))
            .await
            .expect("the hub starts");
    let mut answer = (0, String::new());
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let r = reqwest::get(format!("{}/readyz", hub.url)).await.expect("readyz");
        answer = (r.status().as_u16(), r.text().await.expect("body"));
        if answer.1.contains("--nats-replicas") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, 503, "{answer:?}");
    assert!(answer.1.contains("with 3 replica(s) (--nats-replicas"), "{answer:?}");
}
