//! Integration tests of the collector: the real binary against real InfluxDB, NATS and
//! VictoriaMetrics processes, each test with servers of its own.

mod bad_inputs;
mod chaos;
mod clients;
mod clock;
mod devices;
mod disk;
mod events;
mod helpers;
mod import;
mod limits;
mod line_protocol;
mod live;
mod pollers;
mod protocols;
mod sinks;
mod source_fitbit;
mod source_scraper;
mod source_strava;
mod sources;
