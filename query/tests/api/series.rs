//! Series: answers from the rollup tiers equal answers from the raw points, within budget;
//! every bad parameter gets a message that says what to fix.

use velometry_core::testkit::InfluxServer;
use velometry_query::downsample::{m4, minmax_lttb, windows};

use crate::helpers::*;

fn ms(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    points.iter().map(|&(t, v)| (t.div_euclid(1_000_000), v)).collect()
}

#[tokio::test]
async fn tier_answers_equal_raw_answers_and_stay_within_budget() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    // Three days of 1 Hz heart rate starting ten days ago, 17 s past an hour.
    let start = (now - 10 * DAY).div_euclid(HOUR) * HOUR + 17 * SECOND;
    let (lines, raw) = heart_rate_walk("alice", start, 3 * 86_400, 42);
    for chunk in lines.lines().collect::<Vec<_>>().chunks(50_000) {
        influx.write(DB, &(chunk.join("\n") + "\n")).await.expect("write");
    }
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    wait_for_watermark(&influx, start + 3 * DAY + HOUR).await;

    let ranges = [
        (start, start + 3 * DAY, 1_000),
        (start, start + 3 * DAY, 100),
        (start + 37 * MINUTE + 13 * SECOND, start + 2 * DAY + 5 * HOUR + 11 * MINUTE + 7 * SECOND, 400),
        (start + 6 * HOUR + 500_000_000, start + 30 * HOUR, 500),
    ];
    let mut tiers_seen = Vec::new();
    for (from, to, max_points) in ranges {
        let inside: Vec<(i64, f64)> = raw.iter().copied().filter(|p| p.0 >= from && p.0 < to).collect();
        let range = format!("from={}&to={}&max_points={max_points}", from / 1_000_000, to / 1_000_000);
        // Millisecond bounds: the service sees exactly these.
        let (from, to) = (from / 1_000_000 * 1_000_000, to / 1_000_000 * 1_000_000);
        let inside: Vec<(i64, f64)> = inside.into_iter().filter(|p| p.0 >= from && p.0 < to).collect();
        for method in ["m4", "mean", "lttb"] {
            let path = format!("/v1/riders/alice/series/heart_rate?{range}&method={method}");
            let (status, auto) = get(&service, &path, None).await;
            assert_eq!(status, 200, "{path}: {auto}");
            let tier = auto["tier"].as_str().expect("tier").to_owned();
            assert_ne!(tier, "raw", "{path}: days of data are read from a tier");
            tiers_seen.push(tier.clone());
            let got = points(&auto);
            assert!(got.len() <= max_points, "{path}: {} points", got.len());
            let bucket = auto["bucket_ms"].as_i64().expect("bucket") * 1_000_000;
            let (status, forced_raw) = get(&service, &format!("{path}&tier=raw"), None).await;
            assert_eq!(status, 200, "{forced_raw}");
            assert_eq!(forced_raw["tier"], "raw");
            match method {
                "m4" => {
                    assert_eq!(got, points(&forced_raw), "{path}: tier and raw differ");
                    assert_eq!(got, ms(&m4(&inside, 0, bucket)), "{path}: differs from M4 of the raw points");
                }
                "mean" => {
                    let want = points(&forced_raw);
                    assert_eq!(got.len(), want.len(), "{path}");
                    for (a, b) in got.iter().zip(&want) {
                        assert_eq!(a.0, b.0, "{path}");
                        assert!((a.1 - b.1).abs() < 1e-9, "{path}: mean {} vs {}", a.1, b.1);
                    }
                }
                _ => {
                    let width = if tier == "1h" { HOUR } else { MINUTE };
                    let want = ms(&minmax_lttb(&windows(&inside, 0, width), max_points));
                    assert_eq!(got, want, "{path}: differs from MinMaxLTTB of the raw points");
                }
            }
        }
    }
    assert!(tiers_seen.iter().any(|t| t == "1h") && tiers_seen.iter().any(|t| t == "1m"), "{tiers_seen:?}");
    assert!(counter(&service, "query_series_answers_total{tier=\"1m\"}").await > 0.0);
}

#[tokio::test]
async fn an_hour_of_raw_data_is_answered_raw_and_sparse_data_whole() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let start = now - 2 * HOUR;
    let (lines, raw) = heart_rate_walk("alice", start, 3_600, 7);
    let mut lines = lines;
    // A blood pressure a day for a month.
    for day in 0..30 {
        lines.push_str(&format!(
            "blood_pressure,device=cuff,rider=alice,source=json systolic={},diastolic=80 {}\n",
            110 + day,
            now - (30 - day) * DAY
        ));
    }
    influx.write(DB, &lines).await.expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;

    let path = format!(
        "/v1/riders/alice/series/heart_rate?from={}&to={}&max_points=1000",
        start / 1_000_000,
        (start + HOUR) / 1_000_000
    );
    let (status, body) = get(&service, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tier"], "raw");
    let bucket = body["bucket_ms"].as_i64().expect("bucket") * 1_000_000;
    assert_eq!(points(&body), ms(&m4(&raw, 0, bucket)));
    assert!(points(&body).len() <= 1_000);

    let (status, body) =
        get(&service, "/v1/riders/alice/series/blood_pressure?field=systolic&from=0&max_points=100", None)
            .await;
    assert_eq!(status, 200, "{body}");
    let got = points(&body);
    assert_eq!(got.len(), 30, "thirty readings fit the budget: all of them, raw");
    assert_eq!(got[0].1, 110.0);
    assert_eq!(body["field"], "systolic");
}

#[tokio::test]
async fn identical_requests_share_one_read_and_see_new_readings_once_it_expires() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let start = now - HOUR;
    let (lines, raw) = heart_rate_walk("alice", start, 3_000, 3);
    influx.write(DB, &lines).await.expect("write");
    let riders = riders_file();
    // A time to live long enough that a busy machine still asks again within it.
    let service = query(&influx, &riders, &["--read-cache-ttl=5s"]).await;
    // A range that ends just past a reading, between two seconds: rows past it, read with
    // the whole second, must not show.
    let (from, to) = (start / 1_000_000 - 1_500, (start + 2_998 * SECOND) / 1_000_000 + 1);
    let path = format!("/v1/riders/alice/series/heart_rate?from={from}&to={to}&max_points=10000");
    let inside = raw.iter().filter(|p| p.0 >= from * 1_000_000 && p.0 < to * 1_000_000).count();
    assert!(inside < raw.len(), "the range leaves the last reading out");

    let answers = futures::future::join_all((0..20).map(|_| get(&service, &path, None))).await;
    assert!(answers.iter().all(|(status, body)| *status == 200 && *body == answers[0].1));
    assert_eq!(points(&answers[0].1).len(), inside, "rows read with the whole seconds are dropped");
    let read = counter(&service, "query_influx_shared_reads_total{outcome=\"read\"}").await;
    let shared = counter(&service, "query_influx_shared_reads_total{outcome=\"shared\"}").await;
    assert_eq!(read + shared, 20.0);
    assert!(read <= 2.0, "twenty identical requests cost InfluxDB {read} reads");

    // A reading inside the range, then the same request: the shared answer until it expires,
    // then the new reading.
    influx
        .write(DB, &heart_rate("alice", "edge", start + 10 * SECOND + 500_000_000, 199.0))
        .await
        .expect("write");
    let (_, cached) = get(&service, &path, None).await;
    assert_eq!(cached, answers[0].1, "within the time to live, the shared answer");
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    let (_, fresh) = get(&service, &path, None).await;
    assert_eq!(points(&fresh).len(), inside + 1, "once it expired, the new reading too: {fresh}");
}

#[tokio::test]
async fn bad_parameters_are_refused_with_what_to_fix() {
    let influx = InfluxServer::start().await.expect("influxd");
    influx
        .write(DB, &heart_rate("alice", "edge", velometry_core::time::now_nanos() - HOUR, 100.0))
        .await
        .expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    let cases = [
        ("/v1/riders/carol/series/heart_rate", 404, "no rider \"carol\""),
        ("/v1/riders/alice/series/pulse", 404, "no metric \"pulse\"; the metrics are gps, heart_rate"),
        (
            "/v1/riders/alice/series/heart_rate?field=rpm",
            404,
            "heart_rate has no field \"rpm\"; its fields are bpm",
        ),
        ("/v1/riders/alice/series/heart_rate?from=yesterday", 400, "from=\"yesterday\" is not a time"),
        ("/v1/riders/alice/series/heart_rate?from=2000&to=1000", 400, "must be before to"),
        (
            "/v1/riders/alice/series/heart_rate?max_points=0",
            400,
            "max_points=\"0\" must be a whole number from 10 to 10000",
        ),
        ("/v1/riders/alice/series/heart_rate?max_points=20000", 400, "from 10 to 10000"),
        ("/v1/riders/alice/series/heart_rate?method=avg", 400, "method=\"avg\" is not one of m4, lttb, mean"),
        ("/v1/riders/alice/series/heart_rate?tier=5m", 400, "tier=\"5m\" is not one of"),
        ("/v1/riders/alice/series/heart_rate?tier=1h", 400, "tier 1h cannot answer this request"),
        ("/v1/riders/alice/track?max_points=1", 400, "from 2 to 10000"),
        (
            "/v1/riders/alice/summary?to=2020-02-30T00:00:00Z",
            400,
            "to=\"2020-02-30T00:00:00Z\" is not a time",
        ),
    ];
    for (path, status, message) in cases {
        let (got, body) = get(&service, path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{path}: no error in {body}"));
        assert!(error.contains(message), "{path}: {error:?} does not say {message:?}");
    }
}

#[tokio::test]
async fn past_ranges_are_cacheable_and_a_missing_influxdb_is_a_503() {
    let mut influx = InfluxServer::start().await.expect("influxd");
    influx
        .write(DB, &heart_rate("alice", "edge", velometry_core::time::now_nanos() - DAY, 100.0))
        .await
        .expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    let past = "/v1/riders/alice/series/heart_rate?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let (status, headers, _) = get_raw(&service, past, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let (_, headers, _) = get_raw(&service, "/v1/riders/alice/series/heart_rate", None).await;
    assert_eq!(headers["cache-control"], "no-cache", "a range reaching now changes");

    influx.kill().await;
    // Past the time to live of the answer just read (--read-cache-ttl, a second).
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, headers, body) = get_raw(&service, "/v1/riders/alice/series/heart_rate", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(body.contains("InfluxDB is unavailable"), "{body}");
}
