//! The query service: history at any zoom. Series are answered from rollup tiers or raw data
//! and downsampled to a point budget; tracks are simplified to a vertex budget; summaries
//! and full-resolution exports stream out of InfluxDB, read over InfluxQL.
//!
//! Pure computations ([`downsample`], [`track`], [`summary`], [`export`]) are separate from
//! the service around them ([`api`], [`rollup`], [`influx`]).

pub mod api;
pub mod app;
pub mod cli;
pub mod downsample;
pub mod error;
pub mod export;
pub mod influx;
pub mod metrics;
pub mod race;
pub mod rollup;
pub mod summary;
pub mod track;
