//! Real client libraries writing through the collector: Python's `influxdb` (v1 API) and
//! `influxdb-client` (v2 API), installed by deploy/local/test.sh.

use serde_json::json;
use tokio::process::Command;

use crate::helpers::{Env, ALICE_EDGE, ALICE_PHONE};

async fn python(script: &str, env: &Env, token: &str) {
    let (host, port) = env.collector.url.trim_start_matches("http://").rsplit_once(':').expect("host:port");
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("HOST", host)
        .env("PORT", port)
        .env("URL", &env.collector.url)
        .env("TOKEN", token)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python client failed (deploy/local/test.sh installs the packages):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn python_influxdb_v1_client_writes_through_the_collector() {
    let env = Env::start(&[]).await;
    python(
        r#"
import os, datetime
from influxdb import InfluxDBClient
client = InfluxDBClient(host=os.environ["HOST"], port=int(os.environ["PORT"]),
                        username="alice", password=os.environ["TOKEN"], database="velometry")
now = datetime.datetime.now(datetime.timezone.utc)
points = [{"measurement": "heart_rate", "tags": {"rider": "mallory"},
           "time": (now - datetime.timedelta(seconds=i)).isoformat(), "fields": {"bpm": 120 + i}}
          for i in range(50)]
assert client.write_points(points, time_precision="ms", batch_size=25)
"#,
        &env,
        ALICE_EDGE,
    )
    .await;
    let rows = env.wait_rows("SELECT bpm, rider, source FROM heart_rate", 50).await;
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r["rider"] == json!("alice")), "the token decides the rider");
}

#[tokio::test]
async fn python_influxdb_client_v2_writes_through_the_collector() {
    let env = Env::start(&[]).await;
    python(
        r#"
import os, datetime
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS
now = datetime.datetime.now(datetime.timezone.utc)
with InfluxDBClient(url=os.environ["URL"], token=os.environ["TOKEN"], org="club", enable_gzip=True) as client:
    api = client.write_api(write_options=SYNCHRONOUS)
    api.write(bucket="rides", record=[
        Point("gps").field("lat", 45.0 + i / 1000).field("lon", 7.0).field("speed", 8.5)
                    .time(now - datetime.timedelta(seconds=i)) for i in range(30)])
    api.write(bucket="rides", record="temperature celsius=21i")
"#,
        &env,
        ALICE_PHONE,
    )
    .await;
    let rows = env.wait_rows("SELECT lat, speed, device FROM gps", 30).await;
    assert_eq!(rows[0]["device"], json!("phone"));
    let temp = env.wait_rows("SELECT celsius FROM temperature", 1).await;
    assert_eq!(temp[0]["celsius"].as_f64(), Some(21.0), "21i is normalised to a float");
}
