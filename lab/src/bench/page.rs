//! `bench page`: the spectator page of a 1,000-rider event in headless Chromium against the
//! started stack. How long it takes from navigation to the map, the standings and the race
//! flow drawn (cold and warm cache), what it weighs, and then, with every entrant's progress
//! arriving every 10 s and the selected rider's every second, the page's main-thread work,
//! its heap and how long a reading takes from the collector to the page's table.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use velometry_core::testkit::browser::{Browser, Page, Screen};

use super::fleet::Fleet;
use super::k6::Target;
use super::{report, Args};
use crate::stack::EVENT;

/// Loads measured per cache state.
const LOADS: usize = 5;

/// Milliseconds from navigation to the event view drawn with `rows` standings rows
/// (`performance.mark('velometry:ready')`, set once the map, the standings, the flow and the
/// checkpoints are drawn).
async fn rendered(tab: &mut Page, rows: usize) -> f64 {
    let ready = format!(
        "document.querySelectorAll('#standings tbody tr').length >= {rows} \
         && performance.getEntriesByName('velometry:ready')[0]?.startTime"
    );
    tab.wait_for("the event view", &ready).await.as_f64().unwrap_or(f64::NAN)
}

pub(super) async fn page(args: &Args, target: &Target, riders: &[String]) -> anyhow::Result<String> {
    let followed = riders.first().context("no entrants")?.clone();
    let url = format!("{}/?event={EVENT}&select={followed}", target.stream);
    println!("Opening {url} in Chromium …");
    let browser = Browser::start().await;
    let mut tab = browser.open("about:blank", Screen::Desktop).await;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let mut weight = Vec::new();
    for load in 0..LOADS {
        tab.call("Network.setCacheDisabled", json!({"cacheDisabled": true})).await;
        tab.goto(&url).await;
        cold.push(rendered(&mut tab, riders.len()).await);
        if load == 0 {
            weight = tab.received.iter().map(|(host, bytes)| (host.clone(), *bytes)).collect();
        }
        tab.call("Network.setCacheDisabled", json!({"cacheDisabled": false})).await;
        tab.goto(&url).await;
        warm.push(rendered(&mut tab, riders.len()).await);
    }
    let page_bytes: u64 =
        weight.iter().filter(|(h, _)| target.stream.contains(h.as_str())).map(|(_, b)| b).sum();
    let api_bytes: u64 =
        weight.iter().filter(|(h, _)| !target.stream.contains(h.as_str())).map(|(_, b)| b).sum();

    // Live: every entrant's progress every 10 s, the followed one's every second.
    println!("Following {} entrants live for {} …", riders.len(), humantime::format_duration(args.page_live));
    let fleet = Fleet::new(target, riders)?;
    let row = format!("document.querySelector('#standings tr[data-rider=\"{followed}\"]')?.dataset.fix");
    let begin = Instant::now();
    let first = tab.metrics().await;
    let mut heap = vec![first.get("JSHeapUsedSize").copied().unwrap_or(0.0)];
    let mut latencies = Vec::new();
    let mut second = 0usize;
    while begin.elapsed() < args.page_live {
        let tick = Instant::now();
        let t = fleet.second(second, Some(&followed)).await?;
        if second % 10 == 5 {
            // How long the followed rider's reading took to reach the table.
            let want = json!((t * 1_000).to_string());
            let posted = tick.elapsed();
            let seen = loop {
                if tab.eval(&row).await == want {
                    break Some(tick.elapsed());
                }
                if tick.elapsed() > Duration::from_secs(5) {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            if let Some(seen) = seen {
                latencies.push((seen.saturating_sub(posted / 2)).as_secs_f64() * 1_000.0);
            }
        }
        if second % 60 == 59 {
            heap.push(tab.metrics().await.get("JSHeapUsedSize").copied().unwrap_or(0.0));
        }
        second += 1;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }
    let last = tab.metrics().await;
    let elapsed = begin.elapsed().as_secs_f64();
    let busy =
        |name: &str| 100.0 * (last.get(name).unwrap_or(&0.0) - first.get(name).unwrap_or(&0.0)) / elapsed;
    heap.push(last.get("JSHeapUsedSize").copied().unwrap_or(0.0));
    anyhow::ensure!(
        tab.errors.is_empty(),
        "the page reported {} errors, the first: {:?}",
        tab.errors.len(),
        &tab.errors[..tab.errors.len().min(1)]
    );

    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    let ((cold_p50, cold_max), (warm_p50, warm_max)) = (stats(&cold), stats(&warm));
    let (lat_p50, lat_max) = if latencies.is_empty() { (f64::NAN, f64::NAN) } else { stats(&latencies) };
    let mb = |b: f64| b / 1_048_576.0;
    let heap_max = heap.iter().copied().fold(0.0, f64::max);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| measure | median | worst |\n|---|---|---|\n\
         | first render, cold cache (navigation to map, {n} standings rows, race flow and checkpoints drawn), ms | {cold_p50:.0} | {cold_max:.0} |\n\
         | first render, warm cache, ms | {warm_p50:.0} | {warm_max:.0} |\n\
         | a reading from the collector to the page's table (progress, through NATS and the hub), ms | {lat_p50:.0} | {lat_max:.0} |\n",
        n = report::thousands(riders.len() as f64),
    );
    let _ = writeln!(
        out,
        "- **Weight of the first load**: {} kB from the hub (the page and its assets, compressed), \
         {} kB from the query service (course, profile, standings, flow, checkpoints), headers \
         included.\n\
         - **Live, {}**: every one of {} entrants' progress every 10 s and the selected rider's \
         every second (`POST …/derived` as the progress service sends it). The page's main \
         thread worked **{:.1} %** of one core (Chromium's `TaskDuration`; scripts {:.1} %). \
         Its JavaScript heap: {:.1} MB at the start, {:.1} MB at the end, {:.1} MB at most \
         (sampled every minute).\n\
         - {LOADS} loads each, cold (`Network.setCacheDisabled`) then warm, in one tab of headless \
         Chromium at 1,440 × 900 on this machine, beside the whole stack; no map tiles.",
        report::thousands((page_bytes as f64 / 1024.0).round()),
        report::thousands((api_bytes as f64 / 1024.0).round()),
        humantime::format_duration(Duration::from_secs(elapsed.round() as u64)),
        report::thousands(riders.len() as f64),
        busy("TaskDuration"),
        busy("ScriptDuration"),
        mb(heap[0]),
        mb(*heap.last().unwrap_or(&0.0)),
        mb(heap_max),
    );
    Ok(out)
}
