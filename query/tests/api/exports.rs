//! What exports cost: a wide range around a short ride, or rides a year apart, ask InfluxDB
//! only where the data is (counted in the service's InfluxDB requests), and an export is
//! bounded by `--max-export-points`.

use std::time::Instant;

use velometry_core::testkit::InfluxServer;

use crate::files::{csv, range, START};
use crate::helpers::*;

/// A query service whose only InfluxDB requests are the ones asked of it (no rollup job).
async fn quiet(
    influx: &InfluxServer,
    riders: &tempfile::TempDir,
    extra: &[&str],
) -> velometry_core::testkit::Service {
    let mut args = vec!["--rollups=false", "--rollup-interval=1h"];
    args.extend_from_slice(extra);
    query(influx, riders, &args).await
}

#[tokio::test]
async fn a_wide_export_asks_influxdb_only_where_the_data_is() {
    let influx = InfluxServer::start().await.expect("influxd");
    // A 37-minute ride, exported with 10.9 years of range around it.
    let samples = ride(START, 37 * 60, 9);
    write_all(&influx, &ride_lines("alice", &samples)).await;
    let riders = riders_file();
    let service = quiet(&influx, &riders, &[]).await;
    let (status, _, narrow) =
        get_raw(&service, &format!("/v1/riders/alice/export.csv?{}", range(&samples)), None).await;
    assert_eq!(status, 200);

    let before = influx_requests(&service).await;
    let started = Instant::now();
    let wide = "from=2018-01-01T00:00:00Z&to=2028-12-01T00:00:00Z";
    let (status, _, text) = get_raw(&service, &format!("/v1/riders/alice/export.csv?{wide}"), None).await;
    let (requests, elapsed) = (influx_requests(&service).await - before, started.elapsed());
    eprintln!("a 37-minute ride in 10.9 years of range: {requests} InfluxDB requests, {elapsed:?}");
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, narrow, "the same file as the ride's own range gives");
    assert_eq!(csv(&text).len(), samples.len() + 1);
    assert!(requests <= 5.0, "{requests} InfluxDB requests for one ride (devices, extent, one window)");
}

#[tokio::test]
async fn two_rides_a_year_apart_export_as_one_file_in_a_few_requests() {
    let influx = InfluxServer::start().await.expect("influxd");
    let first = ride(START, 600, 1);
    let second = ride(START + 365 * DAY + 7 * HOUR, 600, 2);
    write_all(&influx, &(ride_lines("alice", &first) + &ride_lines("alice", &second))).await;
    let riders = riders_file();
    let service = quiet(&influx, &riders, &[]).await;
    let get_csv = |range: String| {
        let service = &service;
        async move {
            let (status, _, text) =
                get_raw(service, &format!("/v1/riders/alice/export.csv?{range}"), None).await;
            assert_eq!(status, 200, "{text}");
            csv(&text)
        }
    };
    let (a, b) = (get_csv(range(&first)).await, get_csv(range(&second)).await);

    let before = influx_requests(&service).await;
    let both =
        get_csv(format!("from={}&to={}", (START - DAY) / 1_000_000, (START + 367 * DAY) / 1_000_000)).await;
    let requests = influx_requests(&service).await - before;
    eprintln!("two rides a year apart: {requests} InfluxDB requests");
    let mut want = a.clone();
    want.extend(b[1..].iter().cloned());
    assert_eq!(both, want, "both rides, in order, and nothing between");
    // Devices, extent, a coarse count, a finer count per occupied coarse bucket, a window
    // per occupied six hours: a dozen at most, where six-hour windows were 1,472.
    assert!(requests <= 12.0, "{requests} InfluxDB requests");
}

#[tokio::test]
async fn an_export_holding_more_than_the_bound_is_refused() {
    let influx = InfluxServer::start().await.expect("influxd");
    let samples = ride(START, 600, 3);
    write_all(&influx, &ride_lines("alice", &samples)).await;
    let riders = riders_file();
    let service = quiet(&influx, &riders, &["--max-export-points=1000"]).await;
    for format in ["gpx", "csv"] {
        let (status, body) =
            get(&service, &format!("/v1/riders/alice/export.{format}?{}", range(&samples)), None).await;
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("3600 readings") && error.contains("--max-export-points"), "{error}");
        // A hundred seconds of six measurements fit.
        let (status, _, _) =
            get_raw(&service, &format!("/v1/riders/alice/export.{format}?{}", range(&samples[..100])), None)
                .await;
        assert_eq!(status, 200);
    }
}
