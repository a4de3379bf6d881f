//! Which service a chaos run kills when, and for how long: a plan drawn from the seed before
//! the run starts, so that the same seed repeats the same run. Every kind of service is hit
//! once, in a shuffled order, before any is hit again: even a short run covers them all.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A kind of service that can be killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Collector,
    Stream,
    Query,
    Nats,
    Influxdb,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Kind; 5] = [Kind::Collector, Kind::Stream, Kind::Query, Kind::Nats, Kind::Influxdb];

    /// Its name in reports and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Collector => "collector",
            Kind::Stream => "stream",
            Kind::Query => "query",
            Kind::Nats => "nats",
            Kind::Influxdb => "influxdb",
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it starts, from the start of the chaos.
    pub at: Duration,
    /// What is killed.
    pub kind: Kind,
    /// Which stream replica, when `kind` is `Stream` (0 otherwise).
    pub replica: usize,
    /// How long it stays down before it is started again.
    pub down: Duration,
}

impl Fault {
    /// The victim's name: `stream-1` for a replica, the kind's name otherwise.
    pub fn victim(&self) -> String {
        match self.kind {
            Kind::Stream => format!("stream-{}", self.replica),
            kind => kind.name().to_owned(),
        }
    }
}

/// The faults of a run of `duration`, one every `every` (the first at once), among the
/// `victims` kinds (all when empty), for a stack of `replicas` stream hubs.
pub fn plan(seed: u64, duration: Duration, every: Duration, replicas: usize, victims: &[Kind]) -> Vec<Fault> {
    let mut kinds: Vec<Kind> = if victims.is_empty() { Kind::ALL.to_vec() } else { victims.to_vec() };
    kinds.sort();
    kinds.dedup();
    let mut rng = StdRng::seed_from_u64(seed);
    let count = (duration.as_secs_f64() / every.as_secs_f64()).ceil().max(1.0) as u32;
    let mut turn: Vec<Kind> = Vec::new();
    (0..count)
        .map(|i| {
            if turn.is_empty() {
                turn = kinds.clone();
                turn.shuffle(&mut rng);
            }
            // `turn` was refilled just above when it was empty.
            let kind = turn.pop().unwrap_or(Kind::Collector);
            let replica = if kind == Kind::Stream { rng.random_range(0..replicas.max(1)) } else { 0 };
            // InfluxDB is sometimes down for longer, so that the collector's log fills and
            // drains while readings keep coming.
            let seconds = if kind == Kind::Influxdb && rng.random_bool(0.5) {
                rng.random_range(3.0..10.0)
            } else {
                rng.random_range(0.5..3.0)
            };
            Fault { at: every * i, kind, replica, down: Duration::from_millis((seconds * 1000.0) as u64) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_hit_once_before_any_is_hit_again() {
        let faults = plan(7, Duration::from_secs(600), Duration::from_secs(10), 3, &Kind::ALL);
        assert_eq!(faults.len(), 60);
        for round in faults.chunks(Kind::ALL.len()) {
            let mut kinds: Vec<Kind> = round.iter().map(|f| f.kind).collect();
            kinds.sort();
            assert_eq!(kinds, Kind::ALL);
        }
        assert!(faults.iter().all(|f| f.replica < 3));
        assert!(faults
            .iter()
            .all(|f| f.down >= Duration::from_millis(500) && f.down < Duration::from_secs(10)));
        assert_eq!(faults[3].at, Duration::from_secs(30));
    }

    #[test]
    fn the_seed_decides_the_plan() {
        let a = plan(1, Duration::from_secs(30), Duration::from_secs(5), 2, &[]);
        assert_eq!(a.len(), 6);
        assert_eq!(a, plan(1, Duration::from_secs(30), Duration::from_secs(5), 2, &[]));
        let others: Vec<_> =
            (2..10).map(|s| plan(s, Duration::from_secs(30), Duration::from_secs(5), 2, &[])).collect();
        assert!(others.iter().any(|b| *b != a));
    }

    #[test]
    fn victims_can_be_chosen() {
        let faults = plan(
            3,
            Duration::from_secs(60),
            Duration::from_secs(10),
            2,
            &[Kind::Nats, Kind::Stream, Kind::Nats],
        );
        assert_eq!(faults.len(), 6);
        assert!(faults.iter().all(|f| matches!(f.kind, Kind::Nats | Kind::Stream)));
        assert_eq!(faults.iter().filter(|f| f.kind == Kind::Nats).count(), 3);
    }
}
