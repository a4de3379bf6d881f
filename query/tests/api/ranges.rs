//! Ranges at the bounds of what the API accepts (1970-01-01 to 2200-01-01): every route
//! answers the widest within its budget, and anything wider is refused naming the bounds.

use velometry_core::testkit::InfluxServer;

use crate::helpers::*;

/// The widest range, in epoch milliseconds.
const WIDEST: &str = "from=0&to=7258118400000";

#[tokio::test]
async fn every_route_answers_the_widest_range_within_its_budget() {
    let influx = InfluxServer::start().await.expect("influxd");
    // Forty minutes of a ride three days ago, old enough for the rollup tiers.
    let now = velometry_core::time::now_nanos();
    let start = (now - 3 * DAY).div_euclid(HOUR) * HOUR + 17 * SECOND;
    let samples = ride(start, 40 * 60, 11);
    write_all(&influx, &ride_lines("alice", &samples)).await;
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    wait_for_watermark(&influx, start + 2 * HOUR).await;
    let (first_ms, last_ms) = (samples[0].time / 1_000_000, samples[samples.len() - 1].time / 1_000_000);

    for method in ["m4", "lttb", "mean"] {
        for tier in ["auto", "raw", "1m", "1h"] {
            let path = format!(
                "/v1/riders/alice/series/heart_rate?{WIDEST}&max_points=100&method={method}&tier={tier}"
            );
            let (status, body) = get(&service, &path, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            let got = points(&body);
            assert!(!got.is_empty() && got.len() <= 100, "{path}: {} points", got.len());
            let bucket = body["bucket_ms"].as_i64().expect("bucket_ms");
            assert!(bucket >= 24 * 3_600_000, "{path}: buckets of {bucket} ms for 230 years");
            // Buckets start where they start; their values are the ride's.
            let in_ride = |t: i64| (first_ms - bucket..=last_ms).contains(&t);
            assert!(got.iter().all(|&(t, _)| in_ride(t)), "{path}: {got:?}");
        }
    }
    let (status, track) =
        get(&service, &format!("/v1/riders/alice/track?{WIDEST}&max_points=100"), None).await;
    assert_eq!(status, 200, "{track}");
    let vertices = track["geometry"]["coordinates"].as_array().map_or(0, Vec::len);
    assert!((2..=100).contains(&vertices), "{vertices} vertices");
    let (status, summary) = get(&service, &format!("/v1/riders/alice/summary?{WIDEST}"), None).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["heart_rate"]["samples"].as_u64(), Some(samples.len() as u64), "{summary}");
    assert!(summary["distance_m"].as_f64().is_some_and(|d| d > 1_000.0), "{summary}");
    let (status, latest) = get(&service, "/v1/riders/alice/latest", None).await;
    assert_eq!(status, 200);
    let last = &samples[samples.len() - 1];
    assert_eq!(latest["metrics"]["heart_rate"]["fields"]["bpm"].as_f64(), Some(last.bpm), "{latest}");
    for format in ["csv", "gpx"] {
        let (status, _, text) =
            get_raw(&service, &format!("/v1/riders/alice/export.{format}?{WIDEST}"), None).await;
        assert_eq!(status, 200, "{text}");
        let records =
            if format == "csv" { text.lines().count() - 1 } else { text.matches("<trkpt ").count() };
        assert_eq!(records, samples.len(), "export.{format}");
    }
    // Right against the end: answered, empty.
    for path in [
        "series/heart_rate?to=7258118400000",
        "summary?from=7258118399999&to=7258118400000",
        "track?to=7258118400000",
    ] {
        let (status, body) = get(&service, &format!("/v1/riders/alice/{path}"), None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn ranges_the_arithmetic_cannot_hold_are_refused_naming_the_bounds() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    write_all(&influx, &ride_lines("alice", &ride(now - DAY, 60, 4))).await;
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    let routes =
        ["series/heart_rate?method=mean&max_points=100&", "track?", "summary?", "export.gpx?", "export.csv?"];
    let ranges = [
        // 300 years: more nanoseconds than an i64 holds; was 200 with every raw point.
        "from=1800-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
        // Near the end of what chrono reads: was an empty summary and a null track.
        "from=2026-01-01T00:00:00Z&to=2262-04-11T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2200-01-01T00:00:00.001Z",
        "from=-1&to=1000",
        "from=1969-12-31T23:59:59Z",
    ];
    for route in routes {
        for range in ranges {
            let path = format!("/v1/riders/alice/{route}{range}");
            let (status, body) = get(&service, &path, None).await;
            assert_eq!(status, 400, "{path}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("1970-01-01T00:00:00.000Z") && error.contains("2200-01-01T00:00:00.000Z"),
                "{path}: {error:?} does not name the bounds"
            );
        }
    }
}
