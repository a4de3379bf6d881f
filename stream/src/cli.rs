//! The command line: `stream serve`. Every flag is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::Settings;
use crate::feed::FeedSettings;
use crate::state::Limits;
use velometry_core::cli::parse_bytes;

/// Velometry's stream hub: pushes live GPS and heart rate to browsers over WebSocket, fed
/// by NATS; run as many replicas as you like behind a plain load balancer.
#[derive(Debug, Parser)]
#[command(name = "stream", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub.
    Serve(Box<ServeArgs>),
}

/// Flags of `stream serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP listener (spectator page at `/`, WebSocket at `/v1/live`).
    #[arg(long, env = "VELOMETRY_STREAM_LISTEN", default_value = "0.0.0.0:8090")]
    pub listen: SocketAddr,
    /// Address of the listener that serves only `/metrics`.
    #[arg(long, env = "VELOMETRY_STREAM_METRICS_LISTEN", default_value = "127.0.0.1:9190")]
    pub metrics_listen: SocketAddr,
    /// NATS server the collector publishes live readings to.
    #[arg(long, env = "VELOMETRY_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The riders file (the same as the collector's).
    #[arg(long, env = "VELOMETRY_RIDERS")]
    pub riders: PathBuf,
    /// How often the riders file and its events' course files are checked for changes; a
    /// change (or SIGHUP) is put in force without a restart, and one that cannot be used
    /// is logged and keeps the configuration in force (docs/events.md).
    #[arg(long, env = "VELOMETRY_RIDERS_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub riders_poll: Duration,
    /// Open WebSockets at most; more are refused with 503 and Retry-After.
    #[arg(long, env = "VELOMETRY_STREAM_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Comma-separated browser origins allowed to connect (e.g. https://ride.example);
    /// every origin when unset.
    #[arg(long, env = "VELOMETRY_STREAM_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// How much of each rider's recent track a new map receives.
    #[arg(long, env = "VELOMETRY_STREAM_TRAIL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub trail: Duration,
    /// How long NATS keeps live readings for replay.
    #[arg(long, env = "VELOMETRY_STREAM_HISTORY", default_value = "24h", value_parser = humantime::parse_duration)]
    pub history: Duration,
    /// Bytes of live readings NATS keeps at most (e.g. 1GiB, 256MiB); a JetStream store with
    /// less room gets a smaller stream and a warning.
    #[arg(long, env = "VELOMETRY_STREAM_HISTORY_MAX_BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    pub history_max_bytes: u64,
    /// JetStream replicas of the hub's streams: 1 on a single NATS server, 3 on a
    /// three-server cluster (losing a server then loses no live history). A change applies
    /// to existing streams at the next start.
    #[arg(long, env = "VELOMETRY_STREAM_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,
    /// Frames queued per connection; when full, the newest reading of a rider's metric
    /// replaces the queued one.
    #[arg(long, env = "VELOMETRY_STREAM_QUEUE", default_value_t = 64)]
    pub queue: usize,
    /// A client whose queue stays full (or whose socket takes a send) this long is closed
    /// with code 4008.
    #[arg(long, env = "VELOMETRY_STREAM_SLOW_AFTER", default_value = "10s", value_parser = humantime::parse_duration)]
    pub slow_after: Duration,
    /// Interval of WebSocket pings.
    #[arg(long, env = "VELOMETRY_STREAM_PING", default_value = "20s", value_parser = humantime::parse_duration)]
    pub ping: Duration,
    /// A client that sends nothing, not even a pong, for this long is closed (code 4001).
    #[arg(long, env = "VELOMETRY_STREAM_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// How often an event's followers get the new progress of its entrants, in one frame
    /// (the spectator page draws at most once a second).
    #[arg(long, env = "VELOMETRY_STREAM_PROGRESS_EVERY", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub progress_every: Duration,
    /// Largest message a client may send.
    #[arg(long, env = "VELOMETRY_STREAM_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,
    /// The query service's URL as spectators' browsers reach it (the page reads history,
    /// standings and exports there), e.g. https://query.example.org.
    #[arg(long, env = "VELOMETRY_STREAM_QUERY_URL")]
    pub query_url: Option<String>,
    /// Map tile URL template for the spectator page (`{z}/{x}/{y}`, `{s}` for subdomains);
    /// `none` draws the course and riders on a plain background, for offline use.
    #[arg(long, env = "VELOMETRY_STREAM_TILE_URL", default_value = crate::page::OSM_TILES)]
    pub tile_url: String,
    /// The attribution the tiles' licence asks for (HTML), shown on the map.
    #[arg(long, env = "VELOMETRY_STREAM_TILE_ATTRIBUTION", default_value = crate::page::OSM_ATTRIBUTION)]
    pub tile_attribution: String,
}

impl ServeArgs {
    /// The settings these flags describe.
    pub fn into_settings(self) -> Settings {
        Settings {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            riders: self.riders,
            riders_poll: self.riders_poll,
            feed: FeedSettings {
                url: self.nats_url,
                trail: self.trail,
                history: self.history,
                history_max_bytes: self.history_max_bytes,
                replicas: usize::from(self.nats_replicas),
            },
            max_connections: self.max_connections,
            progress_every: self.progress_every,
            allowed_origins: self.allowed_origins,
            limits: Limits {
                queue: self.queue,
                slow_after: self.slow_after,
                ping_every: self.ping,
                idle_timeout: self.idle_timeout,
                max_message_bytes: self.max_message_bytes,
            },
            page: crate::page::PageSettings {
                query_url: self.query_url.map(|u| u.trim_end_matches('/').to_owned()),
                tile_url: Some(self.tile_url).filter(|u| u != "none"),
                tile_attribution: self.tile_attribution,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
