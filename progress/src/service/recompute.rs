//! `progress recompute`: an event derived again from the history in InfluxDB, from each
//! entrant's start, and written through the collector like everything the service derives.
//! What a fix gave before is overwritten (a point is its time); the running service has
//! taken the changed riders file on its own and goes on from there.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use velometry_core::event::status::event_code;
use velometry_core::influx::InfluxAuth;
use velometry_core::riders::Registry;
use velometry_core::time::now_nanos;

use super::cli::RecomputeArgs;
use super::derived::{event_points, readings, withdrawal};
use super::history::History;
use super::runner::{merged, plan, withdrawals};
use super::writer::{post, MAX_PER_REQUEST};
use crate::checkpoints::Outcome;
use crate::engine::{Config, Engine, Input, RiderState};

/// What one entrant's recomputation gave.
struct Done {
    rider: String,
    fixes: usize,
    written: usize,
    refused: usize,
    withdrawn: usize,
    reached: usize,
    checkpoints: usize,
    status: &'static str,
}

/// Recomputes the event `args.event` (or the entrants `args.rider` of it) and prints a
/// line per entrant.
///
/// # Errors
/// An event or rider that is not in the riders file, InfluxDB or the collector out of
/// reach, readings the collector refused.
pub async fn run(args: RecomputeArgs) -> anyhow::Result<()> {
    let sources = &args.sources;
    let registry = Registry::load(&sources.riders).map_err(|e| anyhow::anyhow!("{e}"))?;
    let event = registry.events().iter().find(|e| e.id == args.event).with_context(|| {
        let ids: Vec<&str> = registry.events().iter().map(|e| e.id.as_str()).collect();
        format!(
            "{} has no event {:?}; its events: {}",
            sources.riders.display(),
            args.event.as_str(),
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        )
    })?;
    if let Some(stranger) = args.rider.iter().find(|r| !event.entrants.iter().any(|e| e.rider == **r)) {
        anyhow::bail!("{stranger} is not an entrant of {}", event.id);
    }
    let entrants: Vec<_> =
        event.entrants.iter().filter(|e| args.rider.is_empty() || args.rider.contains(&e.rider)).collect();
    let auth = InfluxAuth::from_flags(
        sources.influx_token.clone(),
        sources.influx_user.clone(),
        sources.influx_password.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let history = History::new(&sources.influx_url, &sources.influx_db, auth)?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;
    let collector = sources.collector.trim_end_matches('/');
    http.get(format!("{collector}/healthz"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("the collector at {collector} does not answer (--collector)"))?;

    let code = event_code(&event.id);
    let statuses = history
        .statuses(code)
        .await
        .with_context(|| format!("cannot read {}'s status changes from {}", event.id, sources.influx_url))?;
    let config = Config::default();
    let bar = indicatif::ProgressBar::new(entrants.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("  [{bar:40}] {pos}/{len} entrants {msg}")
            .map_err(|e| anyhow::anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
    );
    let mut done = Vec::new();
    for entrant in entrants {
        bar.set_message(entrant.rider.to_string());
        let plan = plan(event, entrant.start).map_err(anyhow::Error::msg)?;
        let fixes = history
            .fixes(&entrant.rider, entrant.start - 1, now_nanos())
            .await
            .with_context(|| format!("cannot read {}'s fixes", entrant.rider))?;
        let theirs: Vec<Input> = statuses
            .get(&entrant.rider)
            .into_iter()
            .flatten()
            .filter(|s| s.time() >= entrant.start)
            .copied()
            .collect();
        let fix_count = fixes.len();
        let inputs = merged(fixes, theirs.into_iter());
        let engine = Engine::new(&plan, &config);
        let mut state = RiderState::default();
        let mut out = Vec::new();
        let mut given = HashSet::new();
        for input in &inputs {
            let Ok(output) = engine.step(&mut state, input) else { continue };
            given.extend(event_points(&output));
            let etas = output.progress.as_ref().and_then(|p| engine.eta(&state, p.time));
            out.extend(readings(code, &output, etas.as_ref()));
        }
        let stale = withdrawals(&history, &entrant.rider, code, entrant.start - 1, &given)
            .await
            .with_context(|| format!("cannot read {}'s stored derived readings", entrant.rider))?;
        let withdrawn = stale.len();
        out.extend(stale.iter().map(|w| withdrawal(code, w)));
        let (mut written, mut refused) = (0, 0);
        for chunk in out.chunks(MAX_PER_REQUEST) {
            if post(&http, collector, &sources.token, &event.id, &entrant.rider, chunk).await {
                written += chunk.len();
            } else {
                refused += chunk.len();
            }
        }
        let outcomes: Vec<Outcome> = state.checkpoints().collect();
        done.push(Done {
            rider: entrant.rider.to_string(),
            fixes: fix_count,
            written,
            refused,
            withdrawn,
            reached: outcomes.iter().filter(|o| matches!(o, Outcome::Reached(_))).count(),
            checkpoints: outcomes.len(),
            status: engine.status_at(&state, now_nanos()).name(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    print!("{}", report(&event.id.to_string(), &done));
    let refused: usize = done.iter().map(|d| d.refused).sum();
    if refused > 0 {
        anyhow::bail!("the collector refused {refused} derived readings (its answer is logged above)");
    }
    Ok(())
}

/// The table printed at the end.
fn report(event: &str, done: &[Done]) -> String {
    let mut text = format!("{event}: {} entrants recomputed\n", done.len());
    text.push_str(&format!(
        "{:<24} {:>8} {:>9} {:>12} {:>10}  {}\n",
        "rider", "fixes", "readings", "checkpoints", "withdrawn", "status"
    ));
    for d in done {
        text.push_str(&format!(
            "{:<24} {:>8} {:>9} {:>12} {:>10}  {}\n",
            d.rider,
            d.fixes,
            d.written,
            format!("{} of {}", d.reached, d.checkpoints),
            d.withdrawn,
            d.status
        ));
    }
    text
}
