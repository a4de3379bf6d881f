//! The riders file changed under a running query service: a rider added mid-race is listed
//! and served at once, and a broken file keeps the configuration in force.

use std::time::Duration;

use velometry_core::testkit::{wait_until, InfluxServer, RidersToml, Service};

use crate::helpers::*;

async fn wait_metric(service: &Service, what: &str, name: &str, wanted: impl Fn(f64) -> bool) {
    wait_until(what, Duration::from_millis(100), || async {
        let value = counter(service, name).await;
        if wanted(value) {
            Ok(())
        } else {
            Err(format!("{name} is {value}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", service.logs()));
}

async fn listed(service: &Service) -> Vec<String> {
    let (_, body) = get(service, "/v1/riders", None).await;
    body.as_array().expect("a list").iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_public_rider_added_mid_race_is_served_without_a_restart() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    influx.write(DB, &heart_rate("carol", "phone", now - HOUR, 110.0)).await.expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &["--riders-poll=100ms"]).await;
    assert_eq!(listed(&service).await, ["alice"]);
    assert_eq!(get(&service, "/v1/riders/carol/latest", None).await.0, 404);

    let with_carol = RidersToml::new()
        .rider("alice", "Alice", true)
        .rider("bob", "Bob", false)
        .viewer("coach", COACH, &["bob"])
        .rider("carol", "Carol", true)
        .build();
    std::fs::write(riders.path().join("riders.toml"), &with_carol).expect("written");
    wait_metric(&service, "the new riders file in force", "query_config_reloads_total{result=\"ok\"}", |n| {
        n >= 1.0
    })
    .await;
    assert_eq!(listed(&service).await, ["alice", "carol"]);
    let (status, latest) = get(&service, "/v1/riders/carol/latest", None).await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["metrics"]["heart_rate"]["fields"]["bpm"], 110.0);

    std::fs::write(riders.path().join("riders.toml"), with_carol.replace("[[viewer]]", "[[viewers]]"))
        .expect("written");
    wait_metric(&service, "the broken file counted", "query_config_reloads_total{result=\"error\"}", |n| {
        n >= 1.0
    })
    .await;
    assert_eq!(counter(&service, "query_config_last_reload_successful").await, 0.0);
    assert_eq!(listed(&service).await, ["alice", "carol"], "the configuration in force stays");
    assert!(service.logs().contains("unknown field `viewers`"), "{}", service.logs());
}
