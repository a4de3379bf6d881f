//! Real Prometheus and VictoriaMetrics servers: the metric stores the tests scrape into and
//! write to.

use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::{free_port, require, wait_until, Result};

/// A running Prometheus with a configuration of the test's.
pub struct PrometheusServer {
    // Held for `kill_on_drop`.
    _child: Child,
    dir: TempDir,
    /// Base URL of its HTTP API.
    pub url: String,
    http: reqwest::Client,
}

impl PrometheusServer {
    /// Starts `prometheus` with `config` (the text of a prometheus.yml; relative paths in it
    /// are read from `files`, copied next to it) and waits until it is ready.
    ///
    /// # Errors
    /// When it is missing or does not come up.
    pub async fn start(config: &str, files: &[(&str, &str)]) -> Result<PrometheusServer> {
        require("prometheus")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        for (name, text) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log")).map_err(|e| e.to_string())?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start prometheus: {e}"))?;
        let server = PrometheusServer {
            _child: child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let ready = wait_until("prometheus to be ready", Duration::from_millis(100), || async {
            match server.http.get(format!("{}/-/ready", server.url)).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        match ready {
            Ok(()) => Ok(server),
            Err(e) => Err(format!("{e}: {}", server.log())),
        }
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant PromQL query; returns the `data.result` array.
    ///
    /// # Errors
    /// When the request fails or Prometheus refuses the query.
    pub async fn query(&self, promql: &str) -> Result<Vec<serde_json::Value>> {
        let body: serde_json::Value = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{promql}: {body}"));
        }
        Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

/// A running VictoriaMetrics, which answers InfluxDB's `/api/v2/write`.
pub struct VictoriaMetrics {
    // Held for `kill_on_drop`.
    _child: Child,
    _dir: TempDir,
    /// Base URL of its HTTP API.
    pub url: String,
    http: reqwest::Client,
}

impl VictoriaMetrics {
    /// Starts `victoria-metrics` and waits until it answers `/health`.
    ///
    /// # Errors
    /// When it is missing or does not come up.
    pub async fn start() -> Result<VictoriaMetrics> {
        require("victoria-metrics")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let child = Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.path().display()))
            .arg("-search.latencyOffset=0s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start victoria-metrics: {e}"))?;
        let server = VictoriaMetrics {
            _child: child,
            _dir: dir,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        wait_until("victoria-metrics to answer /health", Duration::from_millis(50), || async {
            match server.http.get(format!("{}/health", server.url)).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
        Ok(server)
    }

    /// Exports the raw samples of a series selector as JSON lines.
    ///
    /// # Errors
    /// When the request fails.
    pub async fn export(&self, selector: &str) -> Result<Vec<serde_json::Value>> {
        let _ = self.http.get(format!("{}/internal/force_flush", self.url)).send().await;
        let text = self
            .http
            .post(format!("{}/api/v1/export", self.url))
            .form(&[("match[]", selector)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        text.lines().map(|l| serde_json::from_str(l).map_err(|e| e.to_string())).collect()
    }
}
