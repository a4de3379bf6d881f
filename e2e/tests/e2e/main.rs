//! The platform as a whole: Prometheus's configuration and alert rules against promtool and
//! against a real Prometheus scraping the real services.

mod deploy;
mod grafana;
mod helpers;
mod images;
mod influxdb;
mod k6;
mod prometheus;
mod roundtrip;
