//! Headless Chromium (Debian's `chromium`), driven over the DevTools protocol: pages of the
//! real services opened at a phone's or a desktop's size, scripts run in them, clicks and
//! drags sent as a user's, the requests they make seen, screenshots saved for review.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::PATIENCE;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A phone (360 × 740 CSS pixels, three device pixels each) and a desktop screen.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// 360 × 740 CSS pixels, three device pixels each, touch.
    Phone,
    /// 1440 × 900, one device pixel each.
    Desktop,
    /// A 4K wall screen: 3840 × 2160, one device pixel each.
    Wall,
}

impl Screen {
    fn metrics(self) -> Value {
        match self {
            Screen::Phone => json!({"width": 360, "height": 740, "deviceScaleFactor": 3, "mobile": true}),
            Screen::Desktop => json!({"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
            Screen::Wall => json!({"width": 3840, "height": 2160, "deviceScaleFactor": 1, "mobile": false}),
        }
    }

    /// `phone`, `desktop` or `wall`, for file names.
    pub fn name(self) -> &'static str {
        match self {
            Screen::Phone => "phone",
            Screen::Desktop => "desktop",
            Screen::Wall => "wall",
        }
    }
}

/// One Chromium process, its profile in a folder of its own.
pub struct Browser {
    _child: Child,
    _profile: tempfile::TempDir,
    http: String,
}

impl Browser {
    /// Starts Chromium headless, with a new profile and no background networking.
    ///
    /// # Panics
    /// When Chromium is not installed or does not start: the test cannot run.
    pub async fn start() -> Browser {
        let chromium = ["chromium", "chromium-browser"]
            .into_iter()
            .find(|c| {
                std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success())
            })
            .expect("Chromium is installed (deploy/local/test.sh installs Debian's chromium)");
        let profile = tempfile::tempdir().expect("tempdir");
        // Without the background-networking flags Chromium keeps trying hosts this closed
        // machine cannot reach.
        let mut child = Command::new(chromium)
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
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start Chromium");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let devtools = loop {
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
        let http = devtools.replace("ws://", "http://");
        let http = http[..http.find("/devtools").expect("a DevTools URL")].to_owned();
        Browser { _child: child, _profile: profile, http }
    }

    /// A new tab at `screen`'s size, opened on `url`.
    ///
    /// # Panics
    /// When the tab cannot be opened.
    pub async fn open(&self, url: &str, screen: Screen) -> Page {
        let target: Value = reqwest::Client::new()
            .put(format!("{}/json/new?about:blank", self.http))
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
        let mut page = Page {
            socket,
            next_id: 0,
            requests: Vec::new(),
            errors: Vec::new(),
            pending: HashMap::new(),
            received: HashMap::new(),
            screen,
        };
        page.call("Emulation.setDeviceMetricsOverride", screen.metrics()).await;
        page.call("Network.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page.call("Page.enable", json!({})).await;
        page.call("Performance.enable", json!({})).await;
        page.goto(url).await;
        page
    }
}

/// A tab.
pub struct Page {
    socket: Socket,
    next_id: u64,
    /// Every URL the page requested, in order.
    pub requests: Vec<String>,
    /// Uncaught exceptions and console errors.
    pub errors: Vec<String>,
    /// The host of each request not finished yet, by request id.
    pending: HashMap<String, String>,
    /// Bytes received over the network (compressed, headers included), by host.
    pub received: HashMap<String, u64>,
    screen: Screen,
}

impl Page {
    /// A DevTools method's result, noting the events read meanwhile.
    ///
    /// # Panics
    /// When DevTools does not answer or answers with an error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(&text).expect("JSON");
            match answer["method"].as_str() {
                Some("Network.requestWillBeSent") => {
                    let url = answer["params"]["request"]["url"].as_str().unwrap_or_default().to_owned();
                    let host = url.split('/').nth(2).unwrap_or_default().to_owned();
                    let id = answer["params"]["requestId"].as_str().unwrap_or_default().to_owned();
                    self.pending.insert(id, host);
                    self.requests.push(url);
                }
                Some("Network.loadingFinished") => {
                    let id = answer["params"]["requestId"].as_str().unwrap_or_default();
                    if let Some(host) = self.pending.remove(id) {
                        let bytes = answer["params"]["encodedDataLength"].as_f64().unwrap_or(0.0) as u64;
                        *self.received.entry(host).or_default() += bytes;
                    }
                }
                Some("Runtime.exceptionThrown") => {
                    self.errors.push(answer["params"]["exceptionDetails"].to_string())
                }
                Some("Runtime.consoleAPICalled") if answer["params"]["type"] == "error" => {
                    self.errors.push(answer["params"]["args"].to_string());
                }
                _ => {}
            }
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Navigates to `url`, forgetting the requests and bytes seen so far.
    pub async fn goto(&mut self, url: &str) {
        self.requests.clear();
        self.received.clear();
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// The value of a script (awaited when it is a promise).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy and returns it; panics saying `what` after [`PATIENCE`].
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let value = self.eval(expression).await;
            if !matches!(&value, Value::Null | Value::Bool(false)) && value != json!(0) && value != json!("")
            {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited {} s for {what}: {expression} gives {value}; errors on the page: {:?}",
                PATIENCE.as_secs(),
                self.errors
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Chromium's own counters of the page (`Performance.getMetrics`): `TaskDuration` (s of
    /// main-thread work), `ScriptDuration`, `JSHeapUsedSize` (bytes), …
    pub async fn metrics(&mut self) -> HashMap<String, f64> {
        let answer = self.call("Performance.getMetrics", json!({})).await;
        answer["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["name"].as_str()?.to_owned(), m["value"].as_f64()?)))
            .collect()
    }

    /// The page once it has drawn its view (`body[data-ready]`), failing on an error view.
    pub async fn ready(&mut self) {
        let state = self.wait_for("the view to be drawn", "document.body.dataset.ready ?? null").await;
        if state == json!("error") {
            let text = self.eval("document.getElementById('view').textContent").await;
            panic!("the page shows an error: {text}");
        }
    }

    /// A left-button drag from `(x1, y)` to `(x2, y)`, CSS pixels of the viewport.
    pub async fn drag(&mut self, x1: f64, x2: f64, y: f64) {
        let event = |kind: &str, x: f64, buttons: u32| json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1});
        self.call("Input.dispatchMouseEvent", event("mouseMoved", x1, 0)).await;
        self.call("Input.dispatchMouseEvent", event("mousePressed", x1, 1)).await;
        for step in 1..=8 {
            let x = x1 + (x2 - x1) * f64::from(step) / 8.0;
            self.call("Input.dispatchMouseEvent", event("mouseMoved", x, 1)).await;
        }
        self.call("Input.dispatchMouseEvent", event("mouseReleased", x2, 0)).await;
    }

    /// Saves a screenshot of the whole page as `<dir>/<name>-<screen>.png`.
    pub async fn screenshot(&mut self, dir: &Path, name: &str) -> PathBuf {
        self.eval("window.scrollTo(0, 0)").await;
        let size = self.call("Page.getLayoutMetrics", json!({})).await["cssContentSize"].clone();
        let clip = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("base64");
        std::fs::create_dir_all(dir).expect("screenshot folder");
        let path = dir.join(format!("{name}-{}.png", self.screen.name()));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }
}
