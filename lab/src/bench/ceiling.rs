//! The ceiling scenarios: the highest request rate (or the most followers) a service holds
//! with no error and p99 under its bound, found by doubling and then bisecting.

use std::fmt::Write as _;

use anyhow::{bail, Context};

use super::k6::{self, Summary, Target};
use super::{report, Args};
use crate::stack::EVENT;

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

pub(super) async fn ingest_ceiling(args: &Args, target: &Target) -> anyhow::Result<String> {
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

pub(super) async fn history_ceiling(args: &Args, target: &Target) -> anyhow::Result<String> {
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

pub(super) async fn live_ceiling(args: &Args, target: &Target) -> anyhow::Result<String> {
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

pub(super) async fn standings(args: &Args, target: &Target) -> anyhow::Result<String> {
    let event = if args.collector_url.is_some() { "demo-race" } else { EVENT };
    // The first answer after a start is made while its callers wait (there is no earlier one
    // to give them); a service that has been up for a second gives the previous one. Ask once
    // so that the steps measure the running service, not its first second.
    let url = format!("{}/v1/events/{event}/standings", target.query);
    let first = reqwest::get(&url).await.with_context(|| format!("cannot ask {url}"))?;
    if !first.status().is_success() {
        bail!("{url} answered {}: {}", first.status(), first.text().await.unwrap_or_default());
    }
    let baseline = ceiling_of(args, target, "healthz", event).await?;
    let steps = ceiling_of(args, target, "standings", event).await?;
    let (answer, bound) = (ceiling(&steps), ceiling(&baseline));
    let p50 = |route: &'static str| {
        move |s: &Step| format!("{:.1}", s.summary.get(&format!("http_req_duration{{kind:{route}}}"), "med"))
    };
    let table = steps_table(&steps, "requests/s", "p50 ms", p50("standings"));
    let baseline_table = steps_table(&baseline, "requests/s", "p50 ms", p50("healthz"));
    Ok(format!(
        "**Ceiling: {} requests/s** of `GET /v1/events/{event}/standings` held for {} with no failed \
         request, none dropped, and p99 under {} ms: {:.0} % of the {} requests/s that the same \
         server's `/healthz` held beside it, the most k6 and the HTTP stack do on this machine.\n\n\
         {table}\n\
         The baseline, `GET /healthz` (the same listener, limits and request metrics, nothing \
         behind them), run just before:\n\n{baseline_table}\n\
         {} entrants, each with half an hour of progress (a reading every 10 s), anonymous \
         requests (`k6/standings.js`, `ROUTE=healthz` for the baseline), one asked before the \
         steps: the service makes the answer once a second and every caller shares it, so the \
         ceiling is the cost of sending it. k6 shares the two cores.\n",
        report::thousands(answer as f64),
        hold(args),
        args.standings_p99,
        if bound == 0 { 0.0 } else { 100.0 * answer as f64 / bound as f64 },
        report::thousands(bound as f64),
        report::thousands(args.riders as f64),
    ))
}

/// The ceiling search of `k6/standings.js` asking `route` (standings, or the healthz baseline).
async fn ceiling_of(
    args: &Args,
    target: &Target,
    route: &'static str,
    event: &str,
) -> anyhow::Result<Vec<Step>> {
    let duration = format!("http_req_duration{{kind:{route}}}");
    search(250, 16_000, |rate| {
        let duration = duration.clone();
        async move {
            println!("{route} at {rate} requests/s for {} …", hold(args));
            let env = [
                ("RATE", rate.to_string()),
                ("DURATION", hold(args)),
                ("VUS", (rate / 4).clamp(50, 400).to_string()),
                ("EVENT", event.to_owned()),
                ("ROUTE", route.to_owned()),
            ];
            let summary = k6::run(&args.scripts, "standings.js", target, &env).await?;
            let p99 = summary.get(&duration, "p(99)");
            let passed = summary.http_failed() == 0.0 && summary.dropped() == 0.0 && p99 < args.standings_p99;
            println!("  p99 {p99:.1} ms, failed {}, dropped {}", summary.http_failed(), summary.dropped());
            Ok(Step { rate, summary, p99, passed })
        }
    })
    .await
}
