//! Snapshots of a rider's state, for late data and restarts.
//!
//! Fixes can arrive out of order: a device syncs hours of fixes after a valley without
//! signal, a ride file is imported afterwards. The engine never rewrites the past in place;
//! the service re-runs it instead. Keep snapshots as the rider goes (every
//! `every_inputs` inputs or `every_s` seconds of ride time, whichever comes first, the
//! `keep` most recent); when a late input at time `t` comes:
//!
//! 1. take [`Snapshots::before`]`(t)`, the latest snapshot whose last input is before `t`
//!    (or the empty state), and [`Snapshots::forget_from`]`(t)` the ones after it;
//! 2. read the rider's inputs after that snapshot's last time from history (InfluxDB holds
//!    every fix), add the late ones, and [`crate::engine::Engine::replay`];
//! 3. write the outputs: progress readings have the fixes' times, so they overwrite the
//!    stretch; events are identified by kind and checkpoint (or by time), so those that
//!    changed replace the old ones and those that no longer happen are withdrawn.
//!
//! The result is the one the fixes would have given had they arrived in time (the tests
//! check it bit for bit). The same snapshots restart a service: load the latest, re-read
//! the inputs after it; checkpoints already reached are in the state and are not emitted
//! again.

use serde::{Deserialize, Serialize};
use velometry_core::time::Nanos;

use crate::engine::RiderState;

/// A rider's snapshots, newest last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshots {
    every_inputs: u64,
    every_ns: Nanos,
    keep: usize,
    kept: Vec<RiderState>,
}

impl Snapshots {
    /// Snapshots every `every_inputs` inputs or `every_s` seconds, keeping the `keep`
    /// newest (at least one).
    pub fn new(every_inputs: u64, every_s: u32, keep: usize) -> Snapshots {
        Snapshots {
            every_inputs: every_inputs.max(1),
            every_ns: Nanos::from(every_s) * 1_000_000_000,
            keep: keep.max(1),
            kept: Vec::new(),
        }
    }

    /// Offers the state after an input: kept when one is due.
    pub fn offer(&mut self, state: &RiderState) {
        let due = match self.kept.last() {
            None => true,
            Some(last) => {
                state.inputs().saturating_sub(last.inputs()) >= self.every_inputs
                    || matches!((state.last_time(), last.last_time()), (Some(a), Some(b)) if a - b >= self.every_ns)
            }
        };
        if due {
            self.kept.push(state.clone());
            if self.kept.len() > self.keep {
                self.kept.remove(0);
            }
        }
    }

    /// The latest snapshot taken before anything at `time` (the empty state when none is).
    pub fn before(&self, time: Nanos) -> RiderState {
        self.kept.iter().rev().find(|s| s.last_time().is_some_and(|t| t < time)).cloned().unwrap_or_default()
    }

    /// Drops the snapshots that include anything at or after `time`.
    pub fn forget_from(&mut self, time: Nanos) {
        self.kept.retain(|s| s.last_time().is_some_and(|t| t < time));
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&RiderState> {
        self.kept.last()
    }
}
