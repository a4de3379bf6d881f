//! The query service (issue #4), growing: so far the visual downsampling kernels that
//! answer a series request with at most `max_points` points.

pub mod downsample;
