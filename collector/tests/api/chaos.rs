//! Chaos: InfluxDB killed mid-ingest, and the collector SIGKILLed mid-ingest. In both, every
//! acknowledged reading ends up in InfluxDB exactly once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use velometry_core::testkit::PATIENCE;

use crate::helpers::{ms_ago, Env, ALICE_EDGE, DB};

const PER_REQUEST: i64 = 20;

/// Sends batches of heart rates with unique timestamps from `writers` tasks until `stop`
/// turns true. Returns the sequence numbers sent and those acknowledged.
struct Load {
    sent: Arc<Mutex<BTreeSet<i64>>>,
    acked: Arc<Mutex<BTreeSet<i64>>>,
    refused: Arc<Mutex<Vec<u16>>>,
    base_ms: i64,
}

impl Load {
    fn new() -> Load {
        Load { sent: Arc::default(), acked: Arc::default(), refused: Arc::default(), base_ms: ms_ago(3600) }
    }

    fn spawn(
        &self,
        writers: i64,
        url: watch::Receiver<String>,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..writers)
            .map(|w| {
                let (sent, acked, refused, base, url, stop) = (
                    self.sent.clone(),
                    self.acked.clone(),
                    self.refused.clone(),
                    self.base_ms,
                    url.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let http =
                        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
                    let mut round = 0;
                    while !*stop.borrow() {
                        let first = (round * writers + w) * PER_REQUEST;
                        round += 1;
                        let seqs: Vec<i64> = (first..first + PER_REQUEST).collect();
                        let body: Vec<_> = seqs
                            .iter()
                            .map(|s| json!({"metric": "heart_rate", "time": base + s, "bpm": 60 + s % 120}))
                            .collect();
                        sent.lock().expect("lock").extend(&seqs);
                        // Like a real client: a batch that got no answer (the collector was
                        // killed), a 429 or a 503 is sent again; any other refusal is recorded.
                        for _attempt in 0..50 {
                            let target = format!("{}/v1/readings", url.borrow().clone());
                            let resp = http
                                .post(target)
                                .header("Authorization", format!("Token {ALICE_EDGE}"))
                                .json(&body)
                                .send()
                                .await;
                            match resp.map(|r| r.status().as_u16()) {
                                Ok(200) => {
                                    acked.lock().expect("lock").extend(&seqs);
                                    break;
                                }
                                Ok(429 | 503) | Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                                Ok(status) => {
                                    refused.lock().expect("lock").push(status);
                                    break;
                                }
                            }
                            if *stop.borrow() {
                                break;
                            }
                        }
                    }
                })
            })
            .collect()
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    /// Waits until at least `count` readings have been acknowledged.
    async fn acked_at_least(&self, count: usize) {
        let reached = crate::helpers::eventually(|| async { self.acked_count() >= count }).await;
        assert!(
            reached,
            "waited {} s for {count} acknowledged readings; have {} (refused: {:?})",
            PATIENCE.as_secs(),
            self.acked_count(),
            self.refused.lock().expect("lock")
        );
    }

    async fn stored(&self, env: &Env) -> Vec<i64> {
        let rows = env.influx.rows(DB, "SELECT bpm FROM heart_rate").await.expect("query");
        rows.iter().map(|r| r["time"].as_i64().expect("time") / 1_000_000 - self.base_ms).collect()
    }

    /// Waits until every acknowledged reading is stored, then checks exactly-once.
    async fn assert_every_ack_stored_once(&self, env: &Env) {
        let acked = self.acked.lock().expect("lock").clone();
        let sent = self.sent.lock().expect("lock").clone();
        assert!(acked.len() > 200, "the load barely ran: {} acknowledged", acked.len());
        let (complete, stored) =
            crate::helpers::poll(|| self.stored(env), |stored| acked.iter().all(|a| stored.contains(a)))
                .await;
        let set: BTreeSet<i64> = stored.iter().copied().collect();
        let missing: Vec<i64> = acked.difference(&set).copied().collect();
        let missing = format!("{} (first {:?}, last {:?})", missing.len(), missing.first(), missing.last());
        assert!(
            complete,
            "{missing} of {} acknowledged readings are missing\n{}",
            acked.len(),
            env.collector.logs()
        );
        assert_eq!(set.len(), stored.len(), "a reading was stored twice");
        assert!(set.is_subset(&sent), "a stored reading was never sent");
        println!("acknowledged {}, stored {} (of {} sent)", acked.len(), stored.len(), sent.len());
    }
}

#[tokio::test]
async fn influxdb_killed_and_restarted_mid_ingest_loses_nothing() {
    let mut env = Env::start(&["--rate-limit=1000000", "--rate-burst=1000000"]).await;
    let load = Load::new();
    let (_url_tx, url) = watch::channel(env.collector.url.clone());
    let (stop_tx, stop) = watch::channel(false);
    let writers = load.spawn(4, url, stop);
    load.acked_at_least(100).await;
    env.influx.kill().await;
    // Readings keep being acknowledged while InfluxDB is down.
    load.acked_at_least(load.acked_count() + 200).await;
    env.influx.restart().await.expect("influxd restarts");
    load.acked_at_least(load.acked_count() + 100).await;
    stop_tx.send(true).expect("stop");
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(
        *load.refused.lock().expect("lock"),
        Vec::<u16>::new(),
        "an InfluxDB outage never makes ingest refuse"
    );
    load.assert_every_ack_stored_once(&env).await;
}

#[tokio::test]
async fn collector_sigkilled_mid_ingest_loses_nothing_acknowledged() {
    let mut env = Env::start(&["--rate-limit=1000000", "--rate-burst=1000000"]).await;
    let load = Load::new();
    let (url_tx, url) = watch::channel(env.collector.url.clone());
    let (stop_tx, stop) = watch::channel(false);
    let writers = load.spawn(4, url, stop);
    load.acked_at_least(200).await;
    env.collector.kill().await;
    let acked_before_kill = load.acked_count();
    // Down for a moment, as a crashed process restarted by its supervisor.
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.collector.restart().await;
    url_tx.send(env.collector.url.clone()).expect("new url");
    // Ingest resumes after the restart.
    load.acked_at_least(acked_before_kill + 100).await;
    stop_tx.send(true).expect("stop");
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(*load.refused.lock().expect("lock"), Vec::<u16>::new());
    load.assert_every_ack_stored_once(&env).await;
}
