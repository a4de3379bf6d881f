//! `velometry-lab bench`: k6 scenarios against the stack, results written into
//! BENCHMARKS.md with the machine, the versions and the command that produced them.
//!
//! - `requests`: the earlier system's load-test shape (5,000, 10,000 and 15,000 requests
//!   arriving over 10 seconds) for ingest, history and the live page, beside its figures;
//! - `ingest-ceiling`, `history-ceiling`: the highest request rate held for `--hold` with no
//!   error, no request the load generator had to drop, and p99 under the bound;
//! - `live-ceiling`: the most live followers with every reading's p99 latency under 100 ms.

mod k6;
mod report;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use velometry_collector::simulate::Rider;
use velometry_core::testkit::{cpu_time, metric};

use crate::stack::{binary, Fleet, Stack, EVENT, EVENT_STARTED_AGO, SERVICE_TOKEN};
use k6::{Summary, Target};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// 5,000, 10,000 and 15,000 requests over a 10-second ramp-up, for ingest, history and live
    Requests,
    /// The highest rate of single-reading ingest requests held with no errors and p99 under
    /// --ingest-p99
    IngestCeiling,
    /// The highest history request rate held with no errors and p99 under --history-p99
    /// (charts) or --history-mix-p99 (the whole mix)
    HistoryCeiling,
    /// The most live followers with reading latency p99 under --live-p99
    LiveCeiling,
    /// The highest rate of an event's standings requests held with no errors and p99 under
    /// --standings-p99, every rider of --riders an entrant with progress
    Standings,
    /// All of the above, one after the other, on one stack
    All,
}

/// Flags of `velometry-lab bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Starts InfluxDB, NATS, the collector, the query service and a stream hub \
    (or uses a running stack: --collector-url and friends), gives riders a few hours of history, \
    sets simulated riders riding, runs k6 (k6/*.js) and writes each scenario's section of \
    BENCHMARKS.md. A full `all` run takes about 50 minutes.")]
pub struct Args {
    /// What to measure: one scenario, or several, run in the order given on one stack
    #[arg(value_enum, required = true)]
    scenarios: Vec<Scenario>,
    /// The report whose sections are (re)written
    #[arg(long, default_value = "BENCHMARKS.md")]
    report: PathBuf,
    /// Print the results without writing the report
    #[arg(long)]
    dry_run: bool,
    /// The folder of the k6 scripts
    #[arg(long, default_value = "k6")]
    scripts: PathBuf,
    /// InfluxDB's `cache-snapshot-memory-size` for the started stack (e.g. 25m, InfluxDB's
    /// default), to measure velometry's setting side by side
    #[arg(long, default_value = velometry_core::testkit::INFLUX_CACHE_SNAPSHOT)]
    influx_cache_snapshot: String,
    /// Riders in the generated riders file
    #[arg(long, default_value_t = 50)]
    riders: usize,
    /// Devices (tokens) per rider: ingest load is spread over all of them, as from a fleet
    #[arg(long, default_value_t = 20)]
    devices: usize,
    /// Riders given history before the run (asked by the history requests)
    #[arg(long, default_value_t = 10)]
    history_riders: usize,
    /// Hours of 1 Hz history each of those riders has
    #[arg(long, default_value_t = 6)]
    history_hours: u64,
    /// Simulated riders riding during the run (followed by the live requests)
    #[arg(long, default_value_t = 20)]
    live_riders: usize,
    /// How long each ceiling step holds its rate
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// p99 bound of an ingest ceiling step, ms
    #[arg(long, default_value_t = 50.0)]
    ingest_p99: f64,
    /// p99 bound of a history ceiling step of charts alone, ms
    #[arg(long, default_value_t = 50.0)]
    history_p99: f64,
    /// p99 bound of a history ceiling step of the whole mix (month-long series, tracks and
    /// summaries read thousands of raw points each), ms
    #[arg(long, default_value_t = 250.0)]
    history_mix_p99: f64,
    /// p99 bound of a reading's delivery to live followers, ms
    #[arg(long, default_value_t = 100.0)]
    live_p99: f64,
    /// p99 bound of a standings request, ms
    #[arg(long, default_value_t = 50.0)]
    standings_p99: f64,
    /// Use a running collector instead of starting a stack (with --query-url, --stream-url,
    /// --tokens-file and --rider)
    #[arg(long, requires_all = ["query_url", "stream_url", "tokens_file", "rider"])]
    collector_url: Option<String>,
    /// The running query service
    #[arg(long)]
    query_url: Option<String>,
    /// The running stream hub
    #[arg(long)]
    stream_url: Option<String>,
    /// Device tokens of the running stack, one per line (each is limited by the collector's
    /// --rate-limit per second)
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Riders of the running stack to ask and follow (repeat the flag)
    #[arg(long)]
    rider: Vec<String>,
}

/// Runs the chosen scenario(s).
///
/// # Errors
/// When the stack or k6 cannot run, or the report cannot be written.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if !args.scripts.join("requests.js").is_file() {
        bail!(
            "{} holds no k6 scripts: run from the repository root, or give --scripts",
            args.scripts.display()
        );
    }
    if !args.dry_run && !args.report.is_file() {
        bail!("{} does not exist: run from the repository root, or give --report", args.report.display());
    }
    let (target, running) = match &args.collector_url {
        Some(collector) => (running_target(&args, collector)?, None),
        None => {
            let (target, running) = start(&args).await?;
            (target, Some(running))
        }
    };
    let scenarios = args.scenarios.iter().flat_map(|&scenario| match scenario {
        Scenario::All => {
            vec![
                Scenario::Requests,
                Scenario::IngestCeiling,
                Scenario::HistoryCeiling,
                Scenario::LiveCeiling,
                Scenario::Standings,
            ]
        }
        one => vec![one],
    });
    for scenario in scenarios {
        if let Some(running) = &running {
            running.settle().await;
        }
        let (name, title, body) = match scenario {
            Scenario::Requests => {
                ("requests", "Load: the earlier system's test, side by side", requests(&args, &target).await?)
            }
            Scenario::IngestCeiling => {
                ("ingest-ceiling", "Load: the ingest ceiling", ingest_ceiling(&args, &target).await?)
            }
            Scenario::HistoryCeiling => {
                ("history-ceiling", "Load: the history ceiling", history_ceiling(&args, &target).await?)
            }
            Scenario::LiveCeiling => {
                ("live-ceiling", "Load: the live followers ceiling", live_ceiling(&args, &target).await?)
            }
            Scenario::Standings => {
                ("standings", "Load: an event's standings", standings(&args, &target).await?)
            }
            Scenario::All => unreachable!("expanded above"),
        };
        let mut command = format!("deploy/local/bench.sh {name}");
        if (args.riders, args.devices) != (50, 20) {
            command.push_str(&format!(" --riders {} --devices {}", args.riders, args.devices));
        }
        if args.influx_cache_snapshot != velometry_core::testkit::INFLUX_CACHE_SNAPSHOT {
            command.push_str(&format!(" --influx-cache-snapshot {}", args.influx_cache_snapshot));
        }
        let section = format!("{}{body}", report::preamble(&command).await);
        println!("\n## {title}\n\n{section}");
        if !args.dry_run {
            report::write_section(&args.report, name, title, &section)?;
            println!("(written into {})", args.report.display());
        }
    }
    Ok(())
}

/// What keeps the started stack going for the run.
struct Running {
    stack: Stack,
    _riders: tokio::process::Child,
}

impl Running {
    /// Waits until the collector has stored everything it took and InfluxDB has gone quiet
    /// (its compactions done), so that a scenario does not pay for the one before it.
    async fn settle(&self) {
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

fn running_target(args: &Args, collector: &str) -> anyhow::Result<Target> {
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

async fn start(args: &Args) -> anyhow::Result<(Target, Running)> {
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
    if args.scenarios.iter().any(|s| matches!(s, Scenario::Standings | Scenario::All)) {
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

/// Latency figures of a trend, ms: p50, p95, p99.
fn latencies(summary: &Summary, trend: &str) -> [f64; 3] {
    [summary.get(trend, "med"), summary.get(trend, "p(95)"), summary.get(trend, "p(99)")]
}

async fn requests(args: &Args, target: &Target) -> anyhow::Result<String> {
    let mut table = String::from(
        "| traffic | requests over 10 s | failed | not sent in time | error rate | throughput (requests/s) | p50 ms | p95 ms | p99 ms |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for kind in ["ingest", "history", "live"] {
        for requests in [5_000u32, 10_000, 15_000] {
            println!("{kind}: {requests} requests over 10 s …");
            // A live visit holds its WebSocket for a while: enough virtual users made before
            // the run, since making them during it costs the load generator the CPU the
            // services need. HTTP requests are short: at most 1,000 users, each a
            // connection, under the query service's cap of 1,024.
            let (vus, max_vus) = if kind == "live" { (requests / 10, requests / 5) } else { (200, 1_000) };
            let env = [
                ("KIND", kind.to_owned()),
                ("REQUESTS", requests.to_string()),
                ("RAMP", "10s".into()),
                ("VUS", vus.to_string()),
                ("MAX_VUS", max_vus.to_string()),
            ];
            let s = k6::run(&args.scripts, "requests.js", target, &env).await?;
            let (sent, failed, rate, trend) = if kind == "live" {
                let visits = s.get("iterations", "count");
                (
                    visits,
                    s.get("live_visit_failed", "passes"),
                    s.get("iterations", "rate"),
                    "live_visit_duration",
                )
            } else {
                (
                    s.get("http_reqs", "count"),
                    s.http_failed(),
                    s.get("http_reqs", "rate"),
                    "http_req_duration",
                )
            };
            let [p50, p95, p99] = latencies(&s, trend);
            let _ = writeln!(
                table,
                "| {kind} | {} | {} | {} | {:.2} % | {} | {p50:.1} | {p95:.1} | {p99:.1} |",
                report::thousands(sent + s.dropped()),
                report::thousands(failed),
                report::thousands(s.dropped()),
                100.0 * (failed + s.dropped()) / (sent + s.dropped()).max(1.0),
                report::thousands(rate),
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    Ok(format!(
        "{table}\n\
         The earlier system (Flask and Express services on MongoDB, three then five instances), \
         tested by JMeter with the same request counts and ramp-up: **it peaked near 1,000 \
         requests/s and reached 26–42 % errors at 15,000 requests.**\n\n\
         - *ingest*: one JSON heart-rate reading per request, each from one of {} device tokens, \
         fsynced before the answer; *history*: the mix of `k6/query.js` (series of an hour to a \
         month, tracks, summaries, latest) over riders with {} hours of 1 Hz history; *live*: a \
         visit of the live page — the page, its WebSocket, a subscription and the rider's \
         snapshot — timed from the page request to the snapshot.\n\
         - *failed*: answered with an error, or not at all (a live visit: no page, no upgrade, or \
         no snapshot within 5 s); *not sent in time*: requests the load generator could not \
         start when due, for want of a free virtual user (k6's dropped iterations: the service \
         was slow, or k6 itself, on the same two cores, was); the error rate counts both. \
         Throughput is over the whole run, its tail included.\n",
        report::thousands(target.tokens.len() as f64),
        args.history_hours,
    ))
}

/// One step of a ceiling search.
struct Step {
    rate: u64,
    summary: Summary,
    p99: f64,
    passed: bool,
}

/// Doubles `rate` from `start` until a step fails, then bisects three times between the
/// last pass (or 0) and the first failure. `measure` runs one step at a rate.
async fn search<F, Fut>(start: u64, limit: u64, mut measure: F) -> anyhow::Result<Vec<Step>>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Step>>,
{
    let mut steps = Vec::new();
    let mut rate = start;
    let (mut pass, mut fail) = (0, None);
    while rate <= limit {
        let step = measure(rate).await?;
        let passed = step.passed;
        steps.push(step);
        if !passed {
            fail = Some(rate);
            break;
        }
        pass = rate;
        rate *= 2;
    }
    if let Some(mut high) = fail {
        for _ in 0..3 {
            let mid = (pass + high) / 2;
            if mid <= pass || mid >= high {
                break;
            }
            let step = measure(mid).await?;
            if step.passed {
                pass = mid;
            } else {
                high = mid;
            }
            steps.push(step);
        }
    }
    steps.sort_by_key(|s| s.rate);
    Ok(steps)
}

fn steps_table(steps: &[Step], unit: &str, extra: &str, row: impl Fn(&Step) -> String) -> String {
    let mut table =
        format!("| {unit} | failed | dropped | p99 ms | {extra} | held |\n|---|---|---|---|---|---|\n");
    for s in steps {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.1} | {} | {} |",
            report::thousands(s.rate as f64),
            report::thousands(s.summary.http_failed()),
            report::thousands(s.summary.dropped()),
            s.p99,
            row(s),
            if s.passed { "yes" } else { "**no**" },
        );
    }
    table
}

fn ceiling(steps: &[Step]) -> u64 {
    steps.iter().filter(|s| s.passed).map(|s| s.rate).max().unwrap_or(0)
}

fn hold(args: &Args) -> String {
    format!("{}s", args.hold.as_secs().max(1))
}

async fn ingest_ceiling(args: &Args, target: &Target) -> anyhow::Result<String> {
    let steps = search(2_000, 64_000, |rate| async move {
        println!("ingest at {rate} requests/s for {} …", hold(args));
        let env = [
            ("RATE", rate.to_string()),
            ("DURATION", hold(args)),
            ("VUS", (rate / 10).max(50).to_string()),
            ("MIX", "single".into()),
        ];
        let summary = k6::run(&args.scripts, "ingest.js", target, &env).await?;
        let p99 = summary.get("http_req_duration{kind:ingest}", "p(99)");
        let passed = summary.http_failed() == 0.0 && summary.dropped() == 0.0 && p99 < args.ingest_p99;
        println!("  p99 {p99:.1} ms, failed {}, dropped {}", summary.http_failed(), summary.dropped());
        Ok(Step { rate, summary, p99, passed })
    })
    .await?;
    let table = steps_table(&steps, "requests/s", "p50 ms", |s| {
        format!("{:.1}", s.summary.get("http_req_duration{kind:ingest}", "med"))
    });
    Ok(format!(
        "**Ceiling: {} requests/s** held for {} with no failed request, none dropped, and p99 under \
         {} ms.\n\n{table}\n\
         Each request one JSON heart-rate reading, as phones and devices send them, from {} \
         device tokens (`k6/ingest.js` with `MIX=single`), acknowledged only once fsynced. k6 \
         shares the two cores: the collector alone, driven by `wrk`, holds 18,000 such requests \
         a second (\"Collector: single-reading JSON requests\"); batches and line protocol are \
         measured in points a second there too.\n",
        report::thousands(ceiling(&steps) as f64),
        hold(args),
        args.ingest_p99,
        report::thousands(target.tokens.len() as f64),
    ))
}

async fn history_ceiling(args: &Args, target: &Target) -> anyhow::Result<String> {
    let mut text = String::new();
    for (mix, start, bound) in [("chart", 100, args.history_p99), ("all", 50, args.history_mix_p99)] {
        let steps = search(start, 6_400, |rate| async move {
            println!("history ({mix}) at {rate} requests/s for {} …", hold(args));
            let env = [
                ("RATE", rate.to_string()),
                ("DURATION", hold(args)),
                // Each a connection: at most 2 × 400, under the service's cap of 1,024.
                ("VUS", (rate / 4).clamp(50, 400).to_string()),
                ("MIX", mix.to_owned()),
            ];
            let summary = k6::run(&args.scripts, "query.js", target, &env).await?;
            let p99 = summary.get("http_req_duration{kind:history}", "p(99)");
            let passed = summary.http_failed() == 0.0 && summary.dropped() == 0.0 && p99 < bound;
            println!("  p99 {p99:.1} ms, failed {}, dropped {}", summary.http_failed(), summary.dropped());
            Ok(Step { rate, summary, p99, passed })
        })
        .await?;
        let what = if mix == "chart" {
            "Charts alone (an hour of heart rate at 1,000 points, the commonest request)"
        } else {
            "The whole mix"
        };
        let _ = writeln!(
            text,
            "{what}: **ceiling {} requests/s** held for {} with no failed request, none dropped, and \
             p99 under {bound} ms.\n\n{}",
            report::thousands(ceiling(&steps) as f64),
            hold(args),
            steps_table(&steps, "requests/s", "p50 ms", |s| {
                format!("{:.1}", s.summary.get("http_req_duration{kind:history}", "med"))
            }),
        );
    }
    Ok(format!(
        "{text}The mix of `k6/query.js` over {} riders with {} hours of 1 Hz history each: 30 % an \
         hour of heart rate at 1,000 points, 15 % six hours of speed by LTTB, 10 % a day of power, \
         5 % a month of heart rate by mean, 15 % two-hour tracks, 10 % two-hour summaries, 15 % \
         latest values.\n",
        target.riders.len(),
        args.history_hours,
    ))
}

async fn live_ceiling(args: &Args, target: &Target) -> anyhow::Result<String> {
    let mut live = target.clone();
    live.riders = (0..args.live_riders.max(1)).map(|r| format!("r{r}")).collect();
    if args.collector_url.is_some() {
        live.riders.clone_from(&target.riders);
    }
    let live = &live;
    let steps = search(500, 16_000, |followers| async move {
        println!("{followers} live followers for {} …", hold(args));
        let env = [("FOLLOWERS", followers.to_string()), ("HOLD", hold(args)), ("FOLLOW", "one".into())];
        let summary = k6::run(&args.scripts, "live.js", live, &env).await?;
        let p99 = summary.get("live_latency", "p(99)");
        let upgraded = summary.get("checks", "rate");
        let passed = upgraded == 1.0 && summary.get("live_readings", "count") > 0.0 && p99 < args.live_p99;
        println!("  p99 {p99:.1} ms, connected {:.1} %", upgraded * 100.0);
        Ok(Step { rate: followers, summary, p99, passed })
    })
    .await?;
    let table = steps_table(&steps, "followers", "readings delivered", |s| {
        report::thousands(s.summary.get("live_readings", "count"))
    });
    Ok(format!(
        "**Ceiling: {} followers** of one hub, each following one of {} simulated riders for {}, \
         every follower connected and reading latency p99 under {} ms.\n\n{table}\n\
         Latency is from the time the rider's device stamped the reading, just before sending it \
         to the collector, to its arrival at the follower: the collector's fsync, NATS and the \
         hub. The followers are k6 virtual users on the same two cores; the Rust follower \
         benchmark (Stream hub, above) goes further because its client costs less.\n",
        report::thousands(ceiling(&steps) as f64),
        live.riders.len(),
        hold(args),
        args.live_p99,
    ))
}

async fn standings(args: &Args, target: &Target) -> anyhow::Result<String> {
    let event = if args.collector_url.is_some() { "demo-race" } else { EVENT };
    let steps = search(250, 16_000, |rate| async move {
        println!("standings at {rate} requests/s for {} …", hold(args));
        let env = [
            ("RATE", rate.to_string()),
            ("DURATION", hold(args)),
            ("VUS", (rate / 4).clamp(50, 400).to_string()),
            ("EVENT", event.to_owned()),
        ];
        let summary = k6::run(&args.scripts, "standings.js", target, &env).await?;
        let p99 = summary.get("http_req_duration{kind:standings}", "p(99)");
        let passed = summary.http_failed() == 0.0 && summary.dropped() == 0.0 && p99 < args.standings_p99;
        println!("  p99 {p99:.1} ms, failed {}, dropped {}", summary.http_failed(), summary.dropped());
        Ok(Step { rate, summary, p99, passed })
    })
    .await?;
    let table = steps_table(&steps, "requests/s", "p50 ms", |s| {
        format!("{:.1}", s.summary.get("http_req_duration{kind:standings}", "med"))
    });
    Ok(format!(
        "**Ceiling: {} requests/s** of `GET /v1/events/{event}/standings` held for {} with no failed \
         request, none dropped, and p99 under {} ms.\n\n{table}\n\
         {} entrants, each with half an hour of progress (a reading every 10 s), anonymous \
         requests (`k6/standings.js`): the service makes the answer once a second and every caller \
         shares it, so the ceiling is the cost of sending it. k6 shares the two cores.\n",
        report::thousands(ceiling(&steps) as f64),
        hold(args),
        args.standings_p99,
        report::thousands(args.riders as f64),
    ))
}
