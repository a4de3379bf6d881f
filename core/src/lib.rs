//! The domain model and the plumbing that every velometry service shares.
//!
//! A reading is parsed and validated once, at the ingest edge, into a [`reading::Reading`];
//! past the edge nothing re-checks it. Identities (riders, devices, viewers, organisers) and
//! events ([`event`], on a [`course`]) come from one riders file, read by
//! [`riders::Registry`] and reloaded when it changes ([`riders::reload`]). The rest is start-up plumbing: telemetry,
//! the shutdown signal and time parsing, plus (behind the `testkit` feature) a harness that
//! starts real InfluxDB and NATS processes for integration tests.

pub mod cli;
pub mod course;
pub mod event;
pub mod files;
pub mod geo;
pub mod ids;
pub mod influx;
pub mod lineproto;
pub mod reading;
pub mod riders;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod time;

#[cfg(feature = "testkit")]
pub mod testkit;
