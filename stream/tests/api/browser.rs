//! The live page in a real browser: headless Chromium (Debian's `chromium`), driven over
//! the DevTools protocol. Readings posted to the collector must show up on the page.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;
use velometry_core::testkit::{free_port, NatsServer, PATIENCE};

use crate::helpers::{collector, hub, riders_file, Socket, ALICE_PHONE};

/// A DevTools connection to one page.
struct DevTools {
    socket: Socket,
    next_id: u64,
}

impl DevTools {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params});
        self.socket.send(Message::text(request.to_string())).await.expect("send to DevTools");
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("DevTools answers")
                .expect("open")
                .expect("message");
            if let Message::Text(text) = message {
                let answer: Value = serde_json::from_str(&text).expect("JSON");
                if answer["id"] == id {
                    assert!(answer.get("error").is_none(), "{method}: {answer}");
                    return answer["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let result =
            self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        result["result"]["value"].clone()
    }
}

#[tokio::test]
async fn readings_sent_to_the_collector_appear_on_the_live_page() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("Chromium is installed (deploy/local/test.sh installs Debian's chromium)");
    let nats = NatsServer::start().await.expect("nats");
    let riders = riders_file();
    let wal = tempfile::tempdir().expect("tempdir");
    let nowhere = format!("http://127.0.0.1:{}", free_port().expect("port"));
    // The page is about the live path; InfluxDB being away only delays the sink.
    let collector = collector(&nats, &riders, &wal, &nowhere).await;
    let hub = hub(&nats, &riders, &[]).await;

    let profile = tempfile::tempdir().expect("tempdir");
    let mut browser = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--window-size=1200,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start Chromium");
    let mut stderr = BufReader::new(browser.stderr.take().expect("stderr")).lines();
    let devtools_url = loop {
        let line = tokio::time::timeout(PATIENCE, stderr.next_line())
            .await
            .expect("Chromium starts")
            .expect("read")
            .expect("Chromium printed its DevTools address");
        if let Some(url) = line.strip_prefix("DevTools listening on ") {
            break url.to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let http_base = devtools_url.replace("ws://", "http://");
    let http_base = &http_base[..http_base.find("/devtools").expect("a DevTools URL")];
    let page_url = format!("{}/?rider=alice", hub.url);
    let target: Value = reqwest::Client::new()
        .put(format!("{http_base}/json/new?{page_url}"))
        .send()
        .await
        .expect("open a tab")
        .json()
        .await
        .expect("JSON");
    let (socket, _) =
        tokio_tungstenite::connect_async(target["webSocketDebuggerUrl"].as_str().expect("debugger URL"))
            .await
            .expect("DevTools connects");
    let mut page = DevTools { socket, next_id: 0 };

    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    let mut shown = Value::Null;
    let mut i = 0.0;
    while Instant::now() < deadline {
        i += 1.0;
        let bpm = 140.0 + i;
        let body = json!([
            {"metric": "gps", "lat": 46.0 + i * 0.0005, "lon": 7.0 + i * 0.0007, "speed": 8.0},
            {"metric": "heart_rate", "bpm": bpm},
        ]);
        let sent = http
            .post(format!("{}/v1/readings", collector.url))
            .header("Authorization", format!("Token {ALICE_PHONE}"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(sent.status(), 200);
        tokio::time::sleep(Duration::from_millis(700)).await;
        shown = page.eval("document.querySelector('[data-rider=\"alice\"] .hr')?.textContent").await;
        if shown == json!(format!("{bpm}")) && i >= 3.0 {
            break;
        }
    }
    assert!(
        shown.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
        "no heart rate on the page: {shown}\n{}",
        hub.logs()
    );
    assert_eq!(page.eval("document.getElementById('status').textContent").await, json!("live"));
    let points =
        page.eval("document.querySelector('#map polyline')?.getAttribute('points').split(' ').length").await;
    assert!(points.as_u64().is_some_and(|n| n >= 2), "the track is drawn: {points}");
    assert_eq!(
        page.eval("document.querySelector('[data-rider=\"alice\"] h2').textContent").await,
        json!("Alice")
    );

    let shot = page.call("Page.captureScreenshot", json!({"format": "png"})).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("data"))
        .expect("base64");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page.png");
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
}
