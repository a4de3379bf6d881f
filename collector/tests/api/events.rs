//! The riders file changed under a running collector (a device token added mid-race, a broken
//! file, SIGHUP), and organisers scratching and reinstating riders through the durable path.

use std::path::Path;

use serde_json::json;
use velometry_core::event::status::event_code;
use velometry_core::ids::EventId;
use velometry_core::testkit::{wait_until, write_course_gpx, RidersToml};

use crate::helpers::*;

const CAROL_PHONE: &str = "velo_test_carol_phone";
const HQ: &str = "velo_test_organiser_hq";
const GRAVEL_HQ: &str = "velo_test_organiser_gravel";

/// Writes `text` to `path` as editors save: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let next = path.with_extension("toml.new");
    std::fs::write(&next, text).expect("written");
    std::fs::rename(&next, path).expect("renamed");
}

fn with_carol() -> String {
    riders_toml() + &RidersToml::new().rider("carol", "Carol", true).device("phone", CAROL_PHONE).build()
}

async fn status_of(env: &Env, token: &str) -> u16 {
    let reading = json!([{"metric": "heart_rate", "bpm": 120}]);
    env.post_json(token, &reading).await.status().as_u16()
}

async fn wait_metric(env: &Env, what: &str, name: &str, wanted: impl Fn(f64) -> bool) {
    wait_until(what, std::time::Duration::from_millis(100), || async {
        let value = metric(&env.collector.metrics().await, name);
        if wanted(value) {
            Ok(())
        } else {
            Err(format!("{name} is {value}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", env.collector.logs()));
}

#[tokio::test]
async fn a_device_token_added_mid_race_works_at_once_and_a_broken_file_keeps_the_running_one() {
    let env = Env::start(&["--riders-poll=100ms"]).await;
    let riders = env.collector.riders_path();
    assert_eq!(status_of(&env, CAROL_PHONE).await, 401, "carol is not in the riders file yet");
    assert_eq!(metric(&env.collector.metrics().await, "collector_config_last_reload_successful"), 1.0);

    std::fs::write(&riders, with_carol()).expect("written");
    wait_until("carol's new token to be taken", std::time::Duration::from_millis(100), || async {
        match status_of(&env, CAROL_PHONE).await {
            200 => Ok(()),
            other => Err(format!("answered {other}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", env.collector.logs()));
    wait_metric(&env, "a good reload counted", "collector_config_reloads_total{result=\"ok\"}", |n| n >= 1.0)
        .await;

    // Broken mid-race: the running configuration stays, the log and the metrics say so.
    save(&riders, &(with_carol() + "[[rider]]\nid = \"Dave\"\n"));
    wait_metric(
        &env,
        "the broken file to be counted",
        "collector_config_reloads_total{result=\"error\"}",
        |n| n >= 1.0,
    )
    .await;
    assert_eq!(metric(&env.collector.metrics().await, "collector_config_last_reload_successful"), 0.0);
    assert_eq!(status_of(&env, CAROL_PHONE).await, 200, "carol's token still works");
    assert_eq!(status_of(&env, ALICE_PHONE).await, 200, "so does alice's");
    let logs = env.collector.logs();
    assert!(
        logs.lines().any(|l| l.contains("ERROR") && l.contains("cannot be used"))
            && logs.contains("invalid id \"Dave\""),
        "the log says what is wrong:\n{logs}"
    );

    // Fixed, without carol this time: her token stops working.
    save(&riders, &riders_toml());
    wait_metric(&env, "the fixed file to be in force", "collector_config_last_reload_successful", |v| {
        v == 1.0
    })
    .await;
    assert_eq!(status_of(&env, CAROL_PHONE).await, 401, "carol is gone");
    assert_eq!(status_of(&env, ALICE_PHONE).await, 200);
}

#[tokio::test]
async fn sighup_reloads_the_riders_file_at_once() {
    // Polled once an hour: only SIGHUP can make the change seen within the test.
    let env = Env::start(&["--riders-poll=1h"]).await;
    std::fs::write(env.collector.riders_path(), with_carol()).expect("written");
    assert_eq!(status_of(&env, CAROL_PHONE).await, 401);
    let pid = env.collector.pid().expect("running").to_string();
    let sent = std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill runs");
    assert!(sent.success());
    wait_metric(&env, "the reload SIGHUP asked for", "collector_config_reloads_total{result=\"ok\"}", |n| {
        n >= 1.0
    })
    .await;
    assert_eq!(status_of(&env, CAROL_PHONE).await, 200);
    assert!(env.collector.logs().contains("SIGHUP"), "{}", env.collector.logs());
}

/// The riders file of the event tests: alice and bob ride "tcr" (organised by HQ), carol
/// rides "gravel" (organised by GRAVEL_HQ); both courses are in `dir`.
fn event_riders(dir: &Path) -> String {
    let points: Vec<(f64, f64, Option<f64>)> =
        (0..50).map(|i| (45.0 + f64::from(i) * 0.001, 7.0, None)).collect();
    write_course_gpx(&dir.join("course.gpx"), "Test", &points, &[]).expect("course");
    let event = |id: &str, riders: &str| {
        format!(
            "[[event]]\nid = \"{id}\"\ncourse = \"{}\"\nstart = 2026-07-26T20:00:00Z\nriders = [{riders}]\npublic = true\n",
            dir.join("course.gpx").display()
        )
    };
    RidersToml::new()
        .rider("alice", "Alice", true)
        .device("phone", ALICE_PHONE)
        .rider("bob", "Bob", false)
        .device("phone", BOB_PHONE)
        .rider("carol", "Carol", true)
        .device("phone", CAROL_PHONE)
        .raw(&event("tcr", "\"alice\", \"bob\""))
        .raw(&event("gravel", "\"carol\""))
        .organiser("hq", HQ, &["tcr"])
        .organiser("gravel-hq", GRAVEL_HQ, &["gravel"])
        .build()
}

/// Runs `collector event …`; its exit status, stdout and stderr.
fn event_command(env: &Env, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("event")
        .args(args)
        .arg(format!("--target={}", env.collector.url))
        .output()
        .expect("the command runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn an_organiser_scratches_and_reinstates_an_entrant_as_readings_in_influxdb() {
    let courses = tempfile::tempdir().expect("tempdir");
    let env = Env::start_with(&event_riders(courses.path()), None, &[]).await;

    let (ok, out, err) = event_command(
        &env,
        &[
            "scratch",
            "--token",
            HQ,
            "--event",
            "tcr",
            "--rider",
            "bob",
            "--reason",
            "medical",
            "--at",
            "2026-07-28T03:10:00Z",
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "scratched bob in tcr at 2026-07-28T03:10:00.000Z (medical), recorded by hq");
    let (ok, out, err) = event_command(
        &env,
        &["reinstate", "--token", HQ, "--event", "tcr", "--rider", "bob", "--at", "2026-07-28T09:00:00Z"],
    );
    assert!(ok, "{out}{err}");

    let rows = env
        .wait_rows("SELECT \"event\", \"state\", \"reason\", \"device\", \"source\" FROM \"event_status\" WHERE \"rider\" = 'bob'", 2)
        .await;
    let code = event_code(&EventId::parse("tcr").expect("an id"));
    let at = |t: &str| json!(velometry_core::time::parse_rfc3339(t).expect("a time"));
    assert_eq!(rows[0]["time"], at("2026-07-28T03:10:00Z"));
    assert_eq!(
        (rows[0]["event"].as_f64(), rows[0]["state"].as_f64(), rows[0]["reason"].as_f64()),
        (Some(code), Some(1.0), Some(4.0))
    );
    assert_eq!((rows[0]["device"].as_str(), rows[0]["source"].as_str()), (Some("hq"), Some("organiser")));
    assert_eq!(rows[1]["time"], at("2026-07-28T09:00:00Z"));
    assert_eq!((rows[1]["state"].as_f64(), rows[1]["reason"].as_f64()), (Some(0.0), None));

    // Only this event's organiser, only for its entrants, only this measurement.
    let (ok, _, err) =
        event_command(&env, &["scratch", "--token", GRAVEL_HQ, "--event", "tcr", "--rider", "alice"]);
    assert!(!ok && err.contains("403") && err.contains("does not organise event \"tcr\""), "{err}");
    let (ok, _, err) = event_command(&env, &["scratch", "--token", HQ, "--event", "tcr", "--rider", "carol"]);
    assert!(
        !ok && err.contains("404") && err.contains("\"carol\" is not an entrant of event \"tcr\""),
        "{err}"
    );
    let (ok, _, err) =
        event_command(&env, &["scratch", "--token", HQ, "--event", "nope", "--rider", "alice"]);
    assert!(!ok && err.contains("no event \"nope\""), "{err}");
    let (ok, _, err) =
        event_command(&env, &["scratch", "--token", ALICE_PHONE, "--event", "tcr", "--rider", "alice"]);
    assert!(!ok && err.contains("401") && err.contains("not an organiser token"), "{err}");
    let own = json!([{"metric": "event_status", "event": code, "state": 0}]);
    let refused = env.post_json(BOB_PHONE, &own).await;
    assert_eq!(refused.status(), 400, "a rider's own device may not reinstate them");
    let line = env
        .http
        .post(env.url("/write"))
        .header("Authorization", format!("Token {BOB_PHONE}"))
        .body(format!("event_status event={code},state=0"))
        .send()
        .await
        .expect("request");
    assert_eq!(line.status(), 400);
    let organiser_as_device = env.post_json(HQ, &json!([{"metric": "heart_rate", "bpm": 120}])).await;
    assert_eq!(organiser_as_device.status(), 401, "an organiser token is no device token");
    env.settled().await;
    let all = env.influx.rows(DB, "SELECT \"state\" FROM \"event_status\"").await.expect("query");
    assert_eq!(all.len(), 2, "nothing else was written: {all:?}");
}
