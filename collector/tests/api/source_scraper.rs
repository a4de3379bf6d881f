//! The tracking-page scraper against a local page: an unchanged page writes nothing, a new
//! fix writes one reading, a changed layout is a failure and writes no zeros.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::helpers::*;

fn page(time: &str, lat: f64, lon: f64, kmh: f64, bpm: u32) -> String {
    format!(
        "<html><body><h1>Rider 42</h1><table>\
         <tr><td>Position</td><td id=\"pos\">{lat}, {lon}</td></tr>\
         <tr><td>Updated</td><td id=\"at\">{time}</td></tr>\
         <tr><td>Speed</td><td class=\"speed\">{kmh} km/h</td></tr>\
         <tr><td>Heart rate</td><td class=\"hr\">{bpm} bpm</td></tr></table></body></html>"
    )
}

#[tokio::test]
async fn a_tracking_page_is_scraped_once_per_fix_and_a_new_layout_is_a_failure() {
    let now = velometry_core::time::now_nanos();
    let when = |minutes_ago: i64| {
        chrono::DateTime::from_timestamp_nanos(now - minutes_ago * 60_000_000_000)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string()
    };
    let current = Arc::new(Mutex::new(page(&when(3), 45.0703, 7.6869, 27.0, 141)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/riders/42", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route(
            "/riders/42",
            get(|State(p): State<Arc<Mutex<String>>>| async move { Html(p.lock().expect("lock").clone()) }),
        )
        .with_state(current.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sources = format!(
            "[[source]]\nname = \"tracker\"\nkind = \"scraper\"\nrider = \"alice\"\nevery = \"1s\"\nurl = \"{url}\"\n\
             position = \"#pos\"\ntime = \"#at\"\ntime_format = \"%d/%m/%Y %H:%M:%S\"\nspeed = \".speed\"\nheart_rate = \".hr\"\n"
        );
    let env = Env::with_sources(&sources).await;
    let q = "SELECT \"lat\", \"lon\", \"speed\" FROM \"gps\" WHERE \"device\" = 'tracker' AND \"source\" = 'scraper'";
    let rows = env.wait_rows(q, 1).await;
    assert_eq!((rows[0]["lat"].as_f64(), rows[0]["lon"].as_f64()), (Some(45.0703), Some(7.6869)));
    assert_eq!(rows[0]["speed"].as_f64(), Some(7.5), "27 km/h in m/s");

    // Several runs over the same page: still one fix.
    let runs = |text: &str| metric(text, "collector_source_runs_total{source=\"tracker\"}");
    let before = runs(&env.collector.metrics().await);
    assert!(eventually(|| async { runs(&env.collector.metrics().await) >= before + 2.0 }).await);
    assert_eq!(
        env.influx.count(DB, "gps", "lat").await.expect("count"),
        1,
        "an unchanged page writes nothing"
    );

    *current.lock().expect("lock") = page(&when(1), 45.0711, 7.6880, 30.6, 150);
    let rows = env.wait_rows(q, 2).await;
    assert_eq!(rows[1]["lat"].as_f64(), Some(45.0711));
    let hr = env.wait_rows("SELECT \"bpm\" FROM \"heart_rate\" WHERE \"device\" = 'tracker'", 2).await;
    assert_eq!(hr[1]["bpm"].as_f64(), Some(150.0));

    // The site is redesigned: the selectors match nothing.
    *current.lock().expect("lock") =
        "<html><body><div class=\"map\" data-lat=\"45.2\"></div></body></html>".into();
    let layout = |text: &str| {
        metric(text, "collector_source_failures_total{source=\"tracker\",reason=\"bad_response\"}")
    };
    assert!(eventually(|| async { layout(&env.collector.metrics().await) >= 1.0 }).await);
    assert_eq!(env.influx.count(DB, "gps", "lat").await.expect("count"), 2, "no zeros written");
    assert!(env.collector.logs().contains("matches nothing"), "the log names the selector");
}
