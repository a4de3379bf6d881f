//! `collector event scratch` and `collector event reinstate`: an event's organiser records
//! that a rider is out of the event (did not finish) or back in it, into a running
//! collector, with their organiser token (docs/events.md). What is recorded is a reading of
//! the rider (`event_status`, docs/schema.md), made durable by the collector like any other;
//! the command retries a collector that is busy or unreachable for a while, and says plainly
//! what the collector refused.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use velometry_core::event::status::Reason;

/// Flags of `collector event`.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// What to record.
    #[command(subcommand)]
    pub command: EventCommand,
}

/// `collector event …`.
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Mark a rider as out of the event (did not finish).
    Scratch(ScratchArgs),
    /// Put a scratched rider back in the event.
    Reinstate(Change),
}

/// What every status change names.
#[derive(Debug, Args)]
pub struct Change {
    /// The collector to send to (its ingest listener).
    #[arg(long, env = "VELOMETRY_TARGET", default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// An organiser token of the event (an `[[organiser]]` of the riders file).
    #[arg(long, env = "VELOMETRY_ORGANISER_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The event's id.
    #[arg(long, env = "VELOMETRY_EVENT")]
    pub event: String,
    /// The rider's id (an entrant of the event).
    #[arg(long, env = "VELOMETRY_RIDER")]
    pub rider: String,
    /// When it happened (RFC 3339, e.g. 2026-07-28T03:10:00+02:00); now by default.
    #[arg(long, env = "VELOMETRY_AT")]
    pub at: Option<String>,
}

/// Flags of `collector event scratch`.
#[derive(Debug, Args)]
pub struct ScratchArgs {
    /// The rider and the event.
    #[command(flatten)]
    pub change: Change,
    /// Why, if the organiser wants to say.
    #[arg(long, env = "VELOMETRY_SCRATCH_REASON", value_enum)]
    pub reason: Option<ReasonArg>,
}

/// Why a rider is scratched, as the command line spells it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReasonArg {
    /// The rider stopped of their own will.
    Withdrew,
    /// The rider missed a cut-off.
    Cutoff,
    /// The organisers put the rider out.
    Disqualified,
    /// Injury, illness, a crash.
    Medical,
    /// Anything else.
    Other,
}

impl From<ReasonArg> for Reason {
    fn from(reason: ReasonArg) -> Reason {
        match reason {
            ReasonArg::Withdrew => Reason::Withdrew,
            ReasonArg::Cutoff => Reason::Cutoff,
            ReasonArg::Disqualified => Reason::Disqualified,
            ReasonArg::Medical => Reason::Medical,
            ReasonArg::Other => Reason::Other,
        }
    }
}

/// Attempts before giving up on a collector that is down or busy.
const ATTEMPTS: u32 = 8;

/// Sends the change; prints what the collector recorded.
///
/// # Errors
/// What the collector refused and why (an unknown token, another event's organiser, a rider
/// who is not an entrant), or that it could not be reached.
pub async fn run(args: EventArgs) -> anyhow::Result<()> {
    let (change, status, reason) = match args.command {
        EventCommand::Scratch(s) => (s.change, "scratched", s.reason.map(|r| Reason::from(r).name())),
        EventCommand::Reinstate(c) => (c, "racing", None),
    };
    let mut body = serde_json::json!({ "status": status });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    if let Some(at) = &change.at {
        body["time"] = at.clone().into();
    }
    let url = format!(
        "{}/v1/events/{}/riders/{}/status",
        change.target.trim_end_matches('/'),
        change.event,
        change.rider
    );
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let mut delay = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        let response = http
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, format!("Token {}", change.token))
            .json(&body)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => {
                let answer: serde_json::Value =
                    r.json().await.context("the collector's answer is not JSON")?;
                let verb = if status == "racing" { "reinstated" } else { "scratched" };
                let why = answer["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
                println!(
                    "{verb} {} in {} at {}{why}, recorded by {}",
                    answer["rider"].as_str().unwrap_or_default(),
                    answer["event"].as_str().unwrap_or_default(),
                    answer["time"].as_str().unwrap_or_default(),
                    answer["organiser"].as_str().unwrap_or_default()
                );
                return Ok(());
            }
            Ok(r) if matches!(r.status().as_u16(), 429 | 502 | 503 | 504) && attempt < ATTEMPTS => {}
            Ok(r) => {
                let code = r.status();
                let text: serde_json::Value = r.json().await.unwrap_or_default();
                let message = text["error"].as_str().unwrap_or("(no message)").to_owned();
                anyhow::bail!("the collector refused it with {code}: {message}");
            }
            Err(e) if attempt == ATTEMPTS => {
                return Err(anyhow::Error::new(e).context(format!("cannot reach the collector at {url}")))
            }
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    anyhow::bail!("the collector stayed busy through {ATTEMPTS} attempts; try again later")
}
