//! `velometry-lab bench`: k6 scenarios against the stack, results written into
//! BENCHMARKS.md with the machine, the versions and the command that produced them.
//!
//! - `requests`: the earlier system's load-test shape (5,000, 10,000 and 15,000 requests
//!   arriving over 10 seconds) for ingest, history and the live page, beside its figures;
//! - `ingest-ceiling`, `history-ceiling`: the highest request rate held for `--hold` with no
//!   error, no request the load generator had to drop, and p99 under the bound;
//! - `live-ceiling`: the most live followers with every reading's p99 latency under 100 ms;
//! - `standings`: the highest rate of an event's standings requests, beside the same search
//!   against `/healthz`, the most this machine can measure;
//! - `page`: the spectator page of the event in headless Chromium: first render, weight, and
//!   the main thread and heap with every entrant's progress arriving live;
//! - `spectators`: thousands of spectators opening that page and keeping it open (k6).
//!
//! The stack is set up in [`setup`], the ceilings searched in [`ceiling`].

mod ceiling;
mod fleet;
mod k6;
mod page;
mod report;
mod setup;
mod spectators;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use ceiling::{history_ceiling, ingest_ceiling, live_ceiling, standings};
use k6::{Summary, Target};
use setup::{running_target, start};

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
    /// --standings-p99, every rider of --riders an entrant with progress, beside the same
    /// search against the query service's /healthz (the machine's bound)
    Standings,
    /// The spectator page of the event (every rider of --riders an entrant) in headless
    /// Chromium: first render, weight, main-thread work and heap while progress arrives live
    /// for --page-live
    Page,
    /// --spectators people opening the event's spectator page and keeping it open (its
    /// requests and WebSocket, k6), every entrant's progress arriving every 10 s
    Spectators,
    /// All of the above, one after the other, on one stack
    All,
}

/// Flags of `velometry-lab bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Starts InfluxDB, NATS, the collector, the query service and a stream hub \
    (or uses a running stack: --collector-url and friends), gives riders a few hours of history, \
    sets simulated riders riding, runs k6 (k6/*.js) and writes each scenario's section of \
    BENCHMARKS.md. A full `all` run takes about an hour.")]
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
    /// How long the page scenario follows the event live
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    page_live: Duration,
    /// Spectators of the spectators scenario, all connected at once by the end of the ramp
    #[arg(long, default_value_t = 10_000)]
    spectators: usize,
    /// How long the spectators take to arrive
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    spectators_ramp: Duration,
    /// How long they all stay once the last has arrived
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    spectators_hold: Duration,
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
                Scenario::Page,
                Scenario::Spectators,
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
            Scenario::Page => {
                let riders = running.as_ref().map(|r| r.entrants()).unwrap_or_else(|| target.riders.clone());
                ("page", "The spectator page of a race", page::page(&args, &target, &riders).await?)
            }
            Scenario::Spectators => {
                let riders = running.as_ref().map(|r| r.entrants()).unwrap_or_else(|| target.riders.clone());
                let processes = running.as_ref().map(|r| r.processes()).unwrap_or_default();
                (
                    "spectators",
                    "Load: the spectators of a race",
                    spectators::spectators(&args, &target, &riders, &processes).await?,
                )
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
