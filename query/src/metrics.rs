//! Every metric the query service exports, named in one place.
//!
//! Labels are bounded: route, status, tier, outcome. Never a rider or a raw path.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// HTTP requests, by route and status.
pub const HTTP_REQUESTS: &str = "query_http_requests_total";
/// HTTP request duration, by route.
pub const HTTP_DURATION: &str = "query_http_request_duration_seconds";
/// Connections refused because the connection cap was reached.
pub const REFUSED: &str = "query_connections_refused_total";
/// InfluxQL statements sent, by outcome (ok, error).
pub const INFLUX_QUERIES: &str = "query_influx_queries_total";
/// Duration of InfluxQL requests.
pub const INFLUX_DURATION: &str = "query_influx_query_duration_seconds";
/// Reads of repeated statements, by whether InfluxDB was asked or an answer shared.
pub const SHARED_READS: &str = "query_influx_shared_reads_total";
/// Series answers, by the tier they were read from (raw, 1m, 1h).
pub const SERIES_ANSWERS: &str = "query_series_answers_total";
/// Rollup cycles, by outcome (ok, error).
pub const ROLLUP_CYCLES: &str = "query_rollup_cycles_total";
/// Duration of rollup cycles.
pub const ROLLUP_DURATION: &str = "query_rollup_cycle_duration_seconds";
/// Rollup windows written, by tier.
pub const ROLLUP_WINDOWS: &str = "query_rollup_windows_written_total";
/// How far the rollup watermark is behind the clock.
pub const ROLLUP_LAG: &str = "query_rollup_lag_seconds";
/// Ranges recomputed because the collector announced late readings.
pub const LATE_RANGES: &str = "query_rollup_late_ranges_total";
/// Length of history recomputed for late readings.
pub const LATE_SECONDS: &str = "query_rollup_late_recomputed_seconds_total";
/// Reloads of the riders file after it changed (or on SIGHUP), by result (ok, error).
pub const CONFIG_RELOADS: &str = "query_config_reloads_total";
/// Whether the riders file on disk is the configuration in force (1) or could not be used (0).
pub const CONFIG_LAST_RELOAD_OK: &str = "query_config_last_reload_successful";
/// When the configuration in force was read (Unix seconds): at start, or at the last reload.
pub const CONFIG_LAST_RELOAD_SUCCESS: &str = "query_config_last_reload_success_timestamp_seconds";

pub(crate) fn config_reload(reload: velometry_core::riders::reload::Reload) {
    velometry_core::telemetry::config_reload(
        reload,
        [CONFIG_RELOADS, CONFIG_LAST_RELOAD_OK, CONFIG_LAST_RELOAD_SUCCESS],
    );
}

pub(crate) fn http_request(route: String, status: u16, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(elapsed.as_secs_f64());
}

pub(crate) fn refused() {
    counter!(REFUSED).increment(1);
}

pub(crate) fn influx_query(ok: bool, elapsed: Duration) {
    counter!(INFLUX_QUERIES, "outcome" => if ok { "ok" } else { "error" }).increment(1);
    histogram!(INFLUX_DURATION).record(elapsed.as_secs_f64());
}

pub(crate) fn shared_read(shared: bool) {
    counter!(SHARED_READS, "outcome" => if shared { "shared" } else { "read" }).increment(1);
}

pub(crate) fn series_answer(tier: &'static str) {
    counter!(SERIES_ANSWERS, "tier" => tier).increment(1);
}

pub(crate) fn rollup_cycle(outcome: &'static str, elapsed: Duration) {
    counter!(ROLLUP_CYCLES, "outcome" => outcome).increment(1);
    histogram!(ROLLUP_DURATION).record(elapsed.as_secs_f64());
}

pub(crate) fn rollup_windows(tier: &'static str, n: usize) {
    counter!(ROLLUP_WINDOWS, "tier" => tier).increment(n as u64);
}

pub(crate) fn rollup_lag(lag: Duration) {
    gauge!(ROLLUP_LAG).set(lag.as_secs_f64());
}

pub(crate) fn late_range(span: Duration) {
    counter!(LATE_RANGES).increment(1);
    counter!(LATE_SECONDS).increment(span.as_secs());
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_is_documented() {
        let doc = include_str!("../../docs/metrics.md");
        for name in [
            super::HTTP_REQUESTS,
            super::HTTP_DURATION,
            super::REFUSED,
            super::INFLUX_QUERIES,
            super::INFLUX_DURATION,
            super::SHARED_READS,
            super::SERIES_ANSWERS,
            super::ROLLUP_CYCLES,
            super::ROLLUP_DURATION,
            super::ROLLUP_WINDOWS,
            super::ROLLUP_LAG,
            super::LATE_RANGES,
            super::LATE_SECONDS,
        ] {
            assert!(doc.contains(&format!("| `{name}` |")), "docs/metrics.md does not list {name}");
        }
    }
}
