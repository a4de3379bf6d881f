//! The command line: `collector serve`, `token`, `import`, `replay` and `event`. Every flag of `serve` is also
//! an environment variable (`VELOMETRY_…`).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::{Settings, SinkSettings};
use crate::ingest::BodyLimits;
use velometry_core::cli::parse_bytes;
use velometry_core::influx::InfluxAuth;
use velometry_core::server::ServerLimits;

/// Velometry's collector: accepts readings from devices, phone apps, Influx clients and
/// ride files, makes them durable before it answers, and writes them to InfluxDB.
#[derive(Debug, Parser)]
#[command(name = "collector", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector daemon.
    Serve(Box<ServeArgs>),
    /// Print a fresh random device or viewer token and the SHA-256 to put in the riders file.
    Token,
    /// Send ride files (FIT, GPX, TCX, optionally gzipped) to a running collector; a FIT file
    /// cut short is sent up to the cut, with a warning.
    Import(crate::import::ImportArgs),
    /// Play a recorded ride, or simulated riders, as live traffic into a running collector.
    Replay(crate::replay::ReplayArgs),
    /// Scratch a rider from an event, or reinstate them, with an organiser token, into a
    /// running collector.
    Event(crate::event::EventArgs),
}

/// The InfluxDB API the collector writes with.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SinkKind {
    /// `POST /write?db=…`: InfluxDB 1.x, and 2.x/3.x through their v1-compatible API.
    InfluxV1,
    /// `POST /api/v2/write?org=…&bucket=…` with a token: InfluxDB 1.8+, 2.x, 3.x.
    InfluxV2,
}

/// Flags of `collector serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP ingest listener.
    #[arg(long, env = "VELOMETRY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Address of the listener that serves only `/metrics`.
    #[arg(long, env = "VELOMETRY_METRICS_LISTEN", default_value = "127.0.0.1:9180")]
    pub metrics_listen: SocketAddr,
    /// The riders file (TOML): riders, their devices' token hashes (and an OwnTracks
    /// device's `owntracks_key`, its encryption secret: keep the file private), and viewers.
    #[arg(long, env = "VELOMETRY_RIDERS")]
    pub riders: PathBuf,
    /// How often the riders file and its events' course files are checked for changes; a
    /// change (or SIGHUP) is put in force without a restart, and one that cannot be used
    /// is logged and keeps the configuration in force (docs/events.md).
    #[arg(long, env = "VELOMETRY_RIDERS_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub riders_poll: Duration,
    /// Which InfluxDB write API to use.
    #[arg(long, env = "VELOMETRY_SINK", value_enum, default_value = "influx-v1")]
    pub sink: SinkKind,
    /// InfluxDB base URL.
    #[arg(long, env = "VELOMETRY_INFLUX_URL", default_value = "http://127.0.0.1:8086")]
    pub influx_url: String,
    /// InfluxDB database (v1 API); created on InfluxDB 1.x when missing.
    #[arg(long, env = "VELOMETRY_INFLUX_DB", default_value = "velometry")]
    pub influx_db: String,
    /// InfluxDB API token (`Authorization: Token …`); required by the v2 API.
    #[arg(long, env = "VELOMETRY_INFLUX_TOKEN", hide_env_values = true)]
    pub influx_token: Option<String>,
    /// InfluxDB 1.x user (with --influx-password).
    #[arg(long, env = "VELOMETRY_INFLUX_USER")]
    pub influx_user: Option<String>,
    /// InfluxDB 1.x password.
    #[arg(long, env = "VELOMETRY_INFLUX_PASSWORD", hide_env_values = true)]
    pub influx_password: Option<String>,
    /// InfluxDB organisation (v2 API).
    #[arg(long, env = "VELOMETRY_INFLUX_ORG", default_value = "velometry")]
    pub influx_org: String,
    /// InfluxDB bucket (v2 API); defaults to --influx-db.
    #[arg(long, env = "VELOMETRY_INFLUX_BUCKET")]
    pub influx_bucket: Option<String>,
    /// Gzip batches sent to InfluxDB (v1 API).
    #[arg(long, env = "VELOMETRY_INFLUX_GZIP", default_value_t = true, action = clap::ArgAction::Set)]
    pub influx_gzip: bool,
    /// Also write every reading to QuestDB, configured by a QuestDB client configuration
    /// string (e.g. `http::addr=127.0.0.1:9000;`).
    #[arg(long, env = "VELOMETRY_QUESTDB", hide_env_values = true)]
    pub questdb: Option<String>,
    /// Lines per batch written to InfluxDB. InfluxDB 1.x recommends 5,000 to 10,000, InfluxDB
    /// 3 10,000: fewer, larger requests cost InfluxDB less CPU per line (BENCHMARKS.md).
    #[arg(long, env = "VELOMETRY_BATCH_LINES", default_value_t = 10_000)]
    pub batch_lines: usize,
    /// Batches in flight to each sink at once.
    #[arg(long, env = "VELOMETRY_SINK_CONCURRENCY", default_value_t = 8)]
    pub sink_concurrency: usize,
    /// Directory of the write-ahead log, the dead-letter files (`dead-letters.<sink>.jsonl`,
    /// lines a sink refused; `dead-letters.devices.jsonl`, OsmAnd and OwnTracks fixes that can
    /// never be stored, answered 2xx so the phone moves on) and the pollers' state. When its
    /// disk is full, ingest answers 503 and accepts nothing, and recovers once space returns.
    #[arg(long, env = "VELOMETRY_WAL_DIR", default_value = "velometry-wal")]
    pub wal_dir: PathBuf,
    /// Bound on WAL data not yet in InfluxDB (e.g. 1GiB, 512MiB, 1000000); when full,
    /// ingest answers 503 and accepts nothing.
    #[arg(long, env = "VELOMETRY_WAL_MAX_BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    pub wal_max_bytes: u64,
    /// NATS server to publish live readings to (gps, heart rate, power, cadence, progress; optional).
    #[arg(long, env = "VELOMETRY_NATS_URL")]
    pub nats_url: Option<String>,
    /// Readings older than this are history, not published live.
    #[arg(long, env = "VELOMETRY_LIVE_MAX_AGE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub live_max_age: Duration,
    /// Scheduled pollers (Fitbit, Strava, tracking pages, any JSON API): a sources file.
    #[arg(long, env = "VELOMETRY_SOURCES")]
    pub sources: Option<PathBuf>,
    /// Readings older than this when they arrive (a ride file, a device syncing after a day
    /// offline) are announced to the query service, which recomputes its rollups over them.
    /// Keep it below the query service's --rollup-resettle.
    #[arg(long, env = "VELOMETRY_LATE_AFTER", default_value = "5m", value_parser = humantime::parse_duration)]
    pub late_after: Duration,
    /// Largest request body, after decompression.
    #[arg(long, env = "VELOMETRY_MAX_BODY_BYTES", default_value = "32MiB", value_parser = parse_bytes)]
    pub max_body_bytes: u64,
    /// Time allowed for a request's headers to arrive.
    #[arg(long, env = "VELOMETRY_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Time allowed for a request body to arrive.
    #[arg(long, env = "VELOMETRY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub read_timeout: Duration,
    /// Time allowed for a whole request.
    #[arg(long, env = "VELOMETRY_REQUEST_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Open connections at most; more are closed at once.
    #[arg(long, env = "VELOMETRY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Requests per second allowed per device token (429 with Retry-After beyond).
    #[arg(long, env = "VELOMETRY_RATE_LIMIT", default_value = "200")]
    pub rate_limit: NonZeroU32,
    /// Requests a token may send at once above its rate.
    #[arg(long, env = "VELOMETRY_RATE_BURST", default_value = "1000")]
    pub rate_burst: NonZeroU32,
    /// On shutdown, how long to keep flushing the WAL to InfluxDB before exiting (what is
    /// left is sent on the next start).
    #[arg(long, env = "VELOMETRY_FLUSH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub flush_timeout: Duration,
    /// For tests only (hidden): a file holding a number of seconds, such as `-600`, by which
    /// the wall clock the collector reads is stepped from the machine's, read again every
    /// 100 ms, so that a test can step this process's clock as a machine's clock is stepped
    /// (docs/ingest.md, "The collector's clock").
    #[arg(long, env = "VELOMETRY_TESTING_CLOCK_STEP_FILE", hide = true)]
    pub testing_clock_step_file: Option<PathBuf>,
    /// How often to ask InfluxDB for the field types it holds (`SHOW FIELD KEYS`), against
    /// which line protocol is checked. Between two questions, a type changed behind the
    /// collector's back (a field written directly, a measurement dropped) is not known.
    #[arg(long, env = "VELOMETRY_FIELD_TYPES_REFRESH", default_value = "60s", value_parser = humantime::parse_duration)]
    pub field_types_refresh: Duration,
}

impl ServeArgs {
    /// Checks flag combinations and builds the settings.
    ///
    /// # Errors
    /// A message naming the flags that do not fit together.
    pub fn into_settings(self) -> Result<Settings, String> {
        let auth = InfluxAuth::from_flags(self.influx_token.clone(), self.influx_user, self.influx_password)?;
        let sink = match self.sink {
            SinkKind::InfluxV1 => SinkSettings::InfluxV1 {
                url: self.influx_url,
                db: self.influx_db,
                auth,
                gzip: self.influx_gzip,
            },
            SinkKind::InfluxV2 => SinkSettings::InfluxV2 {
                url: self.influx_url,
                org: self.influx_org,
                bucket: self.influx_bucket.unwrap_or(self.influx_db),
                token: self.influx_token.ok_or("--sink influx-v2 needs --influx-token")?,
            },
        };
        if self.batch_lines == 0 || self.sink_concurrency == 0 {
            return Err("--batch-lines and --sink-concurrency must be at least 1".into());
        }
        Ok(Settings {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            riders: self.riders,
            riders_poll: self.riders_poll,
            wal_dir: self.wal_dir,
            wal_max_bytes: self.wal_max_bytes,
            sink,
            questdb: self.questdb,
            batch_lines: self.batch_lines,
            sink_concurrency: self.sink_concurrency,
            nats_url: self.nats_url,
            live_max_age: self.live_max_age,
            late_after: self.late_after,
            sources: self.sources,
            body: BodyLimits {
                max_bytes: usize::try_from(self.max_body_bytes)
                    .map_err(|_| "--max-body-bytes is too large")?,
                read_timeout: self.read_timeout,
            },
            server: ServerLimits {
                max_connections: self.max_connections,
                header_timeout: self.header_timeout,
                request_timeout: self.request_timeout,
            },
            rate_per_token: self.rate_limit,
            rate_burst: self.rate_burst,
            flush_timeout: self.flush_timeout,
            testing_clock_step_file: self.testing_clock_step_file,
            field_types_refresh: self.field_types_refresh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
