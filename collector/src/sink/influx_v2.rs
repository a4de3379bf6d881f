//! InfluxDB through its v2 write API (`POST /api/v2/write`, org and bucket, token auth),
//! spoken by the `influxdb2` crate. InfluxDB 1.8+, 2.x and 3.x answer it, and so does
//! VictoriaMetrics, against which it is tested.

use bytes::Bytes;

use velometry_core::influx::error_chain;

use super::influx_v1::classify;
use super::SinkError;

/// Writes line protocol with the `influxdb2` client.
pub struct InfluxV2 {
    client: influxdb2::Client,
    org: String,
    bucket: String,
}

impl InfluxV2 {
    /// A sink writing to `bucket` of `org` at `url` with `token`.
    pub fn new(url: &str, org: &str, bucket: &str, token: &str) -> InfluxV2 {
        InfluxV2 {
            client: influxdb2::Client::new(url.trim_end_matches('/'), org, token),
            org: org.to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    /// Writes a batch of lines.
    ///
    /// # Errors
    /// As the v1 sink: [`SinkError::Rejected`] for invalid lines, [`SinkError::Retry`] else.
    pub async fn write(&self, body: Bytes) -> Result<(), SinkError> {
        match self.client.write_line_protocol(&self.org, &self.bucket, body).await {
            Ok(()) => Ok(()),
            Err(influxdb2::RequestError::Http { status, text }) => {
                let status = reqwest::StatusCode::from_u16(status.as_u16())
                    .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
                classify(status, || async { text }).await
            }
            Err(e) => Err(SinkError::Retry { kind: "network", message: error_chain(&e) }),
        }
    }
}
