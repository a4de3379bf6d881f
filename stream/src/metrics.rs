//! Every metric the stream hub exports, named in one place. Never a rider as a label.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Open WebSocket connections.
pub const CONNECTIONS: &str = "stream_connections";
/// Subscriptions (connection × rider).
pub const SUBSCRIPTIONS: &str = "stream_subscriptions";
/// Readings received from NATS.
pub const RECEIVED: &str = "stream_readings_received_total";
/// Readings sent to clients.
pub const DELIVERED: &str = "stream_readings_delivered_total";
/// Readings replaced in a full queue by a newer one of the same rider and metric.
pub const COALESCED: &str = "stream_readings_coalesced_total";
/// Readings dropped from a full queue (no older one of the same kind to replace).
pub const DROPPED: &str = "stream_readings_dropped_total";
/// Connections closed, by reason.
pub const CLOSES: &str = "stream_closes_total";
/// Connections refused, by reason (full, origin).
pub const REFUSED: &str = "stream_connections_refused_total";
/// From the reading's acceptance at the collector to its send to a client.
pub const LATENCY: &str = "stream_delivery_latency_seconds";
/// Messages of the live stream not yet delivered to this replica.
pub const LAG: &str = "stream_nats_consumer_pending";
/// Reloads of the riders file after it changed (or on SIGHUP), by result (ok, error).
pub const CONFIG_RELOADS: &str = "stream_config_reloads_total";
/// Whether the riders file on disk is the configuration in force (1) or could not be used (0).
pub const CONFIG_LAST_RELOAD_OK: &str = "stream_config_last_reload_successful";
/// When the configuration in force was read (Unix seconds): at start, or at the last reload.
pub const CONFIG_LAST_RELOAD_SUCCESS: &str = "stream_config_last_reload_success_timestamp_seconds";

pub(crate) fn config_reload(reload: velometry_core::riders::reload::Reload) {
    velometry_core::telemetry::config_reload(
        reload,
        [CONFIG_RELOADS, CONFIG_LAST_RELOAD_OK, CONFIG_LAST_RELOAD_SUCCESS],
    );
}

pub(crate) fn connections(delta: f64) {
    gauge!(CONNECTIONS).increment(delta);
}

pub(crate) fn subscriptions(delta: f64) {
    gauge!(SUBSCRIPTIONS).increment(delta);
}

pub(crate) fn received() {
    counter!(RECEIVED).increment(1);
}

pub(crate) fn delivered(n: u64) {
    counter!(DELIVERED).increment(n);
}

pub(crate) fn coalesced() {
    counter!(COALESCED).increment(1);
}

pub(crate) fn dropped() {
    counter!(DROPPED).increment(1);
}

pub(crate) fn closed(reason: &'static str) {
    counter!(CLOSES, "reason" => reason).increment(1);
}

pub(crate) fn refused(reason: &'static str) {
    counter!(REFUSED, "reason" => reason).increment(1);
}

pub(crate) fn latency(elapsed: Duration) {
    histogram!(LATENCY).record(elapsed.as_secs_f64());
}

pub(crate) fn lag(pending: u64) {
    gauge!(LAG).set(pending as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_is_documented() {
        let (names, missing) = velometry_core::telemetry::undocumented(
            include_str!("metrics.rs"),
            "stream_",
            include_str!("../../docs/metrics.md"),
        );
        assert!(names.len() >= 10, "{names:?}");
        assert!(missing.is_empty(), "docs/metrics.md does not list {missing:?}");
    }
}
