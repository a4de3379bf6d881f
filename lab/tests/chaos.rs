//! A short chaos run, as the real binaries: `velometry-lab chaos` for 30 s with a fault every
//! 5 s kills each kind of service at least once (the plan visits every kind before it
//! repeats one), and must find every acknowledged reading in InfluxDB and followers getting
//! readings again after every restart.

use std::process::{Command, Output};

use serde_json::Value;
use velometry_core::testkit::workspace_binary;

/// Builds the lab and the three services into the same folder, where the lab looks for them.
fn lab() -> std::path::PathBuf {
    for (package, name) in
        [("velometry-collector", "collector"), ("velometry-query", "query"), ("velometry-stream", "stream")]
    {
        workspace_binary(package, name).unwrap_or_else(|e| panic!("{e}"));
    }
    workspace_binary("velometry-lab", "velometry-lab").unwrap_or_else(|e| panic!("{e}"))
}

fn show(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_short_chaos_run_loses_nothing_acknowledged_and_followers_come_back() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("chaos.json");

    let output = Command::new(&lab)
        .args([
            "chaos",
            "--duration",
            "30s",
            "--every",
            "5s",
            "--seed",
            "8",
            "--riders",
            "3",
            "--followers",
            "6",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run velometry-lab");
    println!("{}", show(&output));

    assert!(output.status.success(), "the chaos run failed: {}", show(&output));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
        .expect("the report is JSON");
    let readings = &report["readings"];
    let acknowledged = readings["acknowledged"].as_u64().expect("acknowledged");
    assert!(acknowledged >= 100, "3 riders for over 30 s acknowledged only {acknowledged} readings");
    assert_eq!(readings["missing"], 0, "{readings:#}");
    assert_eq!(readings["found"].as_u64(), Some(acknowledged), "{readings:#}");
    assert_eq!(readings["duplicates"], 0, "{readings:#}");
    for kind in ["collector", "stream", "query", "nats", "influxdb"] {
        let n = report["faults_by_service"][kind].as_u64().unwrap_or(0);
        assert!(n >= 1, "{kind} was never killed: {}", report["faults_by_service"]);
    }
    let faults = report["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 6, "one fault every 5 s for 30 s");
    for fault in faults {
        let affected = fault["followers_affected"].as_u64().expect("affected");
        assert!(affected >= 1, "no follower to watch after {fault}");
        assert_eq!(
            fault["followers_recovered"].as_u64(),
            Some(affected),
            "followers stayed dark after {fault}"
        );
    }
    assert!(
        faults.iter().filter(|f| f["kind"] == "query").all(|f| f["query_answered_after_s"].is_number()),
        "the query service did not answer after a restart: {faults:?}"
    );
    assert!(
        report["query_at_end"].is_null(),
        "the query service does not answer: {}",
        report["query_at_end"]
    );
    assert_eq!(report["passed"], true);
    assert!(report["live"]["delivered"].as_u64().unwrap_or(0) > 0);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("PASSED"), "{table}");
}

#[test]
fn a_replica_without_followers_is_refused_before_anything_starts() {
    let output = Command::new(lab())
        .args(["chaos", "--followers", "1", "--stream-replicas", "2"])
        .output()
        .expect("run velometry-lab");
    assert!(!output.status.success(), "{}", show(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("at least one follower per stream replica"),
        "{}",
        show(&output)
    );
}
