//! A harness that starts real InfluxDB and NATS servers for integration tests.
//!
//! Each server gets free ports and a temporary directory of its own, and is killed when
//! dropped (every child is spawned with `kill_on_drop`). Servers are external programs, so their ports are found by binding port 0 and
//! releasing it; a start that loses that race is retried on new ports.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

pub mod courses;
mod influx;

pub use influx::{InfluxServer, INFLUX_CACHE_SNAPSHOT};

/// The path of a binary of this workspace, built first if a test of another package needs
/// it (`cargo build` is a no-op when it is up to date).
///
/// # Errors
/// When the build fails.
pub fn workspace_binary(package: &str, name: &str) -> Result<PathBuf> {
    // Test binaries live in <target>/<profile>/deps/; the binaries one folder up.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe.parent().and_then(Path::parent).ok_or("cannot locate the target directory")?;
    let binary = profile_dir.join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", name]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().map_err(|e| format!("cannot run cargo to build {name}: {e}"))?;
    if !status.success() || !binary.is_file() {
        return Err(format!("cannot build {name} ({status}); expected it at {}", binary.display()));
    }
    Ok(binary)
}

/// The best time of `runs` runs of `f` (a benchmark's kernel), and what its last run
/// returned, kept from the optimiser by `black_box`.
pub fn best_of(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let started = Instant::now();
        out = std::hint::black_box(f());
        best = best.min(started.elapsed());
    }
    (best, out)
}

/// CPU time (user and system) a process has used so far, from /proc; zero when it is not
/// running. Benchmarks compare two readings to tell when a server has gone quiet.
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let stat = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok()).unwrap_or_default();
    // The fields after the command name (which may hold spaces) end with `)`; utime and stime
    // are the 12th and 13th of them, in ticks of 1/100 s.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

/// A riders file for tests and benchmarks, written from the riders, devices and viewers
/// added to it; tokens are hashed as the real file holds them.
#[derive(Debug, Default)]
pub struct RidersToml(String);

impl RidersToml {
    /// An empty file.
    pub fn new() -> RidersToml {
        RidersToml::default()
    }

    /// Adds a rider.
    #[must_use]
    pub fn rider(mut self, id: &str, name: &str, public: bool) -> RidersToml {
        self.0.push_str(&format!("[[rider]]\nid = \"{id}\"\nname = \"{name}\"\npublic = {public}\n"));
        self
    }

    /// Sets the maximum heart rate of the rider added last (call before adding devices).
    #[must_use]
    pub fn max_hr(mut self, bpm: u32) -> RidersToml {
        self.0.push_str(&format!("max_hr = {bpm}\n"));
        self
    }

    /// Adds a device with its token to the rider added last.
    #[must_use]
    pub fn device(mut self, id: &str, token: &str) -> RidersToml {
        let hash = crate::riders::TokenHash::of(token).to_hex();
        self.0.push_str(&format!("  [[rider.device]]\n  id = \"{id}\"\n  token_sha256 = \"{hash}\"\n"));
        self
    }

    /// Adds a viewer who may see `riders`.
    #[must_use]
    pub fn viewer(mut self, name: &str, token: &str, riders: &[&str]) -> RidersToml {
        let hash = crate::riders::TokenHash::of(token).to_hex();
        let riders: Vec<String> = riders.iter().map(|r| format!("\"{r}\"")).collect();
        self.0.push_str(&format!(
            "[[viewer]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nriders = [{}]\n",
            riders.join(", ")
        ));
        self
    }

    /// The file's text.
    pub fn build(self) -> String {
        self.0
    }
}

/// A numeric `--name value` flag of a benchmark program, or `default`.
pub fn flag(name: &str, default: u64) -> u64 {
    text_flag(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The value of a `--name value` flag of a benchmark program, if given.
pub fn text_flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// SIGKILLs the process in `child`, if there is one, and forgets it.
pub(crate) async fn sigkill(child: &mut Option<Child>) {
    if let Some(mut running) = child.take() {
        let _ = running.kill().await;
    }
}

/// A result whose error is a message for the test log.
pub type Result<T> = std::result::Result<T, String>;

/// How long a test waits for something to happen before it fails: a server to start, a
/// reading to be stored, a frame to arrive. Generous, because the suite must stay green on
/// a machine whose cores are busy with other work (docs/testing.md); a wait ends as soon as
/// its event happens, so patience costs nothing when all is well.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Calls `check` every `every` until it gives `Some`, for at most [`PATIENCE`].
///
/// # Errors
/// "waited 120 s for {what}", with the last value `check` saw described by `last`, when it
/// never does.
pub async fn wait_until<T, F, Fut>(what: &str, every: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => {
                return Err(format!("waited {} s for {what}; last: {last}", PATIENCE.as_secs()))
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// A free TCP port on 127.0.0.1 at the time of the call.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16> {
    let listener = StdListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn require(program: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!("{program} is not installed: run deploy/local/test.sh, which installs it"))
    }
}

/// A running `nats-server` with JetStream enabled.
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
}

impl NatsServer {
    /// Starts `nats-server -js` and waits until it accepts connections.
    ///
    /// # Errors
    /// When `nats-server` is missing or does not come up.
    pub async fn start() -> Result<NatsServer> {
        NatsServer::start_with(free_port()?, "", "").await
    }

    /// Starts one whose JetStream store holds at most `bytes` (`max_file_store`), as on a
    /// small disk.
    ///
    /// # Errors
    /// When `nats-server` is missing or does not come up.
    pub async fn start_with_file_store(bytes: u64) -> Result<NatsServer> {
        NatsServer::start_with(free_port()?, &format!("max_file_store: {bytes}"), "").await
    }

    /// Starts a cluster of `size` servers, each with JetStream, routed to one another as in
    /// production; JetStream then elects its leader within a few seconds.
    ///
    /// # Errors
    /// When `nats-server` is missing or a server does not come up.
    pub async fn start_cluster(size: usize) -> Result<Vec<NatsServer>> {
        let client_ports = (0..size).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let route_ports = (0..size).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let routes: Vec<String> = route_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let mut servers = Vec::new();
        for (i, (&port, route_port)) in client_ports.iter().zip(&route_ports).enumerate() {
            let cluster = format!(
                "server_name: n{i}\ncluster {{ name: velometry, listen: \"127.0.0.1:{route_port}\", routes: [{}] }}\n",
                routes.join(", ")
            );
            servers.push(NatsServer::start_with(port, "", &cluster).await?);
        }
        Ok(servers)
    }

    /// Starts a server on `port`, with `jetstream` added to its JetStream block and
    /// `rest` to its configuration.
    async fn start_with(port: u16, jetstream: &str, rest: &str) -> Result<NatsServer> {
        require("nats-server")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = dir.path().join("js").display().to_string();
        std::fs::write(
            dir.path().join("nats.conf"),
            format!("jetstream {{ store_dir: {store:?}\n{jetstream} }}\n{rest}"),
        )
        .map_err(|e| e.to_string())?;
        let mut server = NatsServer { child: None, dir, port, url: format!("nats://127.0.0.1:{port}") };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<()> {
        let config = self.dir.path().join("nats.conf");
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start nats-server: {e}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            // A server that lost its port to another process exits: say so, rather than
            // take the other process for it.
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nats-server exited with {status} (port {})", self.port));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("waited {} s for nats-server to accept connections", PATIENCE.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the server, keeping its JetStream store.
    pub async fn kill(&mut self) {
        sigkill(&mut self.child).await;
    }

    /// Starts the server again on the same port and store.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.spawn().await
    }
}

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

/// A service of this workspace (collector, stream, query) run as a process, as in
/// production: started with flags, its ports read from the line it prints when ready
/// (`… listening on http://ADDR (metrics on http://ADDR/metrics)`), its log kept in a file.
pub struct Service {
    child: Option<Child>,
    binary: PathBuf,
    args: Vec<String>,
    logs: TempDir,
    starts: usize,
    /// Base URL of its main listener.
    pub url: String,
    /// URL of its `/metrics`.
    pub metrics_url: String,
}

impl Service {
    /// Starts `binary` with `args` (ask for port 0) and waits for its ready line.
    ///
    /// # Errors
    /// When it cannot start or exits first.
    pub async fn start(binary: PathBuf, args: Vec<String>) -> Result<Service> {
        let logs = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut service = Service {
            child: None,
            binary,
            args,
            logs,
            starts: 0,
            url: String::new(),
            metrics_url: String::new(),
        };
        service.spawn().await?;
        Ok(service)
    }

    async fn spawn(&mut self) -> Result<()> {
        use tokio::io::{AsyncBufReadExt, BufReader};
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).map_err(|e| e.to_string())?;
        let mut child = Command::new(&self.binary)
            .args(&self.args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = match tokio::time::timeout(PATIENCE, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                return Err(format!("{} exited before it was ready: {}", self.binary.display(), self.logs()))
            }
            Err(_) => {
                return Err(format!(
                    "{} printed no ready line within {} s: {}",
                    self.binary.display(),
                    PATIENCE.as_secs(),
                    self.logs()
                ))
            }
        };
        let mut urls =
            line.split_whitespace().filter(|w| w.contains("http://")).map(|u| u.trim_matches(['(', ')']));
        self.url = urls.next().ok_or_else(|| format!("no URL in {line:?}"))?.to_owned();
        self.metrics_url = urls.next().ok_or_else(|| format!("no metrics URL in {line:?}"))?.to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        Ok(())
    }

    /// Waits until its `/readyz` answers 200 (within [`PATIENCE`]).
    ///
    /// # Errors
    /// The last answer and the service's log, when it never does.
    pub async fn wait_ready(&self) -> Result<()> {
        let http = reqwest::Client::new();
        let what = format!("{} to be ready", self.binary.display());
        wait_until(&what, Duration::from_millis(50), || async {
            match http.get(format!("{}/readyz", self.url)).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{}: {}", r.status(), r.text().await.unwrap_or_default())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|e| format!("{e}\n{}", self.logs()))
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.logs.path().join(format!("run-{start}.log"))
    }

    /// Everything it logged, every run, for failure messages.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.log_path(i)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL: no flush, no goodbye.
    pub async fn kill(&mut self) {
        sigkill(&mut self.child).await;
    }

    /// SIGTERM, then waits up to [`PATIENCE`] for the exit.
    ///
    /// # Errors
    /// When it is not running or does not exit.
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let mut child = self.child.take().ok_or("not running")?;
        let pid = child.id().ok_or("no pid")?;
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(PATIENCE, child.wait()).await {
            Ok(status) => status.map_err(|e| e.to_string()),
            Err(_) => Err(format!("did not exit within {} s of SIGTERM", PATIENCE.as_secs())),
        }
    }

    /// Kills it and starts it again with the same flags (new ports).
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.spawn().await
    }

    /// Its metrics, as Prometheus text.
    ///
    /// # Errors
    /// When the scrape fails.
    pub async fn metrics(&self) -> Result<String> {
        reqwest::get(&self.metrics_url)
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())
    }
}

/// The sum of the samples of one metric (name with labels as a prefix) in Prometheus text.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name_and_labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A folder of the shared ride recordings (`$VELOMETRY_RIDES/<sub>`, read in place), or
/// `None` after printing that the test skipped, when the variable is unset.
pub fn rides(sub: &str) -> Option<PathBuf> {
    match std::env::var_os("VELOMETRY_RIDES") {
        Some(dir) => Some(PathBuf::from(dir).join(sub)),
        None => {
            println!(
                "skipped: VELOMETRY_RIDES is not set (the test command sets it to ../shared/data/rides)"
            );
            None
        }
    }
}

/// A time of the FIT SDK's CSV dumps, "Sun Sep 25 06:00:22 PDT 2011" (US Pacific), in UTC
/// nanoseconds.
///
/// # Panics
/// On any other shape: the ground truth files are fixed.
pub fn pacific_time(text: &str) -> crate::time::Nanos {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, month, day, clock, zone, year] = parts[..] else { panic!("odd time {text:?}") };
    let hours_behind_utc = match zone {
        "PDT" => 7,
        "PST" => 8,
        other => panic!("unknown zone {other} in {text:?}"),
    };
    let local =
        chrono::NaiveDateTime::parse_from_str(&format!("{year} {month} {day} {clock}"), "%Y %b %d %H:%M:%S")
            .unwrap_or_else(|e| panic!("odd time {text:?}: {e}"));
    (local.and_utc().timestamp() + hours_behind_utc * 3600) * 1_000_000_000
}

/// The rows of a FIT SDK CSV dump (no quoting in those files), each as column → value.
///
/// # Errors
/// When the file cannot be read.
pub fn csv_rows(path: &Path) -> Result<Vec<std::collections::BTreeMap<String, String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .map(|l| header.iter().zip(l.split(',')).map(|(k, v)| ((*k).to_owned(), v.to_owned())).collect())
        .collect())
}
