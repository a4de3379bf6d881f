//! Every metric the collector exports, named in one place.
//!
//! Labels are bounded: protocol, reason, route, status, sink and error kind. Never a rider,
//! device or raw path.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Readings accepted, by protocol.
pub const READINGS_ACCEPTED: &str = "collector_readings_accepted_total";
/// Readings rejected, by protocol and reason.
pub const READINGS_REJECTED: &str = "collector_readings_rejected_total";
/// HTTP requests, by route and status.
pub const HTTP_REQUESTS: &str = "collector_http_requests_total";
/// HTTP request duration, by route.
pub const HTTP_DURATION: &str = "collector_http_request_duration_seconds";
/// Bytes in the WAL not yet in the sink.
pub const WAL_BYTES: &str = "collector_wal_bytes";
/// Age of the oldest reading in the WAL not yet in the sink.
pub const WAL_OLDEST_AGE: &str = "collector_wal_oldest_unflushed_age_seconds";
/// Duration of one group commit (write + fsync).
pub const WAL_FSYNC_DURATION: &str = "collector_wal_fsync_duration_seconds";
/// Duration of one batch written to a sink, by sink.
pub const SINK_BATCH_DURATION: &str = "collector_sink_batch_duration_seconds";
/// Lines stored by a sink, by sink.
pub const SINK_LINES: &str = "collector_sink_lines_written_total";
/// Sink errors, by sink and kind (network, server, auth, rejected).
pub const SINK_ERRORS: &str = "collector_sink_errors_total";
/// Lines a sink refused as invalid, written to the dead-letter file, by sink.
pub const DEAD_LETTERS: &str = "collector_dead_letter_lines_total";
/// Device fixes that can never be stored, answered 2xx and dead-lettered, by protocol and
/// reason.
pub const DEVICE_DEAD_LETTERS: &str = "collector_device_dead_letters_total";
/// Device fixes stamped too far ahead, kept at the collector's time, by protocol.
pub const READINGS_RETIMED: &str = "collector_device_fixes_retimed_total";
/// Questions to the database about its field types, by result (ok, error).
pub const FIELD_TYPE_REFRESHES: &str = "collector_field_type_refreshes_total";
/// Live readings published on NATS.
pub const LIVE_PUBLISHED: &str = "collector_live_published_total";
/// Live readings not published, by reason (queue_full, nats).
pub const LIVE_FAILURES: &str = "collector_live_publish_failures_total";

/// Poller runs that stored their readings, by source.
pub const SOURCE_RUNS: &str = "collector_source_runs_total";
/// Readings a poller stored, by source.
pub const SOURCE_READINGS: &str = "collector_source_readings_total";
/// Poller runs that failed, by source and reason.
pub const SOURCE_FAILURES: &str = "collector_source_failures_total";
/// When a poller last ran successfully (Unix seconds), by source.
pub const SOURCE_LAST_SUCCESS: &str = "collector_source_last_success_timestamp_seconds";

pub(crate) fn source_run(source: &str, readings: usize) {
    counter!(SOURCE_RUNS, "source" => source.to_owned()).increment(1);
    counter!(SOURCE_READINGS, "source" => source.to_owned()).increment(readings as u64);
    gauge!(SOURCE_LAST_SUCCESS, "source" => source.to_owned())
        .set(velometry_core::time::now_nanos() as f64 / 1e9);
}

pub(crate) fn source_failure(source: &str, reason: &'static str) {
    counter!(SOURCE_FAILURES, "source" => source.to_owned(), "reason" => reason).increment(1);
}

pub(crate) fn accepted(protocol: &'static str, n: usize) {
    counter!(READINGS_ACCEPTED, "protocol" => protocol).increment(n as u64);
}

pub(crate) fn rejected(protocol: &'static str, reason: &'static str, n: usize) {
    counter!(READINGS_REJECTED, "protocol" => protocol, "reason" => reason).increment(n as u64);
}

pub(crate) fn http_request(route: String, status: u16, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(elapsed.as_secs_f64());
}

pub(crate) fn wal_bytes(bytes: u64) {
    gauge!(WAL_BYTES).set(bytes as f64);
}

pub(crate) fn wal_oldest_age(age: Duration) {
    gauge!(WAL_OLDEST_AGE).set(age.as_secs_f64());
}

pub(crate) fn wal_fsync(elapsed: Duration) {
    histogram!(WAL_FSYNC_DURATION).record(elapsed.as_secs_f64());
}

pub(crate) fn sink_batch(sink: &'static str, lines: usize, elapsed: Duration) {
    histogram!(SINK_BATCH_DURATION, "sink" => sink).record(elapsed.as_secs_f64());
    counter!(SINK_LINES, "sink" => sink).increment(lines as u64);
}

pub(crate) fn sink_error(sink: &'static str, kind: &'static str) {
    counter!(SINK_ERRORS, "sink" => sink, "kind" => kind).increment(1);
}

pub(crate) fn dead_letters(sink: &'static str, n: usize) {
    counter!(DEAD_LETTERS, "sink" => sink).increment(n as u64);
}

pub(crate) fn device_dead_letter(protocol: &'static str, reason: &'static str) {
    counter!(DEVICE_DEAD_LETTERS, "protocol" => protocol, "reason" => reason).increment(1);
}

pub(crate) fn retimed(protocol: &'static str, n: usize) {
    counter!(READINGS_RETIMED, "protocol" => protocol).increment(n as u64);
}

pub(crate) fn field_type_refresh(ok: bool) {
    counter!(FIELD_TYPE_REFRESHES, "result" => if ok { "ok" } else { "error" }).increment(1);
}

pub(crate) fn live_published(n: usize) {
    counter!(LIVE_PUBLISHED).increment(n as u64);
}

pub(crate) fn live_failure(reason: &'static str, n: usize) {
    counter!(LIVE_FAILURES, "reason" => reason).increment(n as u64);
}

/// Reloads of the riders file after it changed (or on SIGHUP), by result (ok, error).
pub const CONFIG_RELOADS: &str = "collector_config_reloads_total";
/// Whether the riders file on disk is the configuration in force (1) or could not be used (0).
pub const CONFIG_LAST_RELOAD_OK: &str = "collector_config_last_reload_successful";
/// When the configuration in force was read (Unix seconds): at start, or at the last reload.
pub const CONFIG_LAST_RELOAD_SUCCESS: &str = "collector_config_last_reload_success_timestamp_seconds";

pub(crate) fn config_reload(reload: velometry_core::riders::reload::Reload) {
    velometry_core::telemetry::config_reload(
        reload,
        [CONFIG_RELOADS, CONFIG_LAST_RELOAD_OK, CONFIG_LAST_RELOAD_SUCCESS],
    );
}

/// Connections closed at once because `--max-connections` were open.
pub const CONNECTIONS_REFUSED: &str = "collector_http_connections_refused_total";

pub(crate) fn connection_refused() {
    counter!(CONNECTIONS_REFUSED).increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_is_documented() {
        let (names, missing) = velometry_core::telemetry::undocumented(
            include_str!("metrics.rs"),
            "collector_",
            include_str!("../../docs/metrics.md"),
        );
        assert!(names.len() >= 14, "{names:?}");
        assert!(missing.is_empty(), "docs/metrics.md does not list {missing:?}");
    }
}
