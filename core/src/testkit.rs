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

pub mod browser;
pub mod courses;
mod influx;
mod nats;
mod prometheus;
mod riders_toml;

pub use courses::{course_gpx, example_course_gpx, write_course_gpx};
pub use influx::{InfluxServer, INFLUX_CACHE_SNAPSHOT};
pub use nats::NatsServer;
pub use prometheus::{PrometheusServer, VictoriaMetrics};
pub use riders_toml::RidersToml;

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

/// Calls `check` every `every` until it gives `Ok`, for at most [`PATIENCE`].
///
/// # Errors
/// "waited 120 s for {what}", with the last error `check` gave, when it never gives `Ok`.
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

pub(crate) fn require(program: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!("{program} is not installed: run deploy/local/test.sh, which installs it"))
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

/// Posts `readings` to a collector's `POST /v1/readings` with the device `token`, a
/// thousand per request, as a phone syncing a stored ride does; gives how many.
///
/// # Panics
/// When the collector does not answer or refuses them: the tests that use it send what it
/// takes.
pub async fn post_readings(
    http: &reqwest::Client,
    collector: &str,
    token: &str,
    readings: &[serde_json::Value],
) -> usize {
    for chunk in readings.chunks(1_000) {
        let r = http
            .post(format!("{collector}/v1/readings"))
            .header("Authorization", format!("Token {token}"))
            .json(chunk)
            .send()
            .await
            .expect("the collector answers");
        assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    readings.len()
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
