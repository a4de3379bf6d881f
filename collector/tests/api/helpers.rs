//! Starting the collector binary against real servers, and waiting for data to land.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use velometry_core::testkit::{InfluxServer, RidersToml, Service, PATIENCE};

pub const DB: &str = "velometry";
/// Alice is public; her bike computer and phone have tokens of their own.
pub const ALICE_EDGE: &str = "velo_test_alice_edge530";
pub const ALICE_PHONE: &str = "velo_test_alice_phone";
/// Bob is private.
pub const BOB_PHONE: &str = "velo_test_bob_phone";

pub fn riders_toml() -> String {
    RidersToml::new()
        .rider("alice", "Alice", true)
        .device("edge530", ALICE_EDGE)
        .device("phone", ALICE_PHONE)
        .rider("bob", "Bob", false)
        .device("phone", BOB_PHONE)
        .build()
}

/// A collector process with its WAL and riders file, restartable on the same WAL.
pub struct Collector {
    service: Service,
    /// The riders file, and the WAL unless the test gave another folder; held for its life.
    dir: TempDir,
    wal: PathBuf,
}

impl Deref for Collector {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl DerefMut for Collector {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}

impl Collector {
    /// Starts the collector writing to `influx_url`, with extra flags.
    pub async fn start(influx_url: &str, extra: &[&str]) -> Collector {
        Collector::start_with(influx_url, &riders_toml(), None, extra).await
    }

    /// Starts the collector with the riders file `riders`, its WAL in `wal` (or a
    /// temporary folder of its own), writing to `influx_url`, with extra flags.
    pub async fn start_with(influx_url: &str, riders: &str, wal: Option<&Path>, extra: &[&str]) -> Collector {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("riders.toml"), riders).expect("riders file");
        let wal = wal.map_or_else(|| dir.path().join("wal"), Path::to_path_buf);
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen=127.0.0.1:0".into(),
            "--metrics-listen=127.0.0.1:0".into(),
            format!("--riders={}", dir.path().join("riders.toml").display()),
            format!("--wal-dir={}", wal.display()),
            format!("--influx-url={influx_url}"),
            format!("--influx-db={DB}"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let service =
            Service::start(env!("CARGO_BIN_EXE_collector").into(), args).await.expect("the collector starts");
        Collector { service, dir, wal }
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.wal.clone()
    }

    /// The riders file it reads, for a test to change.
    pub fn riders_path(&self) -> PathBuf {
        self.dir.path().join("riders.toml")
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.service.terminate().await.expect("exits")
    }

    /// Starts again on the same WAL (new ports).
    pub async fn restart(&mut self) {
        self.service.restart().await.expect("restarts");
    }

    pub async fn metrics(&self) -> String {
        self.service.metrics().await.expect("scrape")
    }
}

pub use velometry_core::testkit::metric;

/// InfluxDB plus a collector writing to it.
pub struct Env {
    pub influx: InfluxServer,
    pub collector: Collector,
    pub http: reqwest::Client,
    /// Files the collector reads at every start (a sources file).
    kept: Vec<TempDir>,
}

impl Env {
    pub async fn start(extra: &[&str]) -> Env {
        Env::start_with(&riders_toml(), None, extra).await
    }

    /// InfluxDB plus a collector with the riders file `riders` and its WAL in `wal`.
    pub async fn start_with(riders: &str, wal: Option<&Path>, extra: &[&str]) -> Env {
        let influx = InfluxServer::start().await.expect("influxd");
        let collector = Collector::start_with(&influx.url, riders, wal, extra).await;
        Env { influx, collector, http: reqwest::Client::new(), kept: Vec::new() }
    }

    /// InfluxDB plus a collector polling the sources file whose text is `sources`.
    pub async fn with_sources(sources: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sources.toml");
        std::fs::write(&path, sources).expect("sources file");
        let mut env = Env::start(&[&format!("--sources={}", path.display())]).await;
        env.kept.push(dir);
        env
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.collector.url)
    }

    /// POSTs JSON readings with a token.
    pub async fn post_json(&self, token: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/readings"))
            .header("Authorization", format!("Token {token}"))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Waits until the collector's log holds nothing it has not stored: what it acknowledged
    /// is then in InfluxDB, whole, so a count that should stay at zero can be read.
    pub async fn settled(&self) {
        let (settled, unstored) = poll(
            || async { metric(&self.collector.metrics().await, "collector_wal_bytes ") },
            |unstored| *unstored == 0.0,
        )
        .await;
        assert!(
            settled,
            "waited {} s for the collector to store what it holds ({unstored} bytes left)\n{}",
            PATIENCE.as_secs(),
            self.collector.logs()
        );
    }

    /// Rows of a query, waiting until there are `n` of them and the collector has stored
    /// everything it acknowledged (or panicking after [`PATIENCE`]). InfluxDB stores a point's fields
    /// one after the other, so a read during a write may see some fields of a point and not
    /// others; once the collector's WAL holds nothing unstored, every write it made is whole.
    pub async fn wait_rows(&self, q: &str, n: usize) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let (found, last) = poll(
            || async {
                // A collector that does not answer (stopped by the test) has nothing in flight.
                let unstored = self
                    .collector
                    .service
                    .metrics()
                    .await
                    .map_or(0.0, |text| metric(&text, "collector_wal_bytes "));
                (unstored, self.influx.rows(DB, q).await.unwrap_or_default())
            },
            |(unstored, rows)| *unstored == 0.0 && rows.len() >= n,
        )
        .await;
        if !found {
            let (unstored, rows) = &last;
            let sink = self.collector.service.metrics().await.unwrap_or_default();
            let written = metric(&sink, "collector_sink_lines_written_total");
            panic!(
                "expected {n} rows for {q}, have {}: {rows:?}\nWAL bytes not yet stored {unstored}, lines the \
                 sink wrote {written}, InfluxDB's write stats: {}\n{}",
                rows.len(),
                self.influx.write_stats().await,
                self.collector.logs()
            );
        }
        last.1
    }
}

/// Polls `check` until it returns true or [`PATIENCE`] passes; false then, for the caller's
/// assertion to say what it waited for.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `f` until its value satisfies `done` or [`PATIENCE`] passes; returns the last value.
pub async fn poll<T, F, Fut>(mut f: F, done: impl Fn(&T) -> bool) -> (bool, T)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = f().await;
        if done(&value) {
            return (true, value);
        }
        if Instant::now() > deadline {
            return (false, value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Now, in epoch milliseconds, minus `ago_s` seconds.
pub fn ms_ago(ago_s: i64) -> i64 {
    chrono::Utc::now().timestamp_millis() - ago_s * 1000
}
