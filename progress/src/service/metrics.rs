//! The progress service's metrics (docs/metrics.md).

/// Config reload metrics: `[reloads_total, last_reload_successful, last_reload_success_timestamp]`.
pub const CONFIG: [&str; 3] = [
    "progress_config_reloads_total",
    "progress_config_last_reload_successful",
    "progress_config_last_reload_success_timestamp_seconds",
];

/// A fix taken by the engine, by how it came (`live`, `sync`, `history`, `recompute`).
pub fn fixes(path: &'static str, n: usize) {
    metrics::counter!("progress_fixes_total", "path" => path).increment(n as u64);
}

/// A rider's progress recomputed from a snapshot, by why (`late`, `missed`, `status`).
pub fn recomputed(reason: &'static str) {
    metrics::counter!("progress_recomputes_total", "reason" => reason).increment(1);
}

/// Derived readings the collector made durable.
pub fn written(n: usize) {
    metrics::counter!("progress_readings_written_total").increment(n as u64);
}

/// Derived points of `measurement` a recomputation no longer gives, withdrawn.
pub fn withdrawn(measurement: &'static str) {
    metrics::counter!("progress_withdrawn_total", "measurement" => measurement).increment(1);
}

/// Derived readings the collector refused.
pub fn refused(n: usize) {
    metrics::counter!("progress_readings_refused_total").increment(n as u64);
}

/// A write to the collector to be tried again.
pub fn write_retry() {
    metrics::counter!("progress_write_retries_total").increment(1);
}

/// Entrants followed.
pub fn entrants(n: usize) {
    metrics::gauge!("progress_entrants").set(n as f64);
}

/// Replicas listed in the replicas' bucket, this one included (0 while NATS is away).
pub fn replicas(n: usize) {
    metrics::gauge!("progress_replicas").set(n as f64);
}

/// A sync with InfluxDB, by result.
pub fn sync(ok: bool) {
    metrics::counter!("progress_syncs_total", "result" => if ok { "ok" } else { "error" }).increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_is_documented() {
        let (names, missing) = velometry_core::telemetry::undocumented(
            include_str!("metrics.rs"),
            "progress_",
            include_str!("../../../docs/metrics.md"),
        );
        assert!(names.len() >= 10, "{names:?}");
        assert!(missing.is_empty(), "docs/metrics.md does not list {missing:?}");
    }
}
