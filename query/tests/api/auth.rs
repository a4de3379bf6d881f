//! Who may read what: public riders by anyone, private riders with a viewer token that lists
//! them; and every documented path answers.

use velometry_core::testkit::InfluxServer;

use crate::helpers::*;

#[tokio::test]
async fn private_riders_need_a_viewer_token_that_lists_them() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let lines =
        heart_rate("alice", "edge", now - HOUR, 100.0) + &heart_rate("bob", "watch", now - 2 * HOUR, 120.0);
    influx.write(DB, &lines).await.expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;

    for path in ["/v1/riders/bob/series/heart_rate", "/v1/riders/bob/latest", "/v1/riders/bob/export.csv"] {
        let (status, body) = get(&service, path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains("private"), "{body}");
        let (status, _) = get(&service, path, Some("velo_wrong")).await;
        assert_eq!(status, 401, "{path}: unknown token");
        let (status, body) = get(&service, path, Some(STRANGER)).await;
        assert_eq!(status, 403, "{path}: a viewer of alice only: {body}");
        let (status, _) = get(&service, path, Some(COACH)).await;
        assert_eq!(status, 200, "{path}: bob's coach");
    }
    let (status, _) = get(&service, "/v1/riders/alice/series/heart_rate", None).await;
    assert_eq!(status, 200, "alice is public");

    let (_, anonymous) = get(&service, "/v1/riders", None).await;
    let ids: Vec<&str> =
        anonymous.as_array().expect("list").iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["alice"]);
    let (_, coach) = get(&service, "/v1/riders", Some(COACH)).await;
    let bob = coach
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["id"] == "bob")
        .expect("the coach sees bob")
        .clone();
    assert_eq!(bob["last"], velometry_core::time::format_rfc3339(now - 2 * HOUR));
    let (_, latest) = get(&service, "/v1/riders/bob/latest", Some(COACH)).await;
    assert_eq!(latest["metrics"]["heart_rate"]["fields"]["bpm"], 120.0);
    assert_eq!(latest["metrics"]["heart_rate"]["device"], "watch");
}

#[tokio::test]
async fn every_documented_path_answers() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let gps = format!("gps,device=edge,rider=alice,source=json lat=46.0,lon=14.5,alt=300 {}\n", now - HOUR);
    influx.write(DB, &(gps + &heart_rate("alice", "edge", now - HOUR, 100.0))).await.expect("write");
    let riders = event_riders_file(now - 2 * HOUR);
    let service = query(&influx, &riders, &[]).await;
    let (status, document) = get(&service, "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 9, "{:?}", paths.keys());
    for path in paths.keys() {
        let concrete =
            path.replace("{rider}", "alice").replace("{metric}", "heart_rate").replace("{event}", "race");
        let (status, _, body) = get_raw(&service, &concrete, None).await;
        assert_eq!(status, 200, "{concrete}: {body}");
    }
}

#[tokio::test]
async fn a_page_of_any_origin_may_read_with_a_viewer_token() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    influx.write(DB, &heart_rate("bob", "watch", now - HOUR, 120.0)).await.expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/riders/bob/latest", service.url);
    let origin = "https://spectators.example.org";

    // What a browser asks before sending a token from another origin.
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .expect("the service answers");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    let value =
        |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    assert_eq!(value("access-control-allow-origin"), "*");
    assert!(value("access-control-allow-headers").contains("authorization"), "{h:?}");
    assert!(value("access-control-allow-methods").contains("get"), "{h:?}");
    assert!(!value("access-control-allow-methods").contains("post"), "reads only: {h:?}");

    let read = http.get(&url).header("Origin", origin).bearer_auth(COACH).send().await.expect("answers");
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["access-control-allow-origin"], "*");
    // A refusal is readable too, so that the page can say what is wrong.
    let refused = http.get(&url).header("Origin", origin).send().await.expect("answers");
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    let exposed =
        refused.headers()["access-control-expose-headers"].to_str().expect("ascii").to_ascii_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[tokio::test]
async fn json_answers_are_gzipped_for_a_caller_that_takes_it_and_exports_stream_as_they_are() {
    let influx = InfluxServer::start().await.expect("influxd");
    let now = velometry_core::time::now_nanos();
    let (lines, _) = heart_rate_walk("alice", now - HOUR, 3_000, 7);
    influx.write(DB, &lines).await.expect("write");
    let riders = riders_file();
    let service = query(&influx, &riders, &[]).await;
    // Without reqwest's own gunzipping, to see what the service sends.
    let http = reqwest::Client::builder().no_gzip().build().expect("client");
    let get = |path: &str, gzip: bool| {
        let mut request = http.get(format!("{}{path}", service.url));
        if gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        request.send()
    };
    let series = "/v1/riders/alice/series/heart_rate?max_points=2000&method=lttb";
    let gzipped = get(series, true).await.expect("answer");
    assert_eq!(gzipped.status(), 200);
    assert_eq!(
        gzipped.headers().get("content-encoding").map(|v| v.to_str().unwrap_or_default()),
        Some("gzip")
    );
    let compressed = gzipped.bytes().await.expect("body").len();
    let plain = get(series, false).await.expect("answer");
    assert!(plain.headers().get("content-encoding").is_none(), "{:?}", plain.headers());
    let plain = plain.bytes().await.expect("body").len();
    assert!(compressed * 2 < plain, "{compressed} gzipped of {plain} bytes");
    let export = get("/v1/riders/alice/export.csv", true).await.expect("answer");
    assert_eq!(export.status(), 200);
    assert!(export.headers().get("content-encoding").is_none(), "an export streams as it is");
}
