//! Integration tests of the stream hub: real NATS (JetStream), the real hub binary, and for
//! the end-to-end path the real collector and InfluxDB.

mod browser;
mod follow;
mod frames;
mod helpers;
mod nats;
mod reload;
mod resilience;
