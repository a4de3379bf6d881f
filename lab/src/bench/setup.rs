//! The stack a benchmark runs against: one started here, its riders given history and
//! progress before the first scenario, or one already running elsewhere.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context};
use velometry_collector::simulate::Rider;
use velometry_core::testkit::{cpu_time, metric};

use super::k6::Target;
use super::{report, Args, Scenario};
use crate::stack::{binary, Fleet, Stack, EVENT, EVENT_STARTED_AGO, SERVICE_TOKEN};

/// What keeps the started stack going for the run.
pub(super) struct Running {
    stack: Stack,
    _riders: tokio::process::Child,
}

impl Running {
    /// Every entrant of the fleet's event.
    pub(super) fn entrants(&self) -> Vec<String> {
        self.stack.fleet.riders()
    }

    /// The started processes, named, for their CPU time.
    pub(super) fn processes(&self) -> Vec<(&'static str, Option<u32>)> {
        let mut all = vec![
            ("InfluxDB", self.stack.influx.pid()),
            ("collector", self.stack.collector.pid()),
            ("query", self.stack.query.pid()),
        ];
        all.extend(self.stack.streams.iter().map(|s| ("hub", s.pid())));
        all
    }

    /// Waits until the collector has stored everything it took and InfluxDB has gone quiet
    /// (its compactions done), so that a scenario does not pay for the one before it.
    pub(super) async fn settle(&self) {
        println!("Waiting for the collector's log to drain and InfluxDB to go quiet …");
        for _ in 0..300 {
            let drained =
                self.stack.collector.metrics().await.is_ok_and(|m| metric(&m, "collector_wal_bytes") == 0.0);
            if drained {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let pid = self.stack.influx.pid();
        for _ in 0..60 {
            let before = cpu_time(pid);
            tokio::time::sleep(Duration::from_secs(5)).await;
            // Under a quarter of a core over those five seconds.
            if cpu_time(pid) - before < Duration::from_millis(1_250) {
                return;
            }
        }
    }
}

pub(super) fn running_target(args: &Args, collector: &str) -> anyhow::Result<Target> {
    let path = args.tokens_file.as_ref().context("--tokens-file is required with --collector-url")?;
    let tokens: Vec<String> = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        bail!("{} holds no tokens (one per line)", path.display());
    }
    Ok(Target {
        collector: collector.to_owned(),
        query: args.query_url.clone().context("--query-url is required with --collector-url")?,
        stream: args.stream_url.clone().context("--stream-url is required with --collector-url")?,
        tokens,
        riders: args.rider.clone(),
    })
}

pub(super) async fn start(args: &Args) -> anyhow::Result<(Target, Running)> {
    if args.history_riders > args.riders || args.live_riders > args.riders {
        bail!("--history-riders and --live-riders must be at most --riders ({})", args.riders);
    }
    let fleet = Fleet { riders: args.riders, devices: args.devices };
    println!("Starting InfluxDB, NATS, the collector, the query service and a stream hub …");
    let stack = Stack::start(fleet, 1, &args.influx_cache_snapshot).await?;
    let stream = stack.streams.first().context("no stream hub")?.url.clone();
    println!(
        "collector {} · query {} · stream {} · InfluxDB {}",
        stack.collector.url, stack.query.url, stream, stack.influx.url
    );
    seed_history(&stack, args).await?;
    if args
        .scenarios
        .iter()
        .any(|s| matches!(s, Scenario::Standings | Scenario::Page | Scenario::Spectators | Scenario::All))
    {
        seed_progress(&stack).await?;
    }
    let live: Vec<String> = fleet.first_tokens().into_iter().take(args.live_riders).collect();
    let riders = tokio::process::Command::new(binary("collector")?)
        .args(["replay", "--synthetic", "--target", &stack.collector.url, "--seed", "7"])
        .args(live.iter().flat_map(|t| ["--token", t.as_str()]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the simulated riders (collector replay --synthetic)")?;
    println!("{} simulated riders riding.", live.len());
    let target = Target {
        collector: stack.collector.url.clone(),
        query: stack.query.url.clone(),
        stream,
        tokens: fleet.tokens(),
        riders: fleet.riders().into_iter().take(args.history_riders.max(1)).collect(),
    };
    Ok((target, Running { stack, _riders: riders }))
}

/// Writes `--history-hours` of simulated 1 Hz riding, ending now, for the first
/// `--history-riders` riders through the collector (as an import), then waits until it is
/// in InfluxDB and rolled up.
async fn seed_history(stack: &Stack, args: &Args) -> anyhow::Result<()> {
    let seconds = args.history_hours * 3_600;
    let tokens = stack.fleet.first_tokens();
    let http = reqwest::Client::new();
    let now = velometry_core::time::now_nanos() / 1_000_000_000;
    let url = format!("{}/write?precision=s&source=import", stack.collector.url);
    let mut lines = 0u64;
    for (index, token) in tokens.iter().take(args.history_riders).enumerate() {
        let mut rider = Rider::new(11, index as u64);
        let mut batch = String::new();
        for s in 0..seconds {
            let time = now - (seconds - s) as i64;
            for (metric, fields) in rider.tick() {
                batch.push_str(metric.name());
                for (i, (name, value)) in fields.iter().enumerate() {
                    let _ = write!(batch, "{}{name}={value}", if i == 0 { ' ' } else { ',' });
                }
                let _ = writeln!(batch, " {time}");
                lines += 1;
            }
            if batch.len() > 256 * 1024 || s + 1 == seconds {
                let body = std::mem::take(&mut batch);
                let answer = http
                    .post(&url)
                    .header("Authorization", format!("Token {token}"))
                    .body(body)
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!("the collector refused history: {} {}", answer.status(), answer.text().await?);
                }
            }
        }
        println!("  history: rider {index}: {} hours written", args.history_hours);
    }
    println!(
        "Waiting until InfluxDB holds the {} lines of history and the rollups have run …",
        report::thousands(lines as f64)
    );
    let cycles = |text: &str| metric(text, "query_rollup_cycles_total{outcome=\"ok\"}");
    let mut drained_at = None;
    for _ in 0..600 {
        let collector = stack.collector.metrics().await.map_err(anyhow::Error::msg)?;
        let query = stack.query.metrics().await.map_err(anyhow::Error::msg)?;
        match drained_at {
            None if metric(&collector, "collector_wal_bytes") == 0.0 => drained_at = Some(cycles(&query)),
            Some(then) if cycles(&query) >= then + 2.0 => return Ok(()),
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("history was not stored and rolled up within 10 minutes")
}

/// Every rider's progress along the event's course for the half hour before now, a reading
/// every 10 s as the progress service writes them (through the collector's derived route,
/// with the fleet's service token), at speeds from 5 to 10 m/s since the start; then waits
/// until InfluxDB holds it.
async fn seed_progress(stack: &Stack) -> anyhow::Result<()> {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    let code = velometry_core::event::status::event_code(
        &velometry_core::ids::EventId::parse(EVENT).context("the fleet's event id")?,
    );
    let now = velometry_core::time::now_nanos() / 1_000_000_000;
    let started = now - EVENT_STARTED_AGO.as_secs() as i64;
    let riders = stack.fleet.riders();
    println!("Writing 30 minutes of progress for the {} entrants of {EVENT} …", riders.len());
    let requests = riders.iter().enumerate().map(|(index, rider)| {
        let speed = 5.0 + 5.0 * (index as f64 * 0.618_034).fract();
        let readings: Vec<serde_json::Value> = (0..180)
            .map(|i| {
                let t = now - 1_800 + i * 10;
                let along = (t - started) as f64 * speed;
                serde_json::json!({
                    "metric": "course_progress", "time": t * 1_000, "event": code,
                    "current_m": along, "progress_m": along, "to_go_m": 1_000_000.0 - along,
                    "from_course_m": 5.0, "off_course": 0, "status": 0, "next_checkpoint": 0,
                    "eta_next_p10": t + ((250_000.0 - along) / speed * 0.9) as i64,
                    "eta_next_p50": t + ((250_000.0 - along) / speed) as i64,
                    "eta_next_p90": t + ((250_000.0 - along) / speed * 1.2) as i64,
                    "eta_finish_p10": t + ((1_000_000.0 - along) / speed * 1.1) as i64,
                    "eta_finish_p50": t + ((1_000_000.0 - along) / speed * 1.4) as i64,
                    "eta_finish_p90": t + ((1_000_000.0 - along) / speed * 1.8) as i64,
                })
            })
            .collect();
        let url = format!("{}/v1/events/{EVENT}/riders/{rider}/derived", stack.collector.url);
        let request =
            http.post(url).header("Authorization", format!("Token {SERVICE_TOKEN}")).json(&readings);
        async move {
            let answer = request.send().await?;
            if !answer.status().is_success() {
                bail!("the collector refused progress: {} {}", answer.status(), answer.text().await?);
            }
            Ok::<(), anyhow::Error>(())
        }
    });
    let results: Vec<anyhow::Result<()>> =
        futures::stream::iter(requests).buffer_unordered(16).collect().await;
    results.into_iter().collect::<anyhow::Result<()>>()?;
    for _ in 0..600 {
        let collector = stack.collector.metrics().await.map_err(anyhow::Error::msg)?;
        if metric(&collector, "collector_wal_bytes") == 0.0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("the progress was not stored within 10 minutes")
}
