//! Live fixes from NATS: the collector publishes every durable `gps` reading on
//! `velometry.live.<rider>` (docs/schema.md, "Live messages"). The subscription is core NATS,
//! not a JetStream consumer: what it misses while NATS is away, the sync reads from InfluxDB.

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::Deserialize;
use velometry_core::ids::RiderId;
use velometry_core::time::parse_rfc3339;

use crate::fix::Fix;

/// The subjects of live readings.
pub const SUBJECTS: &str = "velometry.live.*";

#[derive(Deserialize)]
struct Message {
    rider: String,
    metric: String,
    time: String,
    lat: Option<f64>,
    lon: Option<f64>,
    speed: Option<f64>,
    heading: Option<f64>,
}

/// The rider and fix of a live message, if it is a position.
pub fn parse(payload: &[u8]) -> Option<(RiderId, Fix)> {
    let m: Message = serde_json::from_slice(payload).ok()?;
    if m.metric != "gps" {
        return None;
    }
    let rider = RiderId::parse(&m.rider).ok()?;
    let time = parse_rfc3339(&m.time).ok()?;
    Some((rider, Fix::new(time, m.lat?, m.lon?, m.speed, m.heading).ok()?))
}

/// Connects to NATS, retrying until it answers.
///
/// # Errors
/// When the URL cannot be used.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .name("velometry-progress")
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await?)
}

/// Follows live fixes.
///
/// # Errors
/// When the subscription cannot be made.
pub async fn follow(client: &async_nats::Client) -> anyhow::Result<impl Stream<Item = (RiderId, Fix)>> {
    let subscription = client.subscribe(SUBJECTS).await?;
    Ok(subscription.filter_map(|m| async move { parse(&m.payload) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_gps_message_is_a_fix_and_heart_rate_is_not() {
        let gps = br#"{"rider":"alice","device":"edge","metric":"gps","time":"2026-11-27T10:00:00.000Z","accepted_at_ms":1,"lat":45.1,"lon":7.6,"speed":8.3}"#;
        let (rider, fix) = parse(gps).expect("a fix");
        assert_eq!((rider.as_str(), fix.lat, fix.speed, fix.heading), ("alice", 45.1, Some(8.3), None));
        let hr = br#"{"rider":"alice","device":"edge","metric":"heart_rate","time":"2026-11-27T10:00:00.000Z","accepted_at_ms":1,"bpm":120}"#;
        assert!(parse(hr).is_none());
    }
}
