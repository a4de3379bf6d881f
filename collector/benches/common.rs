// Each benchmark program uses part of this module.
#![allow(dead_code)]

//! Shared by the benchmark programs: starting the collector binary and reading its metrics.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use velometry_core::riders::TokenHash;

/// A device token of the benchmark riders file.
pub fn token(i: usize) -> String {
    format!("velo_bench_device_{i}")
}

/// Writes a riders file with `riders` riders of one device each.
pub fn write_riders(path: &Path, riders: usize) {
    let mut toml = String::new();
    for i in 0..riders {
        toml.push_str(&format!(
            "[[rider]]\nid = \"r{i}\"\npublic = true\n  [[rider.device]]\n  id = \"d\"\n  token_sha256 = \"{}\"\n",
            TokenHash::of(&token(i)).to_hex()
        ));
    }
    std::fs::write(path, toml).expect("riders file");
}

/// Starts the release collector; returns the process and its ingest and metrics URLs.
pub async fn start_collector(dir: &Path, influx_url: &str, extra: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("serve")
        .arg("--listen=127.0.0.1:0")
        .arg("--metrics-listen=127.0.0.1:0")
        .arg(format!("--riders={}", dir.join("riders.toml").display()))
        .arg(format!("--wal-dir={}", dir.join("wal").display()))
        .arg(format!("--influx-url={influx_url}"))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the collector");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("collector starts")
        .expect("stdout")
        .expect("a line");
    let mut urls = line
        .split_whitespace()
        .filter(|w| w.contains("http://"))
        .map(|u| u.trim_matches(['(', ')']).to_owned());
    let (ingest, metrics) = (urls.next().expect("ingest"), urls.next().expect("metrics"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, ingest, metrics)
}

/// Sum of the samples of one metric.
pub async fn metric(metrics_url: &str, name: &str) -> f64 {
    let text = reqwest::get(metrics_url).await.expect("scrape").text().await.expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Peak resident memory of a process, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
