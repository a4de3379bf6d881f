//! The figures of a chaos run: printed as tables, written as JSON with `--json`, and judged —
//! a run fails when an acknowledged reading is missing from InfluxDB, or when followers got
//! no new reading after a fault.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::check::Stored;

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub duration_s: f64,
    pub every_s: f64,
    pub riders: usize,
    pub followers: usize,
    pub stream_replicas: usize,
    /// Wall time from the first fault to the end of the last one.
    pub chaos_s: f64,
    pub faults: Vec<FaultReport>,
    /// Faults by kind of service (`collector`, `stream`, `query`, `nats`, `influxdb`).
    pub faults_by_service: BTreeMap<String, u64>,
    pub readings: Readings,
    pub requests: Requests,
    pub live: Live,
    /// How long the collector took, once the riders stopped, to empty its log into InfluxDB.
    pub wal_drain_s: f64,
    /// Lines InfluxDB refused as invalid, which the collector set aside as dead letters.
    pub dead_letters: u64,
    /// Why the query service did not answer at the end (`GET /v1/riders/r0/latest`), if not.
    pub query_at_end: Option<String>,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
    pub passed: bool,
}

/// One fault as it happened.
#[derive(Debug, Serialize)]
pub struct FaultReport {
    /// Seconds from the start of the chaos to the kill.
    pub at_s: f64,
    /// `collector`, `stream-1`, `query`, `nats`, `influxdb`.
    pub victim: String,
    pub kind: String,
    pub down_s: f64,
    /// From the restart to the service being ready (its ready line, or InfluxDB's `/ping`).
    pub restart_s: f64,
    pub acknowledged_so_far: u64,
    pub followers_connected: usize,
    /// Followers whose live readings this fault interrupted: those of the replica for a
    /// stream fault, all of them otherwise.
    pub followers_affected: usize,
    /// How many of those received a new reading after the restart.
    pub followers_recovered: usize,
    /// From the restart to each affected follower's first new reading: the slowest, median.
    pub recovery_max_s: Option<f64>,
    pub recovery_median_s: Option<f64>,
    /// For the query service: from its restart to `GET /v1/riders/r0/latest` answering 200.
    pub query_answered_after_s: Option<f64>,
}

/// Readings: what was acknowledged against what InfluxDB holds, per measurement and summed.
#[derive(Debug, Serialize)]
pub struct Readings {
    pub acknowledged: u64,
    pub found: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Stored although their request failed (sent again, so acknowledged later too, or not).
    pub stored_unacknowledged: u64,
    /// Still unacknowledged when the riders stopped (never checked).
    pub abandoned: u64,
    /// Refused with a 4xx that retrying cannot fix.
    pub refused: u64,
    pub gps: Stored,
    pub heart_rate: Stored,
    /// A few missing readings, to look for in the logs.
    pub missing_examples: Vec<String>,
}

/// Requests the riders sent.
#[derive(Debug, Serialize)]
pub struct Requests {
    pub sent: u64,
    /// Failed and retried, by the service down at the time (`none`: nothing was).
    pub failed: BTreeMap<String, u64>,
}

/// The live path, seen by the followers.
#[derive(Debug, Serialize)]
pub struct Live {
    /// Live readings received by all followers.
    pub delivered: u64,
    /// Connections the followers made, reconnections included.
    pub connections: u64,
    /// Over stream restarts: the slowest recovery and the median of the per-restart medians.
    pub hub_recovery_max_s: Option<f64>,
    pub hub_recovery_median_s: Option<f64>,
}

/// The median and the maximum of some durations.
pub fn median_max(mut values: Vec<Duration>) -> (Option<f64>, Option<f64>) {
    values.sort_unstable();
    let median = values.get(values.len() / 2).map(Duration::as_secs_f64);
    (median, values.last().map(Duration::as_secs_f64))
}

/// Over stream restarts: the median of the per-restart median recoveries, and the slowest.
pub fn hub_recovery(faults: &[FaultReport]) -> (Option<f64>, Option<f64>) {
    let hubs = || faults.iter().filter(|f| f.kind == "stream");
    let medians = hubs().filter_map(|f| f.recovery_median_s).map(Duration::from_secs_f64).collect();
    (median_max(medians).0, hubs().filter_map(|f| f.recovery_max_s).reduce(f64::max))
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"))
}

impl Report {
    /// Fills `failures` and `passed` from the figures: the run fails when an acknowledged
    /// reading is missing or stored twice, a reading was refused, or followers got no new
    /// reading after a fault.
    pub fn judge(&mut self) {
        let mut failures = Vec::new();
        let r = &self.readings;
        if r.missing > 0 {
            failures.push(format!(
                "{} acknowledged readings are not in InfluxDB, e.g. {}",
                r.missing,
                r.missing_examples.join(", ")
            ));
        }
        if r.duplicates > 0 {
            failures.push(format!("{} readings are stored more than once", r.duplicates));
        }
        if r.refused > 0 {
            failures.push(format!("the collector refused {} readings of the riders", r.refused));
        }
        if self.dead_letters > 0 {
            failures.push(format!("InfluxDB refused {} lines as invalid (dead letters)", self.dead_letters));
        }
        for f in &self.faults {
            if f.followers_recovered < f.followers_affected {
                failures.push(format!(
                    "after {} came back at {:.1} s, {} of its {} followers got no new live reading",
                    f.victim,
                    f.at_s + f.down_s,
                    f.followers_affected - f.followers_recovered,
                    f.followers_affected
                ));
            }
        }
        if let Some(e) = &self.query_at_end {
            failures.push(format!("the query service does not answer at the end: {e}"));
        }
        self.passed = failures.is_empty();
        self.failures = failures;
    }

    /// The report as tables for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "\nChaos run: seed {}, {} faults over {:.0} s (one every {:.0} s), {} riders, {} followers on {} stream replicas",
            self.seed,
            self.faults.len(),
            self.chaos_s,
            self.every_s,
            self.riders,
            self.followers,
            self.stream_replicas
        ));
        line(String::new());
        line(format!("{:<10} {:>6} {:>14} {:>18}", "service", "faults", "down (total)", "requests failed"));
        for (kind, n) in &self.faults_by_service {
            // Starting from 0.0: an empty sum of floats is -0.0.
            let down = self.faults.iter().filter(|f| &f.kind == kind).fold(0.0, |sum, f| sum + f.down_s);
            let failed = self.requests.failed.get(kind).copied().unwrap_or(0);
            line(format!("{kind:<10} {n:>6} {:>12.1} s {failed:>18}", down));
        }
        line(format!(
            "{:<10} {:>6} {:>14} {:>18}",
            "(none)",
            "",
            "",
            self.requests.failed.get("none").copied().unwrap_or(0)
        ));
        line(String::new());
        let r = &self.readings;
        line(format!(
            "readings acknowledged   {:>8}   ({} requests sent)",
            r.acknowledged, self.requests.sent
        ));
        line(format!(
            "found in InfluxDB       {:>8}   (gps {}, heart_rate {})",
            r.found, r.gps.found, r.heart_rate.found
        ));
        line(format!("missing                 {:>8}", r.missing));
        line(format!("duplicates              {:>8}", r.duplicates));
        line(format!(
            "stored, not acked       {:>8}   (request failed after the log took it)",
            r.stored_unacknowledged
        ));
        line(format!("abandoned, refused      {:>8}, {}", r.abandoned, r.refused));
        line(format!("dead letters            {:>8}", self.dead_letters));
        line(format!("WAL drained in          {:>8.1} s", self.wal_drain_s));
        line(String::new());
        line(format!(
            "{:>7}  {:<10} {:>7} {:>8} {:>7} {:>10} {:>10} {:>10}",
            "at", "victim", "down", "back in", "acked", "recovered", "max", "median"
        ));
        for f in &self.faults {
            line(format!(
                "{:>6.1}s  {:<10} {:>5.1} s {:>6.2} s {:>7} {:>5}/{:<4} {:>10} {:>10}{}",
                f.at_s,
                f.victim,
                f.down_s,
                f.restart_s,
                f.acknowledged_so_far,
                f.followers_recovered,
                f.followers_affected,
                secs(f.recovery_max_s),
                secs(f.recovery_median_s),
                f.query_answered_after_s
                    .map(|s| format!("  (query answered after {s:.2} s)"))
                    .unwrap_or_default()
            ));
        }
        line(String::new());
        line(format!(
            "live readings delivered {:>8}   ({} connections); after hub restarts followers had readings again within {} (median {})",
            self.live.delivered,
            self.live.connections,
            secs(self.live.hub_recovery_max_s),
            secs(self.live.hub_recovery_median_s)
        ));
        line(String::new());
        if self.passed {
            line("PASSED: every acknowledged reading is in InfluxDB; followers had readings again after every fault.".into());
        } else {
            line(format!("FAILED:\n  - {}", self.failures.join("\n  - ")));
        }
        out
    }
}
