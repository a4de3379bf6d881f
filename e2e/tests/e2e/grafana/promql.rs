//! Every PromQL target against a real Prometheus scraping the real services.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// Metrics that only appear after events this test does not cause: connection limits
/// reached, NATS failing, scheduled pollers (the stack runs none), slow WebSocket clients,
/// and closed WebSocket connections (the test's follower stays connected), derived readings
/// refused or retried (the collector takes them all), progress recomputed and derived points
/// withdrawn (nothing is late).
const EVENT_ONLY: [&str; 12] = [
    "collector_http_connections_refused_total",
    "query_connections_refused_total",
    "stream_connections_refused_total",
    "collector_live_publish_failures_total",
    "collector_source_",
    "stream_readings_coalesced_total",
    "stream_readings_dropped_total",
    "stream_closes_total",
    "progress_readings_refused_total",
    "progress_write_retries_total",
    "progress_recomputes_total",
    "progress_withdrawn_total",
];

/// Opens a WebSocket to the hub and follows `rider`: the RFC 6455 handshake and one masked
/// text frame, enough to make the hub deliver without a WebSocket crate in this package.
async fn follow(hub: &str, rider: &str) -> TcpStream {
    let host = hub.trim_start_matches("http://").trim_end_matches('/');
    let mut socket = TcpStream::connect(host).await.expect("the hub accepts");
    let handshake = format!(
        "GET /v1/live HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.expect("handshake");
    assert!(read_until(&mut socket, "\r\n\r\n").await.starts_with("HTTP/1.1 101"), "no upgrade");
    send_text(&mut socket, format!(r#"{{"op":"subscribe","riders":["{rider}"]}}"#).as_bytes()).await;
    read_until(&mut socket, "\"subscribed\"").await;
    socket
}

/// A text frame from a client (masked, as clients must), shorter than 126 bytes.
async fn send_text(socket: &mut TcpStream, payload: &[u8]) {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | u8::try_from(payload.len()).expect("short payload")];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).await.expect("frame");
}

/// Reads until `needle` has arrived; returns what was read.
async fn read_until(socket: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let mut buf = [0u8; 4096];
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => panic!(
                "waited {} s for {needle:?}; got {:?}",
                PATIENCE.as_secs(),
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Traffic that makes every metric the stack can have appear: readings live and late,
/// refusals, a field type conflict (a dead letter), device fixes dead-lettered and retimed,
/// a follower, series.
async fn traffic(stack: &Stack) {
    let http = reqwest::Client::new();
    let post = |body: Value, token: &str| {
        http.post(format!("{}/v1/readings", stack.collector.url))
            .header("Authorization", format!("Token {token}"))
            .json(&body)
            .send()
    };
    let mut follower = follow(&stack.stream.url, "alice").await;

    let now = velometry_core::time::now_nanos() / MS;
    // The first fix is at the start of Alice's event's course: progress the service derives.
    let live = json!([{"metric": "gps", "time": now - 1_000, "lat": 45.0, "lon": 7.0, "speed": 8.3},
                      {"metric": "gps", "time": now, "lat": 45.1, "lon": 7.6, "speed": 8.3},
                      {"metric": "heart_rate", "time": now, "bpm": 142},
                      {"metric": "heart_rate", "time": now - HOUR_MS, "bpm": 120}]);
    assert_eq!(post(live, ALICE_PHONE).await.expect("collector").status(), 200);
    read_until(&mut follower, "\"type\":\"reading\"").await;
    assert_eq!(
        post(json!([{"metric": "heart_rate", "bpm": 142}]), "velo_nobody").await.expect("collector").status(),
        401
    );
    assert_eq!(
        post(json!([{"metric": "heart_rate", "bpm": 999}]), ALICE_PHONE).await.expect("collector").status(),
        400
    );
    // A dead letter: what only the database changing behind the collector's back makes now.
    // Once the collector knows the types InfluxDB holds, a field is written to InfluxDB
    // directly as a string; the collector, which has not asked again, takes an integer for it
    // (204), and InfluxDB refuses that.
    velometry_core::testkit::wait_until(
        "the collector to learn the field types",
        Duration::from_millis(200),
        || async {
            let text = stack.collector.metrics().await?;
            match velometry_core::testkit::metric(&text, "collector_field_type_refreshes_total") {
                n if n >= 1.0 => Ok(()),
                n => Err(format!("{n} refreshes")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    stack.influx.write("velometry", "grafana_probe,host=a value=\"text\"").await.expect("a direct write");
    let status = http
        .post(format!("{}/write", stack.collector.url))
        .header("Authorization", format!("Token {ALICE_PHONE}"))
        .body("grafana_probe,host=a value=1i")
        .send()
        .await
        .expect("collector")
        .status();
    assert_eq!(status, 204, "the collector has not seen the string");
    // OsmAnd fixes a phone would send forever if refused: one stamped in 1970 (dead-lettered)
    // and one ten minutes ahead (kept at the collector's time); both are answered 200.
    for timestamp in [0, now / 1000 + 600] {
        let status = http
            .get(format!(
                "{}/v1/osmand?id={ALICE_PHONE}&lat=45.1&lon=7.6&timestamp={timestamp}",
                stack.collector.url
            ))
            .send()
            .await
            .expect("collector")
            .status();
        assert_eq!(status, 200, "OsmAnd fix at {timestamp}");
    }
    for (path, status) in
        [("/v1/riders/alice/series/heart_rate", 200), ("/v1/riders/carol/series/heart_rate", 404)]
    {
        assert_eq!(
            http.get(format!("{}{path}", stack.query.url)).send().await.expect("query").status(),
            status,
            "{path}"
        );
    }
    // Held open, so that the connection gauges read 1 while Prometheus scrapes.
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while matches!(follower.read(&mut buf).await, Ok(n) if n > 0) {}
    });
}

#[tokio::test]
async fn every_promql_target_answers_from_prometheus_scraping_the_services() {
    let stack = Stack::start().await;
    // As in prometheus.rs: the shipped configuration, pointed at the services, scraping fast.
    let mut config =
        std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml")).expect("config");
    for ((_, target), default) in stack.metrics_targets().iter().zip([
        "127.0.0.1:9180",
        "127.0.0.1:9170",
        "127.0.0.1:9190",
        "127.0.0.1:9160",
    ]) {
        config = config.replace(default, target);
    }
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s");
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules/velometry.yml")).expect("rules");
    let prometheus =
        PrometheusServer::start(&config, &[("rules/velometry.yml", &rules)]).await.expect("prometheus");
    let up = || async { prometheus.query("up == 1").await.unwrap_or_default().len() == 4 };
    assert!(poll(up).await, "{}", prometheus.log());

    traffic(&stack).await;

    // Grafana's expansion for the last hour, with the provisioned scrape interval (15 s: so
    // $__rate_interval is 1m, which the 1 s scrapes here fill at once).
    let scrape_ms = duration_ms(&provisioned(PROMETHEUS_UID, "timeInterval"));
    let vars = prometheus_vars(HOUR_MS, grafana_interval_ms(0, HOUR_MS, 1_000, scrape_ms), scrape_ms);
    let ops = dashboard("ops");
    let mut targets = Vec::new();
    for panel in panels(&ops) {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("PromQL");
            let expanded = expand(expr, &vars);
            assert!(!expanded.contains('$'), "{}: unexpanded variable in {expanded}", title(panel));
            let may_be_empty = EVENT_ONLY.iter().any(|m| expr.contains(m));
            targets.push((title(panel), target["refId"].as_str().expect("refId"), expanded, may_be_empty));
        }
    }
    let mut missing = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        missing.clear();
        for (panel, ref_id, expr, may_be_empty) in &targets {
            let result = prometheus.query(expr).await.unwrap_or_else(|e| panic!("{panel} {ref_id}: {e}"));
            if result.is_empty() && !may_be_empty {
                missing.push(format!("{panel} {ref_id}: {expr}"));
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        missing.is_empty(),
        "waited {} s for series of every target; none for:\n{}\ncollector: {}\nprogress: {}",
        PATIENCE.as_secs(),
        missing.join("\n"),
        stack.collector.logs(),
        stack.progress.logs()
    );
}
