//! The query service end to end: the real binary against a real InfluxDB (and, for late
//! readings, the real collector).

mod helpers;

mod auth;
mod events;
mod exports;
mod files;
mod openapi;
mod ranges;
mod reload;
mod rides;
mod rollups;
mod series;
