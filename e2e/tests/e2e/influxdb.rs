//! Every InfluxDB velometry starts runs velometry's settings (docs/deploy.md, "InfluxDB
//! settings"): the cluster's (the environment of the manifest's container), the local
//! platform's (the configuration `deploy/local/run.sh` writes) and the tests' and benchmarks'
//! (the testkit's). `influxd config` reads each the way InfluxDB itself does.

use std::path::Path;
use std::process::Command;

use velometry_core::testkit::{InfluxServer, INFLUX_CACHE_SNAPSHOT};

use crate::deploy::{containers, items, production, succeed, text, workloads};
use crate::helpers::root;

/// `cache-snapshot-memory-size` as `influxd config` prints it (bytes), for a configuration
/// file (or InfluxDB's defaults) and environment.
fn cache_snapshot_bytes(config: Option<&Path>, env: &[(String, String)]) -> u64 {
    let mut command = Command::new("influxd");
    command.arg("config");
    if let Some(config) = config {
        command.arg("-config").arg(config);
    }
    // InfluxDB reads its settings from INFLUXDB_* variables too: none but the given ones.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("INFLUXDB_")) {
        command.env_remove(name);
    }
    let printed = succeed(command.envs(env.iter().map(|(k, v)| (k, v))));
    let value = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("cache-snapshot-memory-size = "))
        .unwrap_or_else(|| panic!("`influxd config` printed no cache-snapshot-memory-size:\n{printed}"));
    value.parse().unwrap_or_else(|e| panic!("cache-snapshot-memory-size = {value}: {e}"))
}

/// The configuration deploy/local/run.sh writes, with its variables filled in.
fn local_platform_config(state: &Path) -> String {
    let script = std::fs::read_to_string(root().join("deploy/local/run.sh")).expect("run.sh");
    let start = script.find("cat >\"$state/influxdb.conf\" <<EOF\n").expect("run.sh writes influxdb.conf");
    let body = &script[start..];
    let body = &body[body.find('\n').expect("a heredoc") + 1..];
    let end = body.find("\nEOF\n").expect("the heredoc ends");
    body[..end]
        .replace("$state", &state.display().to_string())
        .replace("$influx_rpc_port", "18088")
        .replace("$influx_port", "18086")
}

#[tokio::test]
async fn every_influxdb_velometry_starts_runs_its_cache_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = cache_snapshot_bytes(
        None,
        &[("INFLUXDB_DATA_CACHE_SNAPSHOT_MEMORY_SIZE".to_owned(), INFLUX_CACHE_SNAPSHOT.to_owned())],
    );
    assert_ne!(expected, cache_snapshot_bytes(None, &[]), "velometry's setting is InfluxDB's default");

    let local = dir.path().join("local.conf");
    std::fs::write(&local, local_platform_config(dir.path())).expect("write");
    assert_eq!(cache_snapshot_bytes(Some(&local), &[]), expected, "deploy/local/run.sh's InfluxDB");

    let objects = production();
    let container = workloads(&objects)
        .into_iter()
        .flat_map(|(_, template)| containers(template))
        .find(|c| text(&c["name"]) == "influxdb")
        .expect("the production overlay runs an influxdb container");
    let env: Vec<(String, String)> = items(&container["env"])
        .iter()
        .filter(|e| text(&e["name"]).starts_with("INFLUXDB_DATA_"))
        .map(|e| (text(&e["name"]).to_owned(), text(&e["value"]).to_owned()))
        .collect();
    assert_eq!(cache_snapshot_bytes(None, &env), expected, "the cluster's InfluxDB ({env:?})");

    let tests = InfluxServer::start().await.expect("influxd");
    let config = tests.dir().join("influxdb.conf");
    assert_eq!(cache_snapshot_bytes(Some(&config), &[]), expected, "the testkit's InfluxDB");
}
