//! Logs and metrics start-up shared by every service.
//!
//! Metrics go to a process-wide Prometheus recorder, served on a listener of its own
//! (`--metrics-listen`) so that scrapes never compete with ingest or queries for limits.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::server::ServerLimits;

/// Buckets of every `_seconds` histogram: 100 µs to 30 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// Records a reload of the riders file on a service's three configuration metrics, named by
/// the service (`[reloads_total, last_reload_successful, last_reload_success_timestamp]`,
/// see docs/metrics.md): at start the counter's two series appear at zero, the gauge says 1
/// and the time is now; each reload counts by result and sets the gauge; a good one sets the
/// time.
pub fn config_reload(reload: crate::riders::reload::Reload, [reloads, ok, success]: [&'static str; 3]) {
    use crate::riders::reload::Reload;
    let now = || crate::time::now_nanos() as f64 / 1e9;
    match reload {
        Reload::Started => {
            metrics::counter!(reloads, "result" => "ok").increment(0);
            metrics::counter!(reloads, "result" => "error").increment(0);
            metrics::gauge!(ok).set(1.0);
            metrics::gauge!(success).set(now());
        }
        Reload::Reloaded => {
            metrics::counter!(reloads, "result" => "ok").increment(1);
            metrics::gauge!(ok).set(1.0);
            metrics::gauge!(success).set(now());
        }
        Reload::Failed => {
            metrics::counter!(reloads, "result" => "error").increment(1);
            metrics::gauge!(ok).set(0.0);
        }
    }
}

/// Starts logging to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (tests in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Installs the process-wide Prometheus recorder once and returns its handle.
///
/// # Errors
/// When another recorder was installed by someone else.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Serves `GET /metrics` on an already bound listener until `shutdown` resolves, with the
/// small limits of [`ServerLimits::METRICS`].
///
/// # Errors
/// Never in practice: accept errors are retried.
pub async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The standard process metrics (CPU seconds, resident memory, open files, threads),
    // read at each scrape.
    let process = metrics_process::Collector::default();
    process.describe();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            process.collect();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }
        }),
    );
    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        ServerLimits::METRICS.request_timeout,
    ));
    crate::server::serve(listener, app, ServerLimits::METRICS, shutdown, Duration::from_secs(1), || {}).await
}

/// Installs the recorder and serves `/metrics` on `listener` in the background until
/// `stop` turns true.
///
/// # Errors
/// When another recorder was installed by someone else.
pub fn spawn_metrics(
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, String> {
    let handle = install_metrics()?;
    let stopped = async move { crate::shutdown::stopped(&mut stop).await };
    Ok(tokio::spawn(serve_metrics(listener, handle, stopped)))
}

/// The metric names quoted in `source` (strings of `prefix` and lowercase letters and `_`),
/// and those of them `doc` (docs/metrics.md) has no table row for: each service's test that
/// every metric it registers is documented.
pub fn undocumented<'a>(source: &'a str, prefix: &str, doc: &str) -> (Vec<&'a str>, Vec<&'a str>) {
    let names: Vec<&str> = source
        .split('"')
        .filter(|s| {
            s.len() > prefix.len()
                && s.starts_with(prefix)
                && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .collect();
    let missing = names.iter().copied().filter(|name| !doc.contains(&format!("| `{name}` |"))).collect();
    (names, missing)
}
