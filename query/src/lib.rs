//! The query service: history at any zoom. Series answered from rollup tiers or raw data and
//! downsampled to a point budget, tracks simplified to a vertex budget, ride summaries and
//! full-resolution exports, all read from InfluxDB over InfluxQL.

pub mod downsample;
pub mod export;
pub mod summary;
pub mod track;
