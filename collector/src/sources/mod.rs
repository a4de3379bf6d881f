//! Scheduled pollers: the data sources that do not push (web APIs, tracking pages), polled
//! by the collector itself instead of by cron jobs and scrapers beside it.
//!
//! A sources file (TOML, `collector serve --sources FILE`) lists them. Each has a name (its
//! device id and its metrics label), the rider its readings belong to, a schedule (`every`
//! or a `cron` expression), and settings of its kind. Secrets never sit in the file:
//! `${NAME}` in any string is replaced by the environment variable `NAME` at start.
//!
//! Every run hands its readings to the same durable path as HTTP ingest (log, then
//! InfluxDB), then saves what it has fetched so far (the source's state, a small JSON file
//! in `<wal-dir>/sources/`), so a restart does not fetch everything again. The state is also
//! kept in memory between runs: on a full disk nothing of it is lost while the collector
//! runs, and it is saved again at the next run. A 429 answer
//! postpones the next run until its `Retry-After`. Runs, readings, failures by reason and
//! the last success are exported as metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use velometry_core::ids::{DeviceId, RiderId};
use velometry_core::reading::Reading;
use velometry_core::riders::{DeviceIdentity, Registry};

use crate::ingest::Ingest;
use crate::metrics as m;

pub mod fitbit;
pub mod json_api;
pub mod oauth;
pub mod scraper;
pub mod strava;

/// A sources file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    #[serde(default)]
    source: Vec<toml::Table>,
}

/// When a source runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, the first run at start.
    Every(Duration),
    /// At the times of a cron expression (seconds first: `0 */5 * * * *`), in UTC.
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    /// How long until the next run.
    fn next(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(c) => {
                // The collector's clock, which never goes back: a step back of the machine's
                // clock does not run the same time of the schedule twice.
                let now = chrono::DateTime::from_timestamp_nanos(velometry_core::time::now_nanos());
                c.after(&now)
                    .next()
                    .and_then(|at| (at - now).to_std().ok())
                    .unwrap_or(Duration::from_secs(60))
            }
        }
    }
}

/// What every source has, whatever its kind.
#[derive(Debug, Clone)]
pub struct Common {
    /// The source's name: the device id of its readings and its metrics label.
    pub name: String,
    /// Whose readings they are.
    pub identity: DeviceIdentity,
    /// When it runs.
    pub schedule: Schedule,
}

/// A configured source.
pub struct Source {
    /// Name, rider, schedule.
    pub common: Common,
    poller: Poller,
}

/// Why a run failed: a bounded set, for the failures metric.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The provider did not answer.
    #[error("network: {0}")]
    Network(String),
    /// 429: wait this long (or the source's own back-off) before the next run.
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Option<Duration>),
    /// Credentials refused and not refreshable.
    #[error("auth: {0}")]
    Auth(String),
    /// 5xx.
    #[error("server: {0}")]
    Server(String),
    /// An answer we cannot read (a changed API, a changed page layout).
    #[error("unexpected answer: {0}")]
    BadResponse(String),
    /// The readings could not be made durable (the log is full or failing).
    #[error("not stored: {0}")]
    Storage(String),
}

impl Failure {
    /// The metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Network(_) => "network",
            Failure::RateLimited(_) => "rate_limited",
            Failure::Auth(_) => "auth",
            Failure::Server(_) => "server",
            Failure::BadResponse(_) => "bad_response",
            Failure::Storage(_) => "storage",
        }
    }

    /// The failure an HTTP answer's status means, or `None` for a success.
    pub fn of_status(response: &reqwest::Response) -> Option<Failure> {
        let status = response.status();
        match status.as_u16() {
            200..=299 => None,
            429 => Some(Failure::RateLimited(
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            )),
            401 | 403 => Some(Failure::Auth(format!("{status}"))),
            500..=599 => Some(Failure::Server(format!("{status}"))),
            _ => Some(Failure::BadResponse(format!("{status}"))),
        }
    }
}

/// The kinds of source. A run fetches what is new since the state it is given, updating the
/// state as it goes, and returns the readings; the caller stores them, then saves the state.
///
/// By convention a source keeps credentials that change (OAuth tokens, rotated at every
/// refresh) under the state's `"oauth"` key and its progress under other keys: the caller
/// saves `"oauth"` even when the run fails or its readings cannot be stored, and the
/// progress only once the readings are durable.
pub enum Poller {
    /// Any JSON API, mapped by JSON pointers.
    Json(json_api::JsonApi),
    /// A live-tracking page without an API, read with CSS selectors.
    Scraper(scraper::Scraper),
    /// Fitbit's Web API.
    Fitbit(fitbit::Fitbit),
    /// Strava's API.
    Strava(strava::Strava),
}

impl Poller {
    /// The kind's name: the `source` tag of its readings and the protocol label of the
    /// ingest metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Poller::Json(_) => json_api::KIND,
            Poller::Scraper(_) => scraper::KIND,
            Poller::Fitbit(_) => fitbit::KIND,
            Poller::Strava(_) => strava::KIND,
        }
    }

    /// Tells the kinds that hold rotating credentials where the source's state is saved.
    fn keep_state_in(&self, path: &Path) {
        match self {
            Poller::Fitbit(p) => p.oauth().keep_in(path.to_owned()),
            Poller::Strava(p) => p.oauth().keep_in(path.to_owned()),
            Poller::Json(_) | Poller::Scraper(_) => {}
        }
    }

    async fn run(&self, state: &mut serde_json::Value) -> Result<Vec<Reading>, Failure> {
        match self {
            Poller::Json(p) => p.run(state).await,
            Poller::Scraper(p) => p.run(state).await,
            Poller::Fitbit(p) => p.run(state).await,
            Poller::Strava(p) => p.run(state).await,
        }
    }
}

/// The HTTP client every source fetches with: bounded connect and request times, and a
/// user agent that names us to the provider.
///
/// # Errors
/// When TLS cannot be set up.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("velometry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Reads a sources file against the riders file.
///
/// # Errors
/// A message naming the file, the source and the setting to fix.
pub fn load(path: &Path, registry: &Registry) -> Result<Vec<Source>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&path.display().to_string(), &text, registry)
}

/// Reads the text of a sources file, named `name` in messages, against the riders file.
///
/// # Errors
/// As [`load`].
pub fn parse(name: &str, text: &str, registry: &Registry) -> Result<Vec<Source>, String> {
    let file: SourcesFile = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let mut names = std::collections::BTreeSet::new();
    let mut sources = Vec::new();
    for (i, mut table) in file.source.into_iter().enumerate() {
        expand_env(&mut table).map_err(|e| format!("{name}: source {}: {e}", i + 1))?;
        let source = build(table, registry).map_err(|e| format!("{name}: source {}: {e}", i + 1))?;
        if !names.insert(source.common.name.clone()) {
            return Err(format!("{name}: two sources are named {:?}", source.common.name));
        }
        sources.push(source);
    }
    Ok(sources)
}

fn build(mut table: toml::Table, registry: &Registry) -> Result<Source, String> {
    let mut take = |key: &str| table.remove(key);
    let text = |v: Option<toml::Value>, key: &str| -> Result<String, String> {
        match v {
            Some(toml::Value::String(s)) => Ok(s),
            Some(_) => Err(format!("{key} must be a string")),
            None => Err(format!("{key} is missing")),
        }
    };
    let name = text(take("name"), "name")?;
    let device = DeviceId::parse(&name).map_err(|e| format!("name {name:?}: {e}"))?;
    let rider_name = text(take("rider"), "rider")?;
    let rider = RiderId::parse(&rider_name)
        .ok()
        .filter(|id| registry.rider(id).is_some())
        .ok_or_else(|| format!("{name}: rider {rider_name:?} is not in the riders file"))?;
    let schedule = match (take("every"), take("cron")) {
        (Some(every), None) => {
            let every = text(Some(every), "every")?;
            let d = humantime::parse_duration(&every).map_err(|e| format!("{name}: every {every:?}: {e}"))?;
            if d < Duration::from_secs(1) {
                return Err(format!("{name}: every {every:?} is shorter than a second"));
            }
            Schedule::Every(d)
        }
        (None, Some(cron)) => {
            let cron = text(Some(cron), "cron")?;
            Schedule::Cron(Box::new(cron::Schedule::from_str(&cron).map_err(|e| {
                format!("{name}: cron {cron:?}: {e} (six fields, seconds first: \"0 */5 * * * *\")")
            })?))
        }
        _ => return Err(format!("{name}: give exactly one of every (\"5m\") or cron (\"0 */5 * * * *\")")),
    };
    let kind = text(take("kind"), "kind")?;
    let rest = toml::Value::Table(table);
    let poller = match kind.as_str() {
        "json" => Poller::Json(json_api::JsonApi::from_config(rest).map_err(|e| format!("{name}: {e}"))?),
        "scraper" => {
            Poller::Scraper(scraper::Scraper::from_config(rest).map_err(|e| format!("{name}: {e}"))?)
        }
        "fitbit" => Poller::Fitbit(fitbit::Fitbit::from_config(rest).map_err(|e| format!("{name}: {e}"))?),
        "strava" => Poller::Strava(strava::Strava::from_config(rest).map_err(|e| format!("{name}: {e}"))?),
        other => return Err(format!("{name}: kind {other:?} is not one of json, scraper, fitbit, strava")),
    };
    Ok(Source { common: Common { name, identity: DeviceIdentity { rider, device }, schedule }, poller })
}

/// Replaces `${NAME}` in every string with the environment variable `NAME`.
fn expand_env(table: &mut toml::Table) -> Result<(), String> {
    fn expand(value: &mut toml::Value) -> Result<(), String> {
        match value {
            toml::Value::String(s) => {
                let mut out = String::with_capacity(s.len());
                let mut rest = s.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let after = &rest[start + 2..];
                    let end = after.find('}').ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
                    let name = &after[..end];
                    let value = std::env::var(name).map_err(|_| {
                        format!("environment variable {name} is not set (used as ${{{name}}})")
                    })?;
                    out.push_str(&value);
                    rest = &after[end + 1..];
                }
                out.push_str(rest);
                *s = out;
            }
            toml::Value::Array(items) => items.iter_mut().try_for_each(expand)?,
            toml::Value::Table(t) => t.iter_mut().try_for_each(|(_, v)| expand(v))?,
            _ => {}
        }
        Ok(())
    }
    table.iter_mut().try_for_each(|(_, v)| expand(v))
}

/// Runs every source on its schedule until `stop` turns true.
pub fn spawn(
    sources: Vec<Source>,
    ingest: Ingest,
    state_dir: PathBuf,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        tasks.spawn(run(Arc::new(source), ingest.clone(), state_dir.clone(), stop.clone()));
    }
    tasks
}

async fn run(source: Arc<Source>, ingest: Ingest, state_dir: PathBuf, mut stop: watch::Receiver<bool>) {
    let name = source.common.name.clone();
    let path = state_dir.join(format!("{name}.json"));
    source.poller.keep_state_in(&path);
    // Kept in memory from run to run, and saved after each: a state that cannot be saved (a
    // full disk) is not lost with the run, so a refresh token rotated meanwhile, which the
    // provider no longer takes in its old form, is still used by the next run.
    let mut state = load_state(&path);
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = velometry_core::shutdown::stopped(&mut stop) => return,
        }
        wait = source.common.schedule.next();
        match once(&source, &ingest, &path, &mut state).await {
            Ok(n) => {
                m::source_run(&name, n);
                tracing::debug!(source = %name, readings = n, "Source polled.");
            }
            Err(failure) => {
                m::source_failure(&name, failure.reason());
                if let Failure::RateLimited(after) = &failure {
                    wait = wait.max(after.unwrap_or(Duration::from_secs(60)));
                }
                tracing::warn!(source = %name, error = %failure, next_in = ?wait, "Source run failed.");
            }
        }
    }
}

/// One run from `saved`: fetch, store, then remember (in `saved`, and on disk).
async fn once(
    source: &Source,
    ingest: &Ingest,
    path: &Path,
    saved: &mut serde_json::Value,
) -> Result<usize, Failure> {
    let before = saved.clone();
    let mut state = before.clone();
    let fetched = source.poller.run(&mut state).await;
    let stored = match fetched {
        // Stored before the progress moves on: a crash in between fetches the same readings
        // again, which rewrites the same points.
        Ok(readings) => ingest
            .commit(source.poller.kind(), &source.common.identity, &readings)
            .await
            .map(|()| readings.len())
            .map_err(|e| Failure::Storage(e.to_string())),
        Err(failure) => Err(failure),
    };
    *saved = match &stored {
        Ok(_) => state,
        // Rotated credentials are kept whatever happened; progress only with its readings.
        Err(_) => with_oauth(before, &state),
    };
    save_state(path, saved).map_err(|e| Failure::Storage(format!("cannot save {}: {e}", path.display())))?;
    stored
}

/// `state` with the `"oauth"` entry of `newer`.
pub(super) fn with_oauth(mut state: serde_json::Value, newer: &serde_json::Value) -> serde_json::Value {
    if let Some(oauth) = newer.get("oauth") {
        if !state.is_object() {
            state = serde_json::Value::Object(serde_json::Map::new());
        }
        if let Some(object) = state.as_object_mut() {
            object.insert("oauth".into(), oauth.clone());
        }
    }
    state
}

pub(super) fn load_state(path: &Path) -> serde_json::Value {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Writes `state` atomically (a temporary file renamed over the old one, both synced).
pub(super) fn save_state(path: &Path, state: &serde_json::Value) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    // It may hold OAuth tokens: readable by the collector's user only.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?
    };
    file.write_all(serde_json::to_string_pretty(state).unwrap_or_default().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The sources' names, for start-up logs.
pub fn names(sources: &[Source]) -> BTreeMap<String, String> {
    sources.iter().map(|s| (s.common.name.clone(), s.poller.kind().to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_examples_load() {
        let registry = Registry::parse("[[rider]]\nid = \"demo\"\n").expect("riders");
        std::env::set_var("BP_CUFF_TOKEN", "x");
        std::env::set_var("FOOD_LOG_API_KEY", "y");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sources");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).expect("deploy/sources") {
            let path = entry.expect("entry").path();
            let sources = load(&path, &registry).unwrap_or_else(|e| panic!("{e}"));
            assert!(!sources.is_empty(), "{}", path.display());
            loaded += sources.len();
        }
        assert!(loaded >= 2);
    }

    #[tokio::test]
    async fn a_state_that_cannot_be_saved_is_kept_for_the_next_run() {
        use axum::extract::{Query, State};
        use std::sync::Mutex;
        // A JSON API that remembers each `since` it is asked with.
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/m",
                axum::routing::get(
                    |State(asked): State<Arc<Mutex<Vec<String>>>>,
                     Query(q): Query<BTreeMap<String, String>>| async move {
                        asked.lock().expect("lock").push(q.get("since").cloned().unwrap_or_default());
                        axum::Json(
                            serde_json::json!({"m": [{"t": "2026-01-01T00:00:00Z", "s": 120, "d": 80}]}),
                        )
                    },
                ),
            )
            .with_state(asked.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/m?since={{since}}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let registry = Registry::parse("[[rider]]\nid = \"alice\"\n").expect("riders");
        let table: toml::Table = toml::from_str(&format!(
            "name = \"cuff\"\nkind = \"json\"\nrider = \"alice\"\nevery = \"1h\"\nurl = \"{url}\"\n\
             items = \"/m\"\nmetric = \"blood_pressure\"\ntime = \"/t\"\nfields = {{ systolic = \"/s\", diastolic = \"/d\" }}"
        ))
        .expect("toml");
        let source = build(table, &registry).expect("source");
        let dir = tempfile::tempdir().expect("tempdir");
        let options = crate::wal::WalOptions {
            dir: dir.path().join("wal"),
            max_bytes: 1 << 20,
            segment_bytes: 1 << 20,
            memory_bytes: 1 << 20,
        };
        let (wal, _readers) = crate::wal::Wal::open(&options, &["test"]).expect("wal");
        let letters = crate::ingest::device::DeviceLetters::new(dir.path().join("dead.jsonl"));
        let ingest = Ingest::new(wal, None, Duration::from_secs(600), Duration::from_secs(300), letters);
        // The state's folder is a file: no save can succeed, as on a full disk.
        std::fs::write(dir.path().join("sources"), "not a folder").expect("file");
        let path = dir.path().join("sources").join("cuff.json");

        let mut state = load_state(&path);
        let first = once(&source, &ingest, &path, &mut state).await;
        assert!(matches!(first, Err(Failure::Storage(_))), "the save failed: {first:?}");
        let second = once(&source, &ingest, &path, &mut state).await;
        assert!(matches!(second, Err(Failure::Storage(_))));
        let asked = asked.lock().expect("lock").clone();
        assert_eq!(asked, ["", "2026-01-01T00:00:00.000Z"], "the second run goes on from the first");
    }

    #[test]
    fn secrets_come_from_the_environment() {
        std::env::set_var("VELOMETRY_TEST_SECRET", "s3cret");
        let mut table: toml::Table = toml::from_str(
            "a = \"Bearer ${VELOMETRY_TEST_SECRET}!\"\nb = { c = [\"${VELOMETRY_TEST_SECRET}\"] }",
        )
        .expect("toml");
        expand_env(&mut table).expect("expands");
        assert_eq!(table["a"].as_str(), Some("Bearer s3cret!"));
        assert_eq!(table["b"]["c"][0].as_str(), Some("s3cret"));
        let mut missing: toml::Table = toml::from_str("a = \"${VELOMETRY_TEST_NOT_SET}\"").expect("toml");
        assert!(expand_env(&mut missing).is_err_and(|e| e.contains("VELOMETRY_TEST_NOT_SET is not set")));
    }
}
