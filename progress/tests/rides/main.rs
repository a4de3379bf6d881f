//! The progress engine against the simulator's ground truth: test courses made by code,
//! each ridden for real-looking days (noise, stops, nights, dropouts, a shortcut, a wrong
//! turn), and the shared Garmin rides against courses made from themselves.

mod finish;
mod garmin;
mod helpers;
mod late;
mod truth;
