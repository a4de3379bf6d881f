//! The stream hub: pushes live GPS and heart rate to browsers over WebSocket, and the
//! progress of every entrant along their event's course to the event's followers.
//!
//! ```text
//! NATS JetStream ──▶ feed/ (replay the trail, then live) ──▶ hub/ (latest + trail per rider,
//!   velometry.live.*                                          fan-out to subscribers)
//!                                                              │ bounded queue per connection,
//!                                                              ▼ newest wins when full
//!                                        browsers ◀── ws/ (GET /v1/live) · page/ (GET /)
//! ```
//!
//! Every replica consumes every reading, so replicas scale out behind a plain load
//! balancer; the latest reading of each rider and metric is also kept in a JetStream
//! key-value bucket, so a new or restarted replica knows it at once.

pub mod app;
pub mod cli;
pub mod feed;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod page;
pub mod protocol;
pub mod queue;
pub mod state;
pub mod ws;
