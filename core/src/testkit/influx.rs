//! A real InfluxDB 1.x (`influxd`) for tests and benchmarks, with velometry's settings.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::{free_port, require, sigkill, Result, PATIENCE};

/// The size at which InfluxDB 1.x writes a shard's in-memory cache to disk, as velometry runs
/// it (`deploy/local/run.sh`, the Kubernetes manifests; docs/deploy.md, "InfluxDB settings").
///
/// InfluxDB's default, 25 MB, lets the shard being written hold a week of a rider's readings
/// in memory, and every query of that shard copies its series' whole cached part: an hour of
/// heart rate took 8 ms (p50) and 27 ms (p95) instead of 3 and 6.
pub const INFLUX_CACHE_SNAPSHOT: &str = "4m";

/// A running InfluxDB 1.x (`influxd`) with its own data directory.
pub struct InfluxServer {
    child: Option<Child>,
    dir: TempDir,
    cache_snapshot: String,
    port: u16,
    rpc_port: u16,
    /// Base URL of its HTTP API.
    pub url: String,
    http: reqwest::Client,
    /// With authentication on: the admin's name and password, which this server's own
    /// requests use.
    admin: Option<(String, String)>,
}

impl InfluxServer {
    /// Starts `influxd` with velometry's settings and waits until it answers `/ping`.
    ///
    /// # Errors
    /// When `influxd` is missing or does not come up.
    pub async fn start() -> Result<InfluxServer> {
        InfluxServer::start_with_cache_snapshot(INFLUX_CACHE_SNAPSHOT).await
    }

    /// Starts `influxd` with `cache-snapshot-memory-size` set to `size` (`"25m"`: InfluxDB's
    /// default), for benchmarks that compare it with [`INFLUX_CACHE_SNAPSHOT`].
    ///
    /// # Errors
    /// When `influxd` is missing or does not come up.
    pub async fn start_with_cache_snapshot(size: &str) -> Result<InfluxServer> {
        InfluxServer::launch(size, None).await
    }

    /// Starts `influxd` with authentication on and an admin user (the first user, which
    /// InfluxDB lets anyone create), as production runs it: every request needs a user.
    ///
    /// # Errors
    /// When `influxd` is missing or does not come up.
    pub async fn start_with_auth() -> Result<InfluxServer> {
        let password = format!("admin-{:x}", crate::time::now_nanos());
        let server =
            InfluxServer::launch(INFLUX_CACHE_SNAPSHOT, Some(("admin".to_owned(), password))).await?;
        server
            .query(
                "",
                &format!(
                    "CREATE USER \"admin\" WITH PASSWORD '{}' WITH ALL PRIVILEGES",
                    server.admin_password()
                ),
            )
            .await?;
        Ok(server)
    }

    fn admin_password(&self) -> &str {
        self.admin.as_ref().map_or("", |(_, password)| password.as_str())
    }

    async fn launch(size: &str, admin: Option<(String, String)>) -> Result<InfluxServer> {
        require("influxd")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut server = InfluxServer {
            child: None,
            dir,
            cache_snapshot: size.to_owned(),
            port: 0,
            rpc_port: 0,
            url: String::new(),
            // Uncompressed answers, as the query service asks them: gzip costs InfluxDB a third
            // of its CPU per query, which would weigh on every comparison with it.
            http: reqwest::Client::builder().gzip(false).build().map_err(|e| e.to_string())?,
            admin,
        };
        let mut last = String::new();
        for _ in 0..3 {
            server.port = free_port()?;
            server.rpc_port = free_port()?;
            server.url = format!("http://127.0.0.1:{}", server.port);
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    server.kill().await;
                    last = e;
                }
            }
        }
        Err(format!("influxd did not start: {last}"))
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn spawn(&mut self) -> Result<()> {
        let root = self.dir.path();
        let config = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  cache-snapshot-memory-size = "{cache_snapshot}"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
  auth-enabled = {auth}
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"#,
            rpc = self.rpc_port,
            http = self.port,
            root = root.display(),
            cache_snapshot = self.cache_snapshot,
            auth = self.admin.is_some(),
        );
        let conf_path = root.join("influxdb.conf");
        std::fs::write(&conf_path, config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(root.join("influxd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("influxd")
            .arg("-config")
            .arg(&conf_path)
            .env("INFLUXDB_BIND_ADDRESS", format!("127.0.0.1:{}", self.rpc_port))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start influxd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(root.join("influxd.log")).unwrap_or_default();
                    return Err(format!("influxd exited with {status}: {log}"));
                }
            }
            if let Ok(r) = self.http.get(format!("{}/ping", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("waited {} s for influxd to answer /ping", PATIENCE.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (SIGKILL), keeping its data.
    pub async fn kill(&mut self) {
        sigkill(&mut self.child).await;
    }

    /// Starts the server again on the same ports and data.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.spawn().await
    }

    /// Runs an InfluxQL statement and returns the JSON answer.
    ///
    /// # Errors
    /// When the request fails or InfluxDB reports an error.
    pub async fn query(&self, db: &str, q: &str) -> Result<serde_json::Value> {
        let resp = self
            .as_admin(self.http.post(format!("{}/query", self.url)))
            .form(&[("db", db), ("q", q), ("epoch", "ns")])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        if let Some(err) = body.pointer("/results/0/error").or_else(|| body.get("error")) {
            return Err(format!("{q}: {err}"));
        }
        Ok(body)
    }

    /// InfluxDB's own count of the points it was sent, wrote and dropped (`SHOW STATS` for
    /// `write`), for a test that misses points to say which side lost them.
    pub async fn write_stats(&self) -> String {
        match self.query("", "SHOW STATS FOR 'write'").await {
            Ok(body) => {
                let series = &body["results"][0]["series"][0];
                let (columns, values) = (&series["columns"], &series["values"][0]);
                columns
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(values.as_array().into_iter().flatten())
                    .map(|(c, v)| format!("{}={v}", c.as_str().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            Err(e) => format!("SHOW STATS failed: {e}"),
        }
    }

    /// The rows of the first series a query returns, as `[column → value]` maps.
    ///
    /// # Errors
    /// As [`InfluxServer::query`].
    pub async fn rows(&self, db: &str, q: &str) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        let body = self.query(db, q).await?;
        let Some(series) = body.pointer("/results/0/series/0") else {
            return Ok(Vec::new());
        };
        let columns: Vec<String> = series["columns"]
            .as_array()
            .map(|c| c.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Ok(series["values"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row.as_array())
                    .map(|row| columns.iter().cloned().zip(row.iter().cloned()).collect())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Writes line protocol (nanosecond timestamps) into `db`, creating it first.
    ///
    /// # Errors
    /// When InfluxDB refuses it.
    pub async fn write(&self, db: &str, lines: &str) -> Result<()> {
        self.query(db, &format!("CREATE DATABASE \"{db}\"")).await?;
        let resp = self
            .as_admin(self.http.post(format!("{}/write?db={db}&precision=ns", self.url)))
            .body(lines.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("write refused: {}", resp.text().await.unwrap_or_default()))
        }
    }

    /// A request as the admin, when authentication is on.
    fn as_admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.admin {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// `SELECT count(<field>)` over a measurement, 0 when there is none (or no database yet).
    ///
    /// # Errors
    /// As [`InfluxServer::query`].
    pub async fn count(&self, db: &str, measurement: &str, field: &str) -> Result<u64> {
        let rows = match self.rows(db, &format!("SELECT count(\"{field}\") FROM \"{measurement}\"")).await {
            // No database yet (the collector creates it when its sink starts): no points.
            Err(e) if e.contains("database not found") => return Ok(0),
            rows => rows?,
        };
        Ok(rows.first().and_then(|r| r.get("count")).and_then(serde_json::Value::as_u64).unwrap_or(0))
    }
}
