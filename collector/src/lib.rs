//! The collector: accepts readings from every client riders already use, makes them durable
//! in its write-ahead log before it answers, and drains them to InfluxDB.
//!
//! ```text
//! ingest/ (lineproto · json · osmand · owntracks) → auth → Reading → wal/ (fsync) → 2xx
//!                                                                      ├─▶ sink/ → InfluxDB
//!                                                                      └─▶ live  → NATS
//! ```

pub mod app;
pub mod auth;
pub mod cli;
pub mod dead_letters;
pub mod error;
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
