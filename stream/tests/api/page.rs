//! The spectator page as the hub serves it: `/` never cached and with a content security
//! policy naming only the hub, the query service and the tiles; each asset named by its
//! hash, cached for a year, gzipped for clients that take it. What the page does is tested
//! in a real browser against the whole stack (e2e/tests/e2e/web.rs).

use velometry_core::testkit::NatsServer;

use crate::helpers::{hub, riders_file};

#[tokio::test]
async fn the_page_is_never_cached_and_its_assets_are_cached_by_hash_and_gzipped() {
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let hub = hub(&nats, &riders, &["--query-url=http://query.example:8070/", "--tile-url=none"]).await;
    // Without reqwest's own gunzipping, to see what the hub sends.
    let http = reqwest::Client::builder().no_gzip().build().expect("client");

    let page = http.get(format!("{}/", hub.url)).send().await.expect("the page");
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("connect-src 'self' ws: wss: http://query.example:8070;"), "{policy}");
    assert!(policy.contains("img-src 'self' data: ;"), "no tiles, no tile host: {policy}");
    let html = page.text().await.expect("HTML");
    assert!(html.contains(r#""query_url":"http://query.example:8070""#), "{html}");
    assert!(html.contains(r#""tile_url":null"#), "{html}");
    let script = html.split("src=\"/assets/").nth(1).and_then(|s| s.split('"').next()).expect("a script");

    let gzipped = http
        .get(format!("{}/assets/{script}", hub.url))
        .header("Accept-Encoding", "br, gzip;q=0.9")
        .send()
        .await
        .expect("the script");
    assert_eq!(gzipped.status(), 200);
    assert_eq!(header(&gzipped, "content-encoding"), "gzip");
    assert_eq!(header(&gzipped, "cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(header(&gzipped, "content-type"), "text/javascript; charset=utf-8");
    let compressed = gzipped.bytes().await.expect("body").len();
    let plain = http.get(format!("{}/assets/{script}", hub.url)).send().await.expect("the script");
    assert_eq!(header(&plain, "content-encoding"), "");
    let plain = plain.bytes().await.expect("body").len();
    assert!(compressed * 2 < plain, "gzip at least halves the script: {compressed} of {plain} bytes");

    for missing in ["index.html", "app.js", "..%2Fbuild.rs"] {
        let r = http.get(format!("{}/assets/{missing}", hub.url)).send().await.expect("answer");
        assert_eq!(r.status(), 404, "{missing}");
    }
}
