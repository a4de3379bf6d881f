//! `velometry-lab chaos`: the whole stack as processes, simulated riders riding and live
//! followers following, while services are SIGKILLed and started again one after another —
//! the collector, a stream replica, the query service, NATS, InfluxDB — on a plan drawn from
//! the seed. At the end it checks the two promises the platform makes: every reading the
//! collector acknowledged is in InfluxDB, and followers get live readings again after a
//! hub (or anything else) restarts. The figures are printed, and written as JSON with
//! `--json`; the run exits non-zero when a promise was broken.
//!
//! Services restart on new ports (as a rescheduled pod gets a new address), so riders and
//! followers read their target's current URL from a watch channel the run updates.

mod check;
mod followers;
mod report;
mod riders;
mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::sync::watch;
use velometry_core::time::now_nanos;

use crate::stack::{Fleet, Stack};
use followers::Log;
use report::{median_max, FaultReport, Live, Readings, Report, Requests};
use riders::{Ledger, Outage, Road};
use schedule::{Fault, Kind};

/// Flags of `velometry-lab chaos`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Starts InfluxDB, NATS, the collector, the query service and the stream hubs as processes (the \
binaries next to this one), with simulated riders posting to /v1/readings and WebSocket \
followers on /v1/live. Then it SIGKILLs one service every --every, keeps it down for 0.5-3 s \
(InfluxDB sometimes up to 10 s) and starts it again, printing a line per fault. At the end it \
checks that every reading answered 200 is in InfluxDB, that followers got new readings after \
every restart and that the query service answers, prints the figures, and exits non-zero when \
any check failed.")]
pub struct Args {
    /// How long to go on killing services: one fault every --every, the first at once.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Time between the starts of two faults. Each kind of service (collector, stream,
    /// query, nats, influxdb) is hit once, in a seeded order, before any is hit again.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Simulated riders, each one device sending a gps fix and a heart rate every second.
    #[arg(long, default_value_t = 5)]
    riders: usize,
    /// WebSocket followers, spread over the stream replicas; half follow every rider, the
    /// others one rider each.
    #[arg(long, default_value_t = 20)]
    followers: usize,
    /// Stream hub replicas.
    #[arg(long, default_value_t = 2)]
    stream_replicas: usize,
    /// Which kinds of service to kill, comma-separated; all of them by default.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Kind::ALL)]
    victims: Vec<Kind>,
    /// Seed of the plan (which service is killed when, for how long) and of the riders: the
    /// same seed repeats the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

// The waits below end as soon as what they wait for happens (the report measures how long
// that took); their limits are generous so that a run on a busy machine (the test suite
// beside other work) fails only when something is really wrong.
/// How long followers may take to see their first reading once everything is up.
const WARM_UP: Duration = Duration::from_secs(120);
/// How long, after the last fault, followers may take to get readings again.
const RECOVERY_GRACE: Duration = Duration::from_secs(120);
/// How long the query service may take to answer again after a restart.
const QUERY_GRACE: Duration = Duration::from_secs(120);
/// How long the collector may take to empty its log into InfluxDB once the riders stop.
const DRAIN: Duration = Duration::from_secs(120);

/// Runs the chaos.
///
/// # Errors
/// When the stack cannot start, a service does not come back, or a check fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.every.is_zero() || args.riders == 0 || args.stream_replicas == 0 {
        bail!("--every, --riders and --stream-replicas must be above zero");
    }
    if args.followers < args.stream_replicas {
        bail!("give at least one follower per stream replica (--followers ≥ --stream-replicas)");
    }
    let plan = schedule::plan(args.seed, args.duration, args.every, args.stream_replicas, &args.victims);
    eprintln!(
        "Chaos: {} faults, one every {}, seed {}: {}",
        plan.len(),
        humantime::format_duration(args.every),
        args.seed,
        plan.iter().map(Fault::victim).collect::<Vec<_>>().join(", ")
    );
    let fleet = Fleet { riders: args.riders, devices: 1 };
    let mut stack = Stack::start(fleet, args.stream_replicas, velometry_core::testkit::INFLUX_CACHE_SNAPSHOT)
        .await
        .context("cannot start the stack")?;
    eprintln!(
        "Stack up: collector {}, query {}, hubs {}",
        stack.collector.url,
        stack.query.url,
        stack.streams.iter().map(|s| s.url.as_str()).collect::<Vec<_>>().join(" ")
    );
    let outcome = chaos(&args, &plan, &mut stack).await;
    if outcome.as_ref().map_or(true, |r| !r.passed) {
        print_logs(&stack);
    }
    let report = outcome?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !report.passed {
        bail!("the chaos run failed: {}", report.failures.join("; "));
    }
    Ok(())
}

/// The current URLs of the services that move when they restart.
struct Urls {
    collector: watch::Sender<String>,
    streams: Vec<watch::Sender<String>>,
}

/// A fault as it happened.
struct Struck {
    fault: Fault,
    /// When the kill happened, from the start of the chaos.
    at: Duration,
    restart_took: Duration,
    /// When the service was back (and its new URL published).
    back: Instant,
    back_ms: i64,
    acknowledged: u64,
    connected: usize,
    query_answered_after: Option<Duration>,
}

async fn chaos(args: &Args, plan: &[Fault], stack: &mut Stack) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the HTTP client")?;
    let urls = Urls {
        collector: watch::Sender::new(stack.collector.url.clone()),
        streams: stack.streams.iter().map(|s| watch::Sender::new(s.url.clone())).collect(),
    };
    let ledger = Arc::new(Ledger::default());
    let outage: Outage = Arc::new(Mutex::new(None));
    let (stop_riders, riders_stop) = watch::channel(false);
    let (stop_followers, followers_stop) = watch::channel(false);

    let road = Road {
        http: http.clone(),
        collector: urls.collector.subscribe(),
        ledger: ledger.clone(),
        outage: outage.clone(),
    };
    let mut riders = tokio::task::JoinSet::new();
    for (index, (rider, token)) in
        stack.fleet.riders().into_iter().zip(stack.fleet.first_tokens()).enumerate()
    {
        riders.spawn(riders::ride(index, rider, token, args.seed, road.clone(), riders_stop.clone()));
    }
    let rider_ids = stack.fleet.riders();
    let mut logs = Vec::new();
    let mut followers = tokio::task::JoinSet::new();
    for i in 0..args.followers {
        let replica = i % args.stream_replicas;
        let nth = i / args.stream_replicas;
        let follows = if nth.is_multiple_of(2) {
            "*".to_owned()
        } else {
            rider_ids[(nth / 2) % rider_ids.len()].clone()
        };
        let log = Arc::new(Log::new(replica));
        logs.push(log.clone());
        followers.spawn(followers::follow(
            vec![follows],
            urls.streams[replica].subscribe(),
            log,
            followers_stop.clone(),
        ));
    }

    let warm = Instant::now();
    while logs.iter().any(|l| l.received() == 0) {
        if warm.elapsed() > WARM_UP {
            let waiting = logs.iter().filter(|l| l.received() == 0).count();
            bail!(
                "{waiting} followers had no live reading {WARM_UP:?} after the start ({} acknowledged)",
                ledger.acknowledged()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("Riders riding, followers following ({:.1} s); chaos begins.", warm.elapsed().as_secs_f64());

    let started = Instant::now();
    let mut struck = Vec::new();
    for fault in plan {
        tokio::time::sleep_until((started + fault.at).into()).await;
        let at = started.elapsed();
        set(&outage, Some(fault.kind));
        let restart_took = strike(stack, fault, &urls).await?;
        set(&outage, None);
        let (back, back_ms) = (Instant::now(), now_nanos() / 1_000_000);
        let query_answered_after = if fault.kind == Kind::Query {
            Some(check::query_answers(&http, &stack.query.url, &rider_ids[0], QUERY_GRACE).await?)
        } else {
            None
        };
        let s = Struck {
            fault: fault.clone(),
            at,
            restart_took,
            back,
            back_ms,
            acknowledged: ledger.acknowledged(),
            connected: logs.iter().filter(|l| l.connected.load(Ordering::Relaxed)).count(),
            query_answered_after,
        };
        eprintln!(
            "[{:>6.1} s] {:<10} down {:>4.1} s, back in {:.2} s; {} readings acknowledged, {}/{} followers connected",
            at.as_secs_f64(),
            fault.victim(),
            fault.down.as_secs_f64(),
            restart_took.as_secs_f64(),
            s.acknowledged,
            s.connected,
            logs.len()
        );
        struck.push(s);
    }
    let chaos_s = started.elapsed().as_secs_f64();

    // Everything is up again: the live path must come back after every fault.
    let grace = Instant::now();
    while struck.iter().any(|s| affected(s, &logs).any(|l| l.first_new_reading(s.back, s.back_ms).is_none()))
        && grace.elapsed() < RECOVERY_GRACE
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let query_at_end = check::query_answers(&http, &stack.query.url, &rider_ids[0], QUERY_GRACE).await;
    let _ = stop_riders.send(true);
    while riders.join_next().await.is_some() {}
    let _ = stop_followers.send(true);
    while followers.join_next().await.is_some() {}
    eprintln!("Riders stopped; waiting for the collector to empty its log into InfluxDB.");
    let wal_drain = check::wal_drained(&stack.collector, DRAIN).await?;

    let acked = ledger.acked();
    let (gps, gps_missing) = check::stored(&stack.influx, &acked, "gps", "lat").await?;
    let (heart_rate, hr_missing) = check::stored(&stack.influx, &acked, "heart_rate", "bpm").await?;
    let faults: Vec<FaultReport> = struck.iter().map(|s| fault_report(s, &logs)).collect();
    let mut faults_by_service: BTreeMap<String, u64> =
        Kind::ALL.iter().map(|k| (k.name().to_owned(), 0)).collect();
    for s in &struck {
        *faults_by_service.entry(s.fault.kind.name().to_owned()).or_default() += 1;
    }
    let (hub_recovery_median_s, hub_recovery_max_s) = report::hub_recovery(&faults);
    let mut report = Report {
        seed: args.seed,
        duration_s: args.duration.as_secs_f64(),
        every_s: args.every.as_secs_f64(),
        riders: args.riders,
        followers: args.followers,
        stream_replicas: args.stream_replicas,
        chaos_s,
        faults,
        faults_by_service,
        readings: Readings {
            acknowledged: ledger.acknowledged(),
            found: gps.found + heart_rate.found,
            missing: gps.missing + heart_rate.missing,
            duplicates: gps.duplicates + heart_rate.duplicates,
            stored_unacknowledged: gps.unacknowledged + heart_rate.unacknowledged,
            abandoned: ledger.abandoned.load(Ordering::Relaxed),
            refused: ledger.refused.load(Ordering::Relaxed),
            gps,
            heart_rate,
            missing_examples: gps_missing.into_iter().chain(hr_missing).take(10).collect(),
        },
        requests: Requests {
            sent: ledger.requests.load(Ordering::Relaxed),
            failed: ledger.failures().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        },
        live: Live {
            delivered: logs.iter().map(|l| l.received() as u64).sum(),
            connections: logs.iter().map(|l| l.connections.load(Ordering::Relaxed)).sum(),
            hub_recovery_max_s,
            hub_recovery_median_s,
        },
        wal_drain_s: wal_drain.as_secs_f64(),
        dead_letters: check::dead_letters(&stack.wal_dir()),
        query_at_end: query_at_end.err().map(|e| format!("{e:#}")),
        failures: Vec::new(),
        passed: false,
    };
    report.judge();
    Ok(report)
}

fn set(outage: &Outage, kind: Option<Kind>) {
    if let Ok(mut o) = outage.lock() {
        *o = kind;
    }
}

/// Kills the fault's victim (SIGKILL), keeps it down, starts it again and publishes its new
/// URL; returns how long the start took.
async fn strike(stack: &mut Stack, fault: &Fault, urls: &Urls) -> anyhow::Result<Duration> {
    match fault.kind {
        Kind::Collector => stack.collector.kill().await,
        Kind::Stream => stack.streams[fault.replica].kill().await,
        Kind::Query => stack.query.kill().await,
        Kind::Nats => stack.nats.kill().await,
        Kind::Influxdb => stack.influx.kill().await,
    }
    tokio::time::sleep(fault.down).await;
    let restarting = Instant::now();
    let victim = fault.victim();
    let failed = |e: String| anyhow!("{victim} did not come back: {e}");
    match fault.kind {
        Kind::Collector => {
            stack.collector.restart().await.map_err(failed)?;
            urls.collector.send_replace(stack.collector.url.clone());
        }
        Kind::Stream => {
            let hub = &mut stack.streams[fault.replica];
            hub.restart().await.map_err(failed)?;
            urls.streams[fault.replica].send_replace(hub.url.clone());
        }
        Kind::Query => stack.query.restart().await.map_err(failed)?,
        Kind::Nats => stack.nats.restart().await.map_err(failed)?,
        Kind::Influxdb => stack.influx.restart().await.map_err(failed)?,
    }
    Ok(restarting.elapsed())
}

/// The followers whose live readings a fault interrupts: a replica's own, or everyone.
fn affected<'a>(s: &'a Struck, logs: &'a [Arc<Log>]) -> impl Iterator<Item = &'a Arc<Log>> {
    logs.iter().filter(move |l| s.fault.kind != Kind::Stream || l.replica == s.fault.replica)
}

fn fault_report(s: &Struck, logs: &[Arc<Log>]) -> FaultReport {
    let recoveries: Vec<Duration> = affected(s, logs)
        .filter_map(|l| l.first_new_reading(s.back, s.back_ms))
        .map(|at| at - s.back)
        .collect();
    let (median, max) = median_max(recoveries.clone());
    FaultReport {
        at_s: s.at.as_secs_f64(),
        victim: s.fault.victim(),
        kind: s.fault.kind.name().to_owned(),
        down_s: s.fault.down.as_secs_f64(),
        restart_s: s.restart_took.as_secs_f64(),
        acknowledged_so_far: s.acknowledged,
        followers_connected: s.connected,
        followers_affected: affected(s, logs).count(),
        followers_recovered: recoveries.len(),
        recovery_max_s: max,
        recovery_median_s: median,
        query_answered_after_s: s.query_answered_after.map(|d| d.as_secs_f64()),
    }
}

/// The end of every service's log, to see what happened when a run fails.
fn print_logs(stack: &Stack) {
    let mut services = vec![("collector".to_owned(), &stack.collector), ("query".to_owned(), &stack.query)];
    services.extend(stack.streams.iter().enumerate().map(|(i, s)| (format!("stream-{i}"), s)));
    for (name, service) in services {
        let logs = service.logs();
        let lines: Vec<&str> = logs.lines().collect();
        eprintln!("--- {name}: last lines of its logs ---");
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{line}");
        }
    }
}
