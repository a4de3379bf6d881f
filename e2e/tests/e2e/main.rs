//! The platform as a whole: Prometheus's configuration and alert rules against promtool and
//! against a real Prometheus scraping the real services.

mod helpers;
mod prometheus;
