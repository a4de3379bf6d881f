//! `collector replay`: live traffic through a collector's public ingest API, as phones and
//! bike computers send it — one JSON request per device per second of riding.
//!
//! - `replay FILE --token T --speed 10` plays a recorded ride at ten times real time, its
//!   timestamps shifted so that it starts now.
//! - `replay --synthetic --token T1 --token T2 …` rides one simulated rider per token
//!   ([`crate::simulate`]); `--seed` repeats a run.
//! - `replay --synthetic --course route.gpx …` rides that course instead, for days if it is
//!   long ([`crate::simulate::course`]): stops, nights, noise, dropouts, a shortcut, a wrong
//!   turn. `--truth truth.json` writes the ground truth beside; `--output ride.jsonl` writes
//!   the fixes to a file at once (no waiting, no collector) instead of sending them.
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
use crate::simulate::course::{RideOptions, SimFix};
use crate::simulate::{self, Rider};

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
        required_unless_present = "output"
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
    /// With --synthetic: ride this course (a GPX track or route) for as long as it takes,
    /// instead of loops of the simulator's own.
    #[arg(long, requires = "synthetic")]
    pub course: Option<PathBuf>,
    /// With --course: seconds between the fixes a simulated phone sends.
    #[arg(long, default_value_t = 10, requires = "course")]
    pub fix_every: u32,
    /// With --course: when the ride starts (RFC 3339); now when not given.
    #[arg(long, requires = "course", value_parser = velometry_core::time::parse_rfc3339)]
    pub start: Option<i64>,
    /// With --course: write the ground truth here (JSON: a row per fix slot with the true
    /// distance along the course, the stops, the dropouts, the shortcut and wrong turn).
    #[arg(long, requires = "course")]
    pub truth: Option<PathBuf>,
    /// With --course: write the fixes here, one `/v1/readings` object a line, at once,
    /// instead of sending them (one rider).
    #[arg(long, requires = "course")]
    pub output: Option<PathBuf>,
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
    if let Some(path) = &args.course {
        let course = read_course(path)?;
        let start = args.start.unwrap_or_else(now_nanos);
        let riders = args.tokens.len().max(1);
        if (args.output.is_some() || args.truth.is_some()) && riders > 1 {
            anyhow::bail!("--output and --truth are for one rider: give at most one --token");
        }
        for index in 0..riders {
            let mut options = RideOptions::new(args.seed.wrapping_add(index as u64), start);
            options.fix_every_s = args.fix_every.max(1);
            let ride = simulate::course::ride(&course, &options);
            if let Some(truth) = &args.truth {
                let file = std::fs::File::create(truth)
                    .with_context(|| format!("cannot create {}", truth.display()))?;
                serde_json::to_writer(std::io::BufWriter::new(file), &ride.truth)
                    .with_context(|| format!("cannot write {}", truth.display()))?;
            }
            if let Some(output) = &args.output {
                write_fixes(output, &ride.fixes)?;
                eprintln!(
                    "Wrote {} fixes over {:.1} h of riding {:.0} km to {}.",
                    ride.fixes.len(),
                    ride.fixes.last().map_or(0, |f| f.time - start) as f64 / 3.6e12,
                    course.length_m() / 1_000.0,
                    output.display()
                );
                return Ok(());
            }
            tasks.spawn(course_ride(
                ride.fixes,
                Device::new(&http, &url, &args.tokens[index], &counts),
                args.speed,
            ));
        }
        eprintln!(
            "Riding {} ({:.0} km) with {riders} simulated rider(s) at {}× real time; Ctrl-C stops.",
            path.display(),
            course.length_m() / 1_000.0,
            args.speed
        );
    } else if args.synthetic {
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

/// A course from a GPX file: its tracks' points, or its routes' when it has no track.
///
/// The simulator's own reader until the events' course files (GPX, TCX, FIT courses) are
/// read in one place for every service.
fn read_course(path: &std::path::Path) -> anyhow::Result<velometry_core::course::Course> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let gpx =
        gpx::read(std::io::BufReader::new(file)).with_context(|| format!("{}: not GPX", path.display()))?;
    let track = gpx.tracks.iter().flat_map(|t| &t.segments).flat_map(|s| &s.points);
    let route = gpx.routes.iter().flat_map(|r| &r.points);
    let points: Vec<_> = if gpx.tracks.is_empty() { route.collect() } else { track.collect() };
    let course = velometry_core::course::Course::new(
        points.iter().map(|p| (p.point().y(), p.point().x(), p.elevation)),
    )
    .with_context(|| format!("{}: no course", path.display()))?;
    Ok(course)
}

fn write_fixes(path: &std::path::Path, fixes: &[SimFix]) -> anyhow::Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for fix in fixes {
        serde_json::to_writer(&mut out, &fix.reading_at(fix.time))?;
        out.write_all(b"\n")?;
    }
    out.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// Sends a simulated course ride live: each fix when its time comes (at `speed`× real time,
/// shifted to start now).
async fn course_ride(fixes: Vec<SimFix>, device: Device, speed: f64) {
    let Some(first) = fixes.first().map(|f| f.time) else { return };
    let started = Instant::now();
    let start_ns = now_nanos();
    for fix in &fixes {
        let offset = Duration::from_secs_f64((fix.time - first) as f64 / 1e9 / speed);
        tokio::time::sleep_until(started + offset).await;
        device.send(vec![fix.reading_at(start_ns + offset.as_nanos() as i64)]).await;
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

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use clap::Parser;
    use velometry_core::testkit::courses;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::simulate::course::Truth;

    #[tokio::test]
    async fn a_simulated_course_ride_is_written_to_files_at_once() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let course = courses::loop_course(3);
        let mut gpx = String::from(r#"<?xml version="1.0"?><gpx version="1.1" creator="test"><trk><trkseg>"#);
        for p in course.points() {
            let ele = p.ele.unwrap_or(0.0);
            write!(gpx, r#"<trkpt lat="{}" lon="{}"><ele>{ele}</ele></trkpt>"#, p.lat, p.lon)
                .expect("a string");
        }
        gpx.push_str("</trkseg></trk></gpx>");
        let (course_path, output, truth) =
            (dir.path().join("loop.gpx"), dir.path().join("ride.jsonl"), dir.path().join("truth.json"));
        std::fs::write(&course_path, gpx).expect("written");
        let cli = Cli::try_parse_from([
            "collector".as_ref(),
            "replay".as_ref(),
            "--synthetic".as_ref(),
            "--course".as_ref(),
            course_path.as_os_str(),
            "--start".as_ref(),
            "2026-07-01T06:00:00Z".as_ref(),
            "--output".as_ref(),
            output.as_os_str(),
            "--truth".as_ref(),
            truth.as_os_str(),
        ])
        .expect("the flags parse");
        let Command::Replay(args) = cli.command else { panic!("replay") };
        run(args, std::future::pending()).await.expect("written");
        let lines = std::fs::read_to_string(&output).expect("the fixes");
        let first: Value = serde_json::from_str(lines.lines().next().expect("a line")).expect("JSON");
        assert_eq!(first["metric"], "gps");
        assert_eq!(first["time"], 1_782_885_610_000_i64, "the first fix 10 s after the start, in ms");
        let truth: Truth = serde_json::from_slice(&std::fs::read(&truth).expect("the truth")).expect("JSON");
        assert_eq!(lines.lines().count(), truth.rows.iter().filter(|r| r.sent).count());
        let last = truth.rows.last().expect("rows");
        assert!((last.distance_m - course.length_m()).abs() < 1.0, "ridden to the end");
    }
}
