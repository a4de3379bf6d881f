//! Tests of the platform as a whole live in `tests/`: the Prometheus configuration and rules
//! against promtool and a real Prometheus scraping the real services. This library is empty;
//! the crate exists so that those tests belong to no single service.
