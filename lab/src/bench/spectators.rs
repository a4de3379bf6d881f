//! `bench spectators`: thousands of people opening the spectator page of one event and
//! keeping it open (`k6/spectators.js`: the page's own requests and WebSocket), while every
//! entrant's progress arrives every 10 s. What each request took, what the live frames
//! took, and where the two cores went.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use velometry_core::testkit::cpu_time;

use super::fleet::Fleet;
use super::k6::{self, Target};
use super::{latencies, report, Args};
use crate::stack::EVENT;

/// Busy time of all cores since boot (user, nice, system, irq, softirq), from /proc/stat.
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .enumerate()
        .filter(|(i, _)| matches!(i, 0 | 1 | 2 | 5 | 6))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

pub(super) async fn spectators(
    args: &Args,
    target: &Target,
    riders: &[String],
    processes: &[(&'static str, Option<u32>)],
) -> anyhow::Result<String> {
    let length = args.spectators_ramp + args.spectators_hold;
    println!(
        "{} spectators arriving over {} and staying {} more, {} entrants riding …",
        report::thousands(args.spectators as f64),
        humantime::format_duration(args.spectators_ramp),
        humantime::format_duration(args.spectators_hold),
        report::thousands(riders.len() as f64),
    );
    let fleet = Fleet::new(target, riders)?;
    let stop = Arc::new(AtomicBool::new(false));
    let riding = {
        let stop = stop.clone();
        async move {
            let mut second = 0;
            while !stop.load(Ordering::Relaxed) {
                let tick = Instant::now();
                fleet.second(second, None).await?;
                second += 1;
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
            }
            anyhow::Ok(())
        }
    };
    let cpu_before: Vec<Duration> = processes.iter().map(|(_, pid)| cpu_time(*pid)).collect();
    let (busy_before, begin) = (machine_busy(), Instant::now());
    let env = [
        ("EVENT", EVENT.to_owned()),
        ("SPECTATORS", args.spectators.to_string()),
        ("RAMP", format!("{}s", args.spectators_ramp.as_secs())),
        ("HOLD", format!("{}s", args.spectators_hold.as_secs())),
    ];
    let run = async {
        let summary = k6::run(&args.scripts, "spectators.js", target, &env).await;
        stop.store(true, Ordering::Relaxed);
        summary
    };
    let (summary, rode) = tokio::join!(run, riding);
    let (summary, ()) = (summary?, rode?);
    let elapsed = begin.elapsed();
    let share = |d: Duration| 100.0 * d.as_secs_f64() / elapsed.as_secs_f64();
    let mut cores = String::new();
    let mut services = Duration::ZERO;
    for ((name, pid), before) in processes.iter().zip(&cpu_before) {
        let used = cpu_time(*pid).saturating_sub(*before);
        services += used;
        let _ = write!(cores, "{name} {:.0} %, ", share(used));
    }
    let busy = machine_busy().saturating_sub(busy_before);
    let _ = write!(
        cores,
        "k6 and the rest {:.0} % (of 200 %: the machine was busy {:.0} %)",
        share(busy.saturating_sub(services)),
        share(busy),
    );

    let [p50, p95, p99] = latencies(&summary, "http_req_duration");
    let row = |name: &str| {
        let trend = format!("http_req_duration{{name:{name}}}");
        format!(
            "| `{name}` | {} | {:.1} | {:.1} | {:.1} |",
            report::thousands(summary.get(&trend, "count")),
            summary.get(&trend, "med"),
            summary.get(&trend, "p(95)"),
            summary.get(&trend, "p(99)"),
        )
    };
    let mut table = String::from("| requests | count | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|\n");
    let _ = writeln!(
        table,
        "| **all** | {} | {p50:.1} | {p95:.1} | **{p99:.1}** |",
        report::thousands(summary.get("http_reqs", "count"))
    );
    for name in ["page", "asset", "event", "course", "profile", "standings", "checkpoints", "flow"] {
        let _ = writeln!(table, "{}", row(name));
    }
    let [open50, open95, open99] = latencies(&summary, "spectator_open");
    let [snap50, _, snap99] = latencies(&summary, "spectator_snapshot");
    let [live50, live95, live99] = latencies(&summary, "spectator_progress_latency");
    Ok(format!(
        "**{} spectators** of a {}-entrant event, all connected at once for the last {}: \
         **p99 {p99:.0} ms** over {} requests, {} failed, {} of {} visits failed (checks \
         failed: {}).\n\n\
         {table}\n\
         | per spectator | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|\n\
         | arriving to every answer of the first load there | {open50:.0} | {open95:.0} | {open99:.0} |\n\
         | WebSocket opened to the standings snapshot | {snap50:.0} | | {snap99:.0} |\n\
         | a `progress` frame's age on arrival (from the collector's accept of its oldest reading) | {live50:.0} | {live95:.0} | {live99:.0} |\n\n\
         - `k6/spectators.js`: {} spectators arriving evenly over {} and staying until {} after \
         the first, each a first visit of the page (no cache): the page and its assets from the \
         hub; the event, course and profile; the standings; the checkpoints and the race flow \
         (each group in parallel, gzipped); then the hub's WebSocket subscribed to the event, \
         the standings asked again every 30 s. Meanwhile every entrant's progress arrives every \
         10 s (`POST …/derived`, as the progress service sends it): {} `progress` frames reached \
         the spectators, each of every entrant's new progress in the last 500 ms.\n\
         - Where the two cores went over the run's {}: {cores}.\n",
        report::thousands(args.spectators as f64),
        report::thousands(riders.len() as f64),
        humantime::format_duration(args.spectators_hold),
        report::thousands(summary.get("http_reqs", "count")),
        report::thousands(summary.http_failed()),
        report::thousands(summary.get("spectator_failed", "passes")),
        report::thousands(args.spectators as f64),
        summary.failed_checks(),
        report::thousands(args.spectators as f64),
        humantime::format_duration(args.spectators_ramp),
        humantime::format_duration(length),
        report::thousands(summary.get("spectator_progress_frames", "count")),
        humantime::format_duration(Duration::from_secs(elapsed.as_secs())),
    ))
}
