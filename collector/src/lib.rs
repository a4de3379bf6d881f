//! The collector: accepts readings from every client riders already use, makes them durable
//! in its write-ahead log before it answers, and drains them to InfluxDB.
//!
//! ```text
//! ingest/ (lineproto · json · osmand · owntracks) → auth → Reading → wal/ (fsync) → 2xx
//!         (event_status: organisers)                                   ├─▶ sink/ → InfluxDB
//!                                                                      └─▶ live  → NATS
//! ```
//!
//! The riders file behind `auth` is reloaded when it changes
//! (`velometry_core::riders::reload`), so a device token added mid-race works at once.

pub mod app;
pub mod auth;
pub mod cli;
pub mod dead_letters;
pub mod error;
pub mod event;
pub mod field_types;
pub mod http;
pub mod import;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod replay;
pub mod simulate;
pub mod sink;
pub mod sources;
pub mod state;
pub mod wal;
