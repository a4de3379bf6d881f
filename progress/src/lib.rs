//! Progress along a course, for every fix of every entrant of an event.
//!
//! The library a progress service runs: per rider, a serialisable [`RiderState`] and a pure
//! step `(state, input) → (state, output)` ([`Engine::step`]) that turns each fix into the
//! distance along the course (where the rider is, and the furthest they have been),
//! whether they are off course, checkpoint arrivals, misses and cut-offs, status (riding,
//! stopped, resting, sleeping, no signal, finished, scratched) and stops, and on request
//! ETAs with a range ([`Engine::eta`]).
//!
//! ```text
//! Fix ─▶ matching ─▶ off course ─▶ status/stops ─▶ checkpoints ─▶ finish ─▶ ETA model
//!        (index: window scan or R*-tree)                          Progress + Events
//! ```
//!
//! A [`Plan`] (a course with its checkpoints, indexed once) is shared by every rider of an
//! event; a [`Config`] holds every threshold. Late data is handled by re-running from a
//! snapshot ([`snapshots`]). docs/progress.md describes the algorithms and the
//! measurements.

pub mod checkpoints;
pub mod engine;
pub mod eta;
pub mod fix;
pub mod index;
pub mod local_time;
pub mod matching;
pub mod off_course;
pub mod service;
pub mod snapshots;
pub mod status;

pub use checkpoints::Checkpoint;
pub use engine::{Config, Engine, Event, Input, Output, Plan, Progress, RiderState};
pub use fix::Fix;
pub use status::Status;
