//! The riders of a chaos run: one simulated device each, sending a gps fix and a heart rate
//! every second to `POST /v1/readings`, as a phone app does. A reading counts as
//! acknowledged only when its request was answered 200; a request that fails (the collector
//! down, a 5xx, a 503 with a full log) is sent again a second later together with the new
//! readings, so that nothing a rider recorded is given up while the run lasts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use velometry_collector::simulate::Rider;
use velometry_core::reading::Metric;

use super::schedule::Kind;

/// The service being killed right now, if any: request failures are counted against it.
pub type Outage = Arc<Mutex<Option<Kind>>>;

/// What the riders sent and what was acknowledged, shared by their tasks.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Per rider, the times (epoch ms) of acknowledged requests; each carries one gps and one
    /// heart_rate reading.
    acked: Mutex<BTreeMap<String, BTreeSet<i64>>>,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests that failed and were retried, by the service down at the time (`none`).
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Readings refused with a 4xx that retrying cannot fix: a fault of the harness.
    pub refused: AtomicU64,
    /// Readings never acknowledged: still pending when the riders stopped.
    pub abandoned: AtomicU64,
}

impl Ledger {
    /// Readings acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        2 * self.acked.lock().map(|a| a.values().map(|t| t.len() as u64).sum()).unwrap_or(0)
    }

    /// The acknowledged times of every rider.
    pub fn acked(&self) -> BTreeMap<String, BTreeSet<i64>> {
        self.acked.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Failed requests by the service that was down (`none` when nothing was).
    pub fn failures(&self) -> BTreeMap<&'static str, u64> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn ack(&self, rider: &str, times: impl IntoIterator<Item = i64>) {
        if let Ok(mut acked) = self.acked.lock() {
            acked.entry(rider.to_owned()).or_default().extend(times);
        }
    }

    fn fail(&self, outage: &Outage) {
        let down = outage.lock().ok().and_then(|o| *o).map_or("none", Kind::name);
        if let Ok(mut failures) = self.failures.lock() {
            *failures.entry(down).or_default() += 1;
        }
    }
}

/// Where a rider sends, and what it shares with the run.
#[derive(Clone)]
pub struct Road {
    pub http: reqwest::Client,
    /// The collector's current base URL (it moves when the collector restarts).
    pub collector: watch::Receiver<String>,
    pub ledger: Arc<Ledger>,
    pub outage: Outage,
}

/// How long a rider keeps trying to deliver what it holds once told to stop.
const LAST_TRY: Duration = Duration::from_secs(30);
/// At most this many seconds of readings go in one request, oldest first.
const MAX_SECONDS_PER_REQUEST: usize = 300;

/// Rides rider `index` (id `rider`, device token `token`) until `stop` turns true, then tries
/// for a while to deliver what is still unacknowledged.
pub async fn ride(
    index: usize,
    rider: String,
    token: String,
    seed: u64,
    road: Road,
    mut stop: watch::Receiver<bool>,
) {
    let mut simulated = Rider::new(seed, index as u64);
    // Seconds of riding not yet acknowledged: (time ms, readings).
    let mut pending: Vec<(i64, [Value; 2])> = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = 0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = super::followers::stopped(&mut stop) => break,
        }
        // One request a second makes times unique; a late tick must not repeat one.
        let time = (velometry_core::time::now_nanos() / 1_000_000).max(last + 1);
        last = time;
        pending.push((time, readings(&mut simulated, time)));
        send(&rider, &token, &road, &mut pending).await;
    }
    let deadline = tokio::time::Instant::now() + LAST_TRY;
    while !pending.is_empty() && tokio::time::Instant::now() < deadline {
        send(&rider, &token, &road, &mut pending).await;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    road.ledger.abandoned.fetch_add(2 * pending.len() as u64, Ordering::Relaxed);
}

/// One second of riding: the gps fix and the heart rate of the simulated rider.
fn readings(rider: &mut Rider, time: i64) -> [Value; 2] {
    let tick = rider.tick();
    let field = |metric: Metric, name: &str| {
        tick.iter()
            .filter(|(m, _)| *m == metric)
            .flat_map(|(_, fields)| fields.iter())
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, v)| *v)
    };
    [
        json!({"metric": "gps", "time": time, "lat": field(Metric::Gps, "lat"), "lon": field(Metric::Gps, "lon"),
               "speed": field(Metric::Gps, "speed")}),
        json!({"metric": "heart_rate", "time": time, "bpm": field(Metric::HeartRate, "bpm")}),
    ]
}

/// Sends the oldest pending seconds in one request; removes them when acknowledged.
async fn send(rider: &str, token: &str, road: &Road, pending: &mut Vec<(i64, [Value; 2])>) {
    let n = pending.len().min(MAX_SECONDS_PER_REQUEST);
    if n == 0 {
        return;
    }
    let body: Vec<&Value> = pending[..n].iter().flat_map(|(_, r)| r.iter()).collect();
    let url = format!("{}/v1/readings", road.collector.borrow().trim_end_matches('/'));
    road.ledger.requests.fetch_add(1, Ordering::Relaxed);
    let answer = road
        .http
        .post(url)
        .header(reqwest::header::AUTHORIZATION, format!("Token {token}"))
        .json(&body)
        .send()
        .await;
    match answer.map(|a| a.status()) {
        Ok(status) if status == reqwest::StatusCode::OK => {
            road.ledger.ack(rider, pending.drain(..n).map(|(t, _)| t));
        }
        // Worth retrying: the collector is busy, full, restarting, or timed out reading.
        Ok(status) if status.is_server_error() || matches!(status.as_u16(), 408 | 429) => {
            road.ledger.fail(&road.outage)
        }
        Ok(status) => {
            eprintln!(
                "rider {rider}: the collector refused {n} second(s) of readings with {status}; dropped"
            );
            road.ledger.refused.fetch_add(2 * n as u64, Ordering::Relaxed);
            pending.drain(..n);
        }
        Err(_) => road.ledger.fail(&road.outage),
    }
}
