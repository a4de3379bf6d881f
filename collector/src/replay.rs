//! `collector replay`: live traffic through a collector's public ingest API, as phones and
//! bike computers send it — one JSON request per device per second of riding.
//!
//! - `replay FILE --token T --speed 10` plays a recorded ride at ten times real time, its
//!   timestamps shifted so that it starts now.
//! - `replay --synthetic --token T1 --token T2 …` rides one simulated rider per token
//!   ([`crate::simulate`]); `--seed` repeats a run.
//!
//! A request that fails (the collector restarting, 503 while its log is full) is counted and
//! the ride goes on, as a device's would; a summary is printed at the end, or every ten
//! seconds while it runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Map, Value};
use tokio::time::Instant;
use velometry_core::reading::Metric;
use velometry_core::time::now_nanos;

use crate::import::files;
use crate::simulate::Rider;

/// Flags of `collector replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The collector to send to (its ingest listener).
    #[arg(long, env = "VELOMETRY_TARGET", default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Device token; with --synthetic, one simulated rider per token (repeat the flag, or
    /// give a comma-separated list in the variable).
    #[arg(
        long = "token",
        env = "VELOMETRY_TOKENS",
        hide_env_values = true,
        value_delimiter = ',',
        required = true
    )]
    pub tokens: Vec<String>,
    /// Simulated riders instead of a file.
    #[arg(long, conflicts_with = "file")]
    pub synthetic: bool,
    /// Seed of the simulated riders: the same seed rides the same rides.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Times real time: 10 sends ten seconds of riding every second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Stop after this long (wall clock); a file stops at its end anyway.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// The ride file to play (FIT, GPX or TCX, optionally gzipped).
    #[arg(required_unless_present = "synthetic")]
    pub file: Option<PathBuf>,
}

/// What was sent, shared by the riders' tasks.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    readings: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "{} requests, {} readings sent, {} requests failed",
            self.requests.load(Ordering::Relaxed),
            self.readings.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

/// Runs the replay until the file ends, `--duration` passes or `stop` resolves.
///
/// # Errors
/// A bad flag, an unreadable file, an HTTP client that cannot be built.
pub async fn run(args: ReplayArgs, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    if !(args.speed > 0.0 && args.speed <= 1_000.0) {
        anyhow::bail!("--speed {} must be above 0 and at most 1000", args.speed);
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;
    let url = format!("{}/v1/readings", args.target.trim_end_matches('/'));
    let counts = Arc::new(Counts::default());
    let every = Duration::from_secs_f64(1.0 / args.speed);
    let mut tasks = tokio::task::JoinSet::new();
    if args.synthetic {
        for (index, token) in args.tokens.iter().enumerate() {
            let rider = Rider::new(args.seed, index as u64);
            tasks.spawn(synthetic(rider, Device::new(&http, &url, token, &counts), every));
        }
        eprintln!(
            "Riding {} simulated rider(s) at {}× real time; Ctrl-C stops.",
            args.tokens.len(),
            args.speed
        );
    } else {
        let path = args.file.as_ref().context("give a ride file, or --synthetic")?;
        let [token] = args.tokens.as_slice() else {
            anyhow::bail!("a file is replayed as one device: give one --token");
        };
        let file = files::read(path, now_nanos())?;
        if let Some(damage) = &file.damage {
            eprintln!("warning: {}: {damage}; the ride up to there is replayed", path.display());
        }
        let seconds = match (file.first, file.last) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => anyhow::bail!("{}: no timed records to replay", path.display()),
        };
        eprintln!(
            "Replaying {} ({} readings over {:.0} s of riding) at {}× real time.",
            path.display(),
            file.readings.len(),
            seconds,
            args.speed
        );
        tasks.spawn(recorded(file, Device::new(&http, &url, token, &counts), args.speed));
    }
    let deadline = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let status = async {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            eprintln!("  {}", counts.line());
        }
    };
    tokio::select! {
        () = stop => {}
        () = deadline => {}
        () = status => {}
        _ = async { while tasks.join_next().await.is_some() {} } => {}
    }
    tasks.abort_all();
    println!("{}", counts.line());
    Ok(())
}

/// One device: its token and the collector it sends to.
struct Device {
    http: reqwest::Client,
    url: String,
    token: String,
    counts: Arc<Counts>,
}

impl Device {
    fn new(http: &reqwest::Client, url: &str, token: &str, counts: &Arc<Counts>) -> Device {
        Device { http: http.clone(), url: url.to_owned(), token: token.to_owned(), counts: counts.clone() }
    }

    /// Sends one request of readings; failures are counted, not fatal.
    async fn send(&self, readings: Vec<Value>) {
        let n = readings.len() as u64;
        let outcome = self
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, format!("Token {}", self.token))
            .json(&readings)
            .send()
            .await;
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(r) if r.status().is_success() => {
                self.counts.readings.fetch_add(n, Ordering::Relaxed);
            }
            Ok(r) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                if r.status().as_u16() == 401 {
                    eprintln!(
                        "the collector refused token {}…: is it a device token of the riders file?",
                        prefix(&self.token)
                    );
                }
            }
            Err(_) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn prefix(token: &str) -> &str {
    token.get(..token.len().min(9)).unwrap_or(token)
}

/// One reading as `/v1/readings` takes it.
fn reading(metric: Metric, time_ns: i64, fields: impl IntoIterator<Item = (String, f64)>) -> Value {
    let mut object = Map::new();
    object.insert("metric".into(), json!(metric.name()));
    object.insert("time".into(), json!(time_ns / 1_000_000));
    for (name, value) in fields {
        object.insert(name, json!(value));
    }
    Value::Object(object)
}

async fn synthetic(mut rider: Rider, device: Device, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = now_nanos();
        let readings = rider
            .tick()
            .into_iter()
            .map(|(metric, fields)| reading(metric, now, fields.into_iter().map(|(k, v)| (k.to_owned(), v))))
            .collect();
        device.send(readings).await;
    }
}

async fn recorded(file: files::FileReadings, device: Device, speed: f64) {
    // The readings of each recorded instant go together, as the device sent them.
    let mut instants: BTreeMap<i64, Vec<&velometry_core::reading::Reading>> = BTreeMap::new();
    for r in &file.readings {
        instants.entry(r.time()).or_default().push(r);
    }
    let Some(&first) = instants.keys().next() else { return };
    let started = Instant::now();
    let start_ns = now_nanos();
    for (time, readings) in instants {
        let offset = Duration::from_secs_f64((time - first) as f64 / 1e9 / speed);
        tokio::time::sleep_until(started + offset).await;
        let shifted = start_ns + offset.as_nanos() as i64;
        let body = readings
            .into_iter()
            .map(|r| reading(r.metric(), shifted, r.fields().map(|(k, v)| (k.to_owned(), v))))
            .collect();
        device.send(body).await;
    }
}
