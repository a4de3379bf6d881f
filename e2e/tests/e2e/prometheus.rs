//! deploy/prometheus: the configuration and rules pass promtool (with a test for every
//! alert, firing and quiet), and a real Prometheus using that configuration scrapes every
//! service and evaluates every rule.

use std::time::{Duration, Instant};

use velometry_core::testkit::{PrometheusServer, PATIENCE};

use crate::helpers::*;

fn promtool(args: &[&str]) {
    let dir = root().join("deploy/prometheus");
    let output = std::process::Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("promtool runs (deploy/local/test.sh installs it)");
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_configuration_and_rules_pass_promtool_and_every_alert_is_tested() {
    promtool(&["check", "config", "prometheus.yml"]);
    promtool(&["check", "rules", "rules/velometry.yml"]);
    promtool(&["test", "rules", "tests/velometry_test.yml"]);
    // Every alert has a test that fires it and one that finds it quiet.
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules/velometry.yml")).expect("rules");
    let tests =
        std::fs::read_to_string(root().join("deploy/prometheus/tests/velometry_test.yml")).expect("tests");
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in alerts {
        let cases: Vec<&str> = tests.split(&format!("alertname: {alert}\n")).skip(1).collect();
        let quiet = cases.iter().filter(|c| c.trim_start().starts_with("exp_alerts: []")).count();
        assert!(
            quiet >= 1 && cases.len() > quiet,
            "{alert}: needs a firing and a quiet case ({} cases)",
            cases.len()
        );
    }
}

#[tokio::test]
async fn prometheus_scrapes_every_service_and_evaluates_every_rule() {
    let stack = Stack::start().await;
    // The shipped configuration, with its static targets moved to where the services listen.
    let mut config =
        std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml")).expect("config");
    for ((_, target), default) in stack.metrics_targets().iter().zip([
        "127.0.0.1:9180",
        "127.0.0.1:9170",
        "127.0.0.1:9190",
        "127.0.0.1:9160",
    ]) {
        assert!(config.contains(default), "prometheus.yml no longer lists {default}");
        config = config.replace(default, target);
    }
    config = config
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules/velometry.yml")).expect("rules");
    let prometheus =
        PrometheusServer::start(&config, &[("rules/velometry.yml", &rules)]).await.expect("prometheus");

    let mut up = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        up = prometheus.query("up == 1").await.expect("query");
        if up.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut jobs: Vec<&str> = up.iter().filter_map(|s| s["metric"]["job"].as_str()).collect();
    jobs.sort_unstable();
    assert_eq!(
        jobs,
        ["velometry-collector", "velometry-progress", "velometry-query", "velometry-stream"],
        "{}",
        prometheus.log()
    );

    // Every rule loads and evaluates without error against the real metrics.
    let rules_api = format!("{}/api/v1/rules", prometheus.url);
    let mut rules = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let body: serde_json::Value =
            reqwest::get(&rules_api).await.expect("rules API").json().await.expect("JSON");
        rules = body["data"]["groups"][0]["rules"].as_array().cloned().unwrap_or_default();
        if !rules.is_empty() && rules.iter().all(|r| r["health"] == "ok") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(rules.len() >= 10 && rules.iter().all(|r| r["health"] == "ok"), "{rules:?}");
    for rule in &rules {
        prometheus.query(rule["query"].as_str().expect("query")).await.unwrap_or_else(|e| panic!("{e}"));
    }
}
