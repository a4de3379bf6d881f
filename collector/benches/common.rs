// Each benchmark program uses part of this module.
#![allow(dead_code)]

//! Shared by the benchmark programs: starting the collector binary and reading its metrics.

use std::path::Path;

use velometry_core::testkit::{RidersToml, Service};

/// A device token of the benchmark riders file.
pub fn token(i: usize) -> String {
    format!("velo_bench_device_{i}")
}

/// Writes a riders file with `riders` riders of one device each.
pub fn write_riders(path: &Path, riders: usize) {
    let toml = (0..riders).fold(RidersToml::new(), |f, i| {
        f.rider(&format!("r{i}"), &format!("Rider {i}"), true).device("d", &token(i))
    });
    std::fs::write(path, toml.build()).expect("riders file");
}

/// Starts the release collector with the benchmark riders file in `dir`.
pub async fn start_collector(dir: &Path, influx_url: &str, extra: &[&str]) -> Service {
    let mut args = vec![
        "serve".to_owned(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-listen=127.0.0.1:0".into(),
        format!("--riders={}", dir.join("riders.toml").display()),
        format!("--wal-dir={}", dir.join("wal").display()),
        format!("--influx-url={influx_url}"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Service::start(env!("CARGO_BIN_EXE_collector").into(), args).await.expect("the collector starts")
}

/// Sum of the samples of one metric.
pub async fn metric(service: &Service, name: &str) -> f64 {
    velometry_core::testkit::metric(&service.metrics().await.unwrap_or_default(), name)
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
