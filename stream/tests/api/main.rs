//! Integration tests of the stream hub: real NATS (JetStream), the real hub binary, and for
//! the end-to-end path the real collector and InfluxDB.

mod follow;
mod frames;
mod helpers;
mod nats;
mod page;
mod reload;
mod resilience;
