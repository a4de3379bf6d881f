//! `progress --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use velometry_core::ids::{EventId, RiderId};

/// Where every entrant of every event is along the course, as readings.
#[derive(Debug, Parser)]
#[command(name = "progress", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `progress …`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: follow live readings, write progress, checkpoints, statuses and
    /// stops through the collector (docs/progress.md).
    Serve(Box<ServeArgs>),
    /// Derive a whole event again from the history in InfluxDB and write it through the
    /// collector: after a course or a checkpoint was fixed mid-race (docs/progress.md,
    /// "Recomputing an event").
    Recompute(Box<RecomputeArgs>),
}

/// Where the history is read and the derived readings written: the same for `serve` and
/// `recompute`.
#[derive(Debug, Args)]
pub struct Sources {
    /// The riders file (the same as the collector's): its events, their courses and
    /// entrants.
    #[arg(long, env = "VELOMETRY_RIDERS")]
    pub riders: PathBuf,
    /// InfluxDB base URL, read over InfluxQL (`/query`; 1.x, 2.x and 3.x).
    #[arg(long, env = "VELOMETRY_INFLUX_URL", default_value = "http://127.0.0.1:8086")]
    pub influx_url: String,
    /// InfluxDB database (on 2.x, a database mapped to a bucket).
    #[arg(long, env = "VELOMETRY_INFLUX_DB", default_value = "velometry")]
    pub influx_db: String,
    /// InfluxDB token (2.x, 3.x).
    #[arg(long, env = "VELOMETRY_INFLUX_TOKEN", hide_env_values = true)]
    pub influx_token: Option<String>,
    /// InfluxDB 1.x user (with --influx-password).
    #[arg(long, env = "VELOMETRY_INFLUX_USER")]
    pub influx_user: Option<String>,
    /// InfluxDB 1.x password.
    #[arg(long, env = "VELOMETRY_INFLUX_PASSWORD", hide_env_values = true)]
    pub influx_password: Option<String>,
    /// The collector the derived readings are written to (its ingest listener).
    #[arg(long, env = "VELOMETRY_COLLECTOR", default_value = "http://127.0.0.1:8080")]
    pub collector: String,
    /// This service's token: a `[[service]]` of the riders file (`collector token` makes one).
    #[arg(long, env = "VELOMETRY_SERVICE_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Flags of `progress recompute`.
#[derive(Debug, Args)]
pub struct RecomputeArgs {
    /// The event, by its id in the riders file.
    #[arg(long, value_parser = EventId::parse)]
    pub event: EventId,
    /// Only these entrants (repeat the flag); every entrant when none is given.
    #[arg(long = "rider", value_parser = RiderId::parse)]
    pub rider: Vec<RiderId>,
    /// The riders file, InfluxDB and the collector.
    #[command(flatten)]
    pub sources: Sources,
}

/// Flags of `progress serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, env = "VELOMETRY_PROGRESS_LISTEN", default_value = "0.0.0.0:8060")]
    pub listen: SocketAddr,
    /// Address of the listener that serves only `/metrics`.
    #[arg(long, env = "VELOMETRY_PROGRESS_METRICS_LISTEN", default_value = "127.0.0.1:9160")]
    pub metrics_listen: SocketAddr,
    /// The riders file, InfluxDB and the collector. Changes to the riders file are put in
    /// force without a restart (docs/events.md).
    #[command(flatten)]
    pub sources: Sources,
    /// How often the riders file and its course files are checked for changes.
    #[arg(long, env = "VELOMETRY_RIDERS_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub riders_poll: Duration,
    /// NATS server the collector publishes live readings to.
    #[arg(long, env = "VELOMETRY_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// How often fixes live delivery missed, late readings and organisers' status changes
    /// are read from InfluxDB.
    #[arg(long, env = "VELOMETRY_SYNC_EVERY", default_value = "15s", value_parser = humantime::parse_duration)]
    pub sync_every: Duration,
    /// How far back each sync reads every entrant's fixes: the collector's --live-max-age
    /// (readings older than that on arrival are announced as late instead).
    #[arg(long, env = "VELOMETRY_SYNC_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub sync_window: Duration,
    /// This replica's name, unique among the replicas that share the entrants (default:
    /// `$HOSTNAME` and the process id).
    #[arg(long, env = "VELOMETRY_PROGRESS_REPLICA", default_value_t = super::members::default_name(),
          value_parser = super::members::parse_name)]
    pub replica: String,
    /// The NATS key-value bucket the replicas list themselves in; every rider is owned by one
    /// replica of the list (docs/progress.md, "Replicas").
    #[arg(long, env = "VELOMETRY_PROGRESS_BUCKET", default_value = "velometry_progress")]
    pub replicas_bucket: String,
    /// How long a replica that stopped answering keeps its riders before the others take
    /// them (it heartbeats every fifth of this).
    #[arg(long, env = "VELOMETRY_PROGRESS_LEASE", default_value = "10s", value_parser = lease)]
    pub lease: Duration,
}

/// A lease of at least a second (heartbeats every fifth of it).
fn lease(text: &str) -> Result<Duration, String> {
    let lease = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if lease < Duration::from_secs(1) {
        return Err(format!("{text:?}: a lease is at least 1s (replicas heartbeat every fifth of it)"));
    }
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_flags_fit_together() {
        super::Cli::command().debug_assert();
    }
}
