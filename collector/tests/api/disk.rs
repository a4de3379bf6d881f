//! A full disk under the WAL directory (a small tmpfs, so the test needs root, as CI has):
//! 503 with Retry-After, nothing acknowledged that is not on disk, nothing acknowledged lost,
//! and back by itself when space returns — for the log, the dead letters and `/readyz`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use velometry_core::testkit::InfluxServer;

use crate::helpers::*;

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`16m`), or says the test skipped when not root.
    fn mount(size: &str) -> Option<Tmpfs> {
        let uid = std::process::Command::new("id").arg("-u").output().expect("id runs");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            println!("skipped: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a tmpfs on {}", dir.path().display());
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a new file of its own (`name`) until it takes no more; returns
    /// the file.
    fn fill(&self, name: &str) -> PathBuf {
        let path = self.path().join(name);
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        // The last page or so, with small writes.
        while file.write_all(&[0u8; 512]).is_ok() {}
        while file.write_all(&[0u8; 1]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a collector still holding files open must not keep the mount.
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Posts heart rates at `times` (ms), one request.
async fn post(http: &reqwest::Client, collector: &Collector, times: &[i64]) -> reqwest::Response {
    let readings: Vec<_> =
        times.iter().map(|t| json!({"metric": "heart_rate", "time": t, "bpm": 120})).collect();
    http.post(format!("{}/v1/readings", collector.url))
        .header("Authorization", format!("Token {ALICE_EDGE}"))
        .json(&readings)
        .send()
        .await
        .expect("post")
}

async fn ready(http: &reqwest::Client, collector: &Collector) -> u16 {
    http.get(format!("{}/readyz", collector.url)).send().await.map_or(0, |r| r.status().as_u16())
}

/// Waits (up to the suite's patience) until `/readyz` answers `status`.
async fn wait_ready(http: &reqwest::Client, collector: &Collector, status: u16, what: &str) {
    let found = eventually(|| async { ready(http, collector).await == status }).await;
    assert!(found, "/readyz never answered {status} {what}: {}", collector.logs());
}

#[tokio::test]
async fn a_full_disk_is_refused_with_503_loses_nothing_and_recovers_by_itself() {
    let Some(disk) = Tmpfs::mount("16m") else { return };
    let env = Env::start_with(&riders_toml(), Some(&disk.path().join("wal")), &[]).await;
    let base = ms_ago(3600);
    let mut next = base;
    let mut acknowledged = 0;
    for _ in 0..5 {
        assert_eq!(post(&env.http, &env.collector, &[next]).await.status(), 200);
        next += 1;
        acknowledged += 1;
    }

    let filler = disk.fill("filler");
    let mut refused = None;
    for _ in 0..1000 {
        let resp = post(&env.http, &env.collector, &[next]).await;
        next += 1;
        match resp.status().as_u16() {
            200 => acknowledged += 1,
            503 => {
                refused = Some(resp);
                break;
            }
            other => panic!("a full disk answered {other}: {}", resp.text().await.unwrap_or_default()),
        }
    }
    let refused = refused.expect("the full disk is noticed");
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("cannot write to its disk")), "{body}");
    assert_eq!(ready(&env.http, &env.collector).await, 503, "not ready while the disk is full");
    // A device fix that would be dead-lettered is not answered 2xx before its dead letter
    // is on disk: the phone sends it again later. (The collector may have given back a
    // page or two since, cutting what it could not finish writing: take those too.)
    // On a busy machine the collector may give a page back after the top-up too: a fix
    // answered 200 must then have its dead letter on disk already.
    let fix = format!("{}/v1/osmand?id={ALICE_PHONE}&lat=45&lon=7&timestamp=0", env.collector.url);
    let dead_path = env.collector.wal_dir().join("dead-letters.devices.jsonl");
    let dead_lines = || std::fs::read_to_string(&dead_path).map(|d| d.lines().count()).unwrap_or(0);
    let mut fillers = vec![filler];
    let mut dead_before = 0;
    for attempt in 2.. {
        fillers.push(disk.fill(&format!("filler-{attempt}")));
        match env.http.get(&fix).send().await.expect("osmand").status().as_u16() {
            503 => break,
            200 => {
                dead_before += 1;
                assert_eq!(dead_lines(), dead_before, "a fix answered 200 is dead-lettered first");
            }
            other => panic!("a full disk answered a fix {other}"),
        }
        assert!(attempt < 10, "the disk never stayed full for a fix");
    }

    // Space returns: ready again with no traffic at all, then everything flows.
    for f in &fillers {
        std::fs::remove_file(f).expect("free the disk");
    }
    wait_ready(&env.http, &env.collector, 200, "after space returned").await;
    assert_eq!(post(&env.http, &env.collector, &[next]).await.status(), 200);
    acknowledged += 1;
    assert_eq!(env.http.get(&fix).send().await.expect("osmand").status(), 200);
    assert_eq!(dead_lines(), dead_before + 1, "the fix is dead-lettered once it can be");

    let rows = env.wait_rows("SELECT bpm FROM heart_rate", acknowledged).await;
    assert_eq!(rows.len(), acknowledged, "every acknowledged reading, and nothing refused");
    let metrics = env.collector.metrics().await;
    assert!(
        metric(&metrics, "collector_readings_rejected_total{protocol=\"json\",reason=\"unavailable\"}")
            >= 1.0
    );
    assert!(env.collector.logs().contains("Cannot write the WAL"), "{}", env.collector.logs());
}

#[tokio::test]
async fn a_log_that_fills_the_disk_while_influxdb_is_down_frees_it_once_stored() {
    let Some(disk) = Tmpfs::mount("8m") else { return };
    let mut env = Env::start_with(&riders_toml(), Some(&disk.path().join("wal")), &[]).await;
    env.influx.kill().await;
    let mut next = ms_ago(7200);
    let mut acknowledged = 0;
    let mut full = false;
    for _ in 0..2000 {
        let times: Vec<i64> = (next..next + 500).collect();
        next += 500;
        match post(&env.http, &env.collector, &times).await.status().as_u16() {
            200 => acknowledged += times.len(),
            503 => {
                full = true;
                break;
            }
            other => panic!("answered {other}"),
        }
    }
    assert!(full, "8 MiB fill up: {}", env.collector.logs());
    assert!(acknowledged > 10_000, "the log took what fit first: {acknowledged}");
    assert_eq!(ready(&env.http, &env.collector).await, 503);

    env.influx.restart().await.expect("influxd restarts");
    wait_ready(&env.http, &env.collector, 200, "once InfluxDB stored the log and its segments were deleted")
        .await;
    let times: Vec<i64> = (next..next + 500).collect();
    assert_eq!(post(&env.http, &env.collector, &times).await.status(), 200);
    acknowledged += times.len();
    let stored = eventually(|| async {
        env.influx.count(DB, "heart_rate", "bpm").await.unwrap_or(0) == acknowledged as u64
    })
    .await;
    assert!(
        stored,
        "{acknowledged} acknowledged, {} stored: {}",
        env.influx.count(DB, "heart_rate", "bpm").await.unwrap_or(0),
        env.collector.logs()
    );
}

#[tokio::test]
async fn a_refused_line_stays_in_the_log_until_its_dead_letter_is_on_disk() {
    let Some(disk) = Tmpfs::mount("16m") else { return };
    // A database that keeps one hour: InfluxDB refuses older points ("beyond retention
    // policy"), which the collector cannot know — a dead letter.
    let mut influx = InfluxServer::start().await.expect("influxd");
    influx.query("", &format!("CREATE DATABASE \"{DB}\" WITH DURATION 1h")).await.expect("database");
    let collector =
        Collector::start_with(&influx.url, &riders_toml(), Some(&disk.path().join("wal")), &[]).await;
    let http = reqwest::Client::new();
    influx.kill().await;
    assert_eq!(post(&http, &collector, &[ms_ago(7200)]).await.status(), 200, "two hours old");
    let filler = disk.fill("filler");
    influx.restart().await.expect("influxd restarts");

    let refused = eventually(|| async {
        metric(
            &collector.metrics().await,
            "collector_sink_errors_total{sink=\"influx_v1\",kind=\"rejected\"}",
        ) >= 1.0
    })
    .await;
    assert!(refused, "InfluxDB never refused the line: {}", collector.logs());
    let dead = collector.wal_dir().join("dead-letters.influx_v1.jsonl");
    let read = || std::fs::read_to_string(&dead).unwrap_or_default();
    assert_eq!(read(), "", "nothing can be written yet");
    assert_eq!(metric(&collector.metrics().await, "collector_dead_letter_lines_total"), 0.0);
    assert!(metric(&collector.metrics().await, "collector_wal_bytes ") > 0.0, "the line is still in the log");

    std::fs::remove_file(&filler).expect("free the disk");
    let written = eventually(|| async { read().lines().count() == 1 }).await;
    assert!(written, "the dead letter never arrived: {}", collector.logs());
    assert!(read().contains("beyond retention policy"), "{}", read());
    let drained =
        eventually(|| async { metric(&collector.metrics().await, "collector_wal_bytes ") == 0.0 }).await;
    assert!(drained, "{}", collector.logs());
    assert_eq!(metric(&collector.metrics().await, "collector_dead_letter_lines_total"), 1.0);
}
