//! A step of the collector machine's wall clock, simulated through the collector's testing
//! flag `--testing-clock-step-file` (the machine's own clock is never touched): nothing
//! acknowledged is lost or written twice, through a crash and its replay too.

use std::path::Path;

use serde_json::json;

use crate::helpers::*;

/// Steps the collector's clock to `seconds` off the machine's and waits until it says so.
async fn step(env: &Env, file: &Path, seconds: i64) {
    std::fs::write(file, seconds.to_string()).expect("step file");
    let said = format!("step_s={seconds}");
    let seen = eventually(|| async {
        env.collector.logs().rsplit("--- restart ---").next().is_some_and(|l| l.contains(&said))
    })
    .await;
    assert!(seen, "the collector never took the step to {seconds} s: {}", env.collector.logs());
}

/// What one round sends: readings the collector stamps (JSON without a time, line protocol
/// without a timestamp) and, when `phone` is given, an OsmAnd fix stamped by a phone whose
/// clock is right, that many seconds from now (each fix a second of its own). Returns the
/// OsmAnd fix's time, if one was sent.
async fn round(env: &Env, label: &str, phone: Option<i64>) -> Option<i64> {
    let resp = env.post_json(ALICE_EDGE, &json!([{"metric": "heart_rate", "bpm": 120}])).await;
    assert_eq!(resp.status(), 200, "{label}: JSON");
    let resp = env
        .http
        .post(env.url("/write"))
        .header("Authorization", format!("Token {ALICE_EDGE}"))
        .body("power watts=200")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 204, "{label}: line protocol");
    let at = chrono::Utc::now().timestamp() + phone?;
    let url = env.url(&format!("/v1/osmand?id={ALICE_PHONE}&lat=45.1&lon=7.6&timestamp={at}"));
    assert_eq!(env.http.get(url).send().await.expect("request").status(), 200, "{label}: OsmAnd");
    Some(at * 1_000_000_000)
}

/// The times of a measurement's points, in order.
async fn times(env: &Env, measurement: &str, field: &str, n: usize) -> Vec<i64> {
    let rows = env.wait_rows(&format!("SELECT {field} FROM {measurement}"), n).await;
    rows.iter().map(|r| r["time"].as_i64().expect("time")).collect()
}

#[tokio::test]
async fn a_step_of_the_clock_loses_nothing_and_writes_nothing_twice() {
    let steps = tempfile::tempdir().expect("tempdir");
    let file = steps.path().join("clock-step");
    std::fs::write(&file, "0").expect("step file");
    let mut env = Env::start(&[&format!("--testing-clock-step-file={}", file.display())]).await;
    let rounds = 5;
    let mut phone_times = Vec::new();
    for i in 0..rounds {
        phone_times.extend(round(&env, &format!("before, {i}"), Some(i as i64 - 120)).await);
    }
    let before = times(&env, "heart_rate", "bpm", rounds).await;

    // The machine's clock is stepped back ten minutes.
    step(&env, &file, -600).await;
    for i in 0..rounds {
        phone_times.extend(round(&env, &format!("stepped back, {i}"), Some(i as i64 - 60)).await);
    }
    let held = times(&env, "heart_rate", "bpm", 2 * rounds).await;
    assert!(
        held.windows(2).all(|w| w[1] > w[0]) && held[..rounds] == before[..],
        "stamped after what was stamped before the step, never before it: {held:?}"
    );
    // The phone's clock is right: its fixes keep their own time, none is taken for ahead.
    let gps = times(&env, "gps", "lat", 2 * rounds).await;
    assert_eq!(gps, phone_times, "every fix at the phone's own time");
    let metrics = env.collector.metrics().await;
    assert_eq!(metric(&metrics, "collector_device_fixes_retimed_total"), 0.0, "{metrics}");

    // A crash while the clock is stepped: the log is replayed, nothing twice. A restart
    // follows the machine's clock at once (docs/ingest.md), so phones are not sent now.
    env.collector.kill().await;
    env.collector.restart().await;
    step(&env, &file, -600).await;
    for i in 0..rounds {
        round(&env, &format!("after the crash, {i}"), None).await;
    }
    // And forward an hour.
    step(&env, &file, 3600).await;
    for i in 0..rounds {
        round(&env, &format!("stepped forward, {i}"), None).await;
    }

    // Every acknowledged reading, each once: none overwritten by another stamped at its
    // time, none written again at another.
    let all = times(&env, "heart_rate", "bpm", 4 * rounds).await;
    times(&env, "power", "watts", 4 * rounds).await;
    assert_eq!(env.influx.count(DB, "heart_rate", "bpm").await.expect("count"), 4 * rounds as u64);
    assert_eq!(env.influx.count(DB, "power", "watts").await.expect("count"), 4 * rounds as u64);
    assert_eq!(env.influx.count(DB, "gps", "lat").await.expect("count"), 2 * rounds as u64);
    assert!(held.iter().all(|t| all.contains(t)), "the points of before the crash are all there: {all:?}");
}
