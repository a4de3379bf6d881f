//! The command line: `query serve`. Every flag is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use velometry_core::influx::InfluxAuth;

use crate::app::Settings;
use crate::rollup::RollupSettings;

/// Velometry's query service: any stretch of a rider's history, a day or a year, answered in
/// milliseconds from rollup tiers it keeps in InfluxDB, downsampled to a point budget.
#[derive(Debug, Parser)]
#[command(name = "query", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (and the rollup job).
    Serve(Box<ServeArgs>),
}

/// Flags of `query serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "VELOMETRY_QUERY_LISTEN", default_value = "0.0.0.0:8070")]
    pub listen: SocketAddr,
    /// Address of the listener that serves only `/metrics`.
    #[arg(long, env = "VELOMETRY_QUERY_METRICS_LISTEN", default_value = "127.0.0.1:9170")]
    pub metrics_listen: SocketAddr,
    /// InfluxDB base URL (1.x, 2.x or 3.x: the service speaks InfluxQL over /query).
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
    /// Ask InfluxDB for gzipped answers. Off by default: compressing costs InfluxDB about a
    /// third of its CPU per query (profiled), which is worth it only over a slow link.
    #[arg(long, env = "VELOMETRY_INFLUX_GZIP", default_value_t = false, action = clap::ArgAction::Set)]
    pub influx_gzip: bool,
    /// How long identical reads share one InfluxDB answer: requests for the same chart made
    /// within it cost InfluxDB one read, and may be that much behind the newest readings.
    /// `0s` turns sharing off.
    #[arg(long, env = "VELOMETRY_READ_CACHE_TTL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub read_cache_ttl: Duration,
    /// The riders file (the same as the collector's): public riders are readable by anyone,
    /// private ones need a viewer token.
    #[arg(long, env = "VELOMETRY_RIDERS")]
    pub riders: PathBuf,
    /// How often the riders file and its events' course files are checked for changes; a
    /// change (or SIGHUP) is put in force without a restart, and one that cannot be used
    /// is logged and keeps the configuration in force (docs/events.md).
    #[arg(long, env = "VELOMETRY_RIDERS_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub riders_poll: Duration,
    /// Compute rollups in this replica (`false`: only read the watermark the others keep).
    #[arg(long, env = "VELOMETRY_ROLLUPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rollups: bool,
    /// Time between rollup cycles.
    #[arg(long, env = "VELOMETRY_ROLLUP_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub rollup_interval: Duration,
    /// A minute is rolled up once it ended this long ago.
    #[arg(long, env = "VELOMETRY_ROLLUP_SETTLE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub rollup_settle: Duration,
    /// Each cycle recomputes this much history before the watermark, for readings that
    /// reach InfluxDB a little late.
    #[arg(long, env = "VELOMETRY_ROLLUP_RESETTLE", default_value = "15m", value_parser = humantime::parse_duration)]
    pub rollup_resettle: Duration,
    /// Late-reading markers are looked for this far back (by acceptance time), for
    /// collectors that deliver them late.
    #[arg(long, env = "VELOMETRY_ROLLUP_LATE_LOOKBACK", default_value = "6h", value_parser = humantime::parse_duration)]
    pub rollup_late_lookback: Duration,
    /// Raw points one request may read at most.
    #[arg(long, env = "VELOMETRY_QUERY_MAX_RAW_POINTS", default_value_t = 5_000_000)]
    pub max_raw_points: usize,
    /// Readings one export may hold at most (all measurements together); a range holding
    /// more is refused with 400. 30 million is about eight weeks of 1 Hz GPS, heart rate,
    /// cadence, power, temperature and distance; a three-week ride is about 11 million.
    #[arg(long, env = "VELOMETRY_QUERY_MAX_EXPORT_POINTS", default_value_t = 30_000_000, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_export_points: i64,
    /// Open connections at most.
    #[arg(long, env = "VELOMETRY_QUERY_MAX_CONNECTIONS", default_value_t = 1_024)]
    pub max_connections: usize,
    /// Time allowed for a request (exports excepted: they stream for as long as they take).
    #[arg(long, env = "VELOMETRY_QUERY_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
}

impl ServeArgs {
    /// Checks flag combinations and builds the settings.
    ///
    /// # Errors
    /// A message naming the flags that do not fit together.
    pub fn into_settings(self) -> Result<Settings, String> {
        let auth = InfluxAuth::from_flags(self.influx_token, self.influx_user, self.influx_password)?;
        if self.max_connections == 0 || self.max_raw_points == 0 {
            return Err("--max-connections and --max-raw-points must be at least 1".into());
        }
        Ok(Settings {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            influx_url: self.influx_url,
            influx_db: self.influx_db,
            influx_auth: auth,
            influx_gzip: self.influx_gzip,
            read_cache_ttl: self.read_cache_ttl,
            riders: self.riders,
            riders_poll: self.riders_poll,
            rollups: RollupSettings {
                interval: self.rollup_interval,
                settle: self.rollup_settle,
                resettle: self.rollup_resettle,
                late_lookback: self.rollup_late_lookback,
                enabled: self.rollups,
            },
            max_raw_points: self.max_raw_points,
            max_export_points: self.max_export_points,
            max_connections: self.max_connections,
            request_timeout: self.request_timeout,
        })
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
