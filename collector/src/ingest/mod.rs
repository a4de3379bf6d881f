//! Ingest: every protocol parses its payload into validated [`Reading`]s, then one path
//! makes them durable (WAL), answers, and publishes the live ones.

pub mod derived;
pub mod device;
pub mod event_status;
pub mod json;
pub mod lineproto;
pub mod osmand;
pub mod owntracks;

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::BodyExt;
use velometry_core::event::Event;
use velometry_core::ids::{EventId, RiderId};
use velometry_core::lineproto::{encode, Origin};
use velometry_core::reading::{Metric, Reading};
use velometry_core::riders::{DeviceIdentity, Registry};
use velometry_core::time::{now_nanos, Nanos};

use crate::error::ApiError;
use crate::live::{self, Live};
use crate::metrics as m;
use crate::wal::{AppendError, Wal};

/// Limits applied to every ingest request.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body accepted, after decompression.
    pub max_bytes: usize,
    /// Time allowed for the whole body to arrive.
    pub read_timeout: Duration,
}

/// Reads a request body within the limits, un-gzipping it when it says `Content-Encoding:
/// gzip`. The limit holds for the decompressed size too (no zip bombs).
///
/// # Errors
/// [`ApiError::TooLarge`], [`ApiError::Timeout`], or [`ApiError::BadRequest`] for a broken
/// gzip stream or an unsupported encoding.
pub async fn read_body(headers: &HeaderMap, body: Body, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limits.max_bytes);
    let collected = tokio::time::timeout(limits.read_timeout, limited.collect())
        .await
        .map_err(|_| ApiError::Timeout(limits.read_timeout))?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ApiError::TooLarge(limits.max_bytes)
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?
        .to_bytes();
    match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("" | "identity") => Ok(collected),
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::with_capacity(collected.len() * 4);
            GzDecoder::new(&collected[..])
                .take(limits.max_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("body is not valid gzip: {e}")))?;
            if out.len() > limits.max_bytes {
                return Err(ApiError::TooLarge(limits.max_bytes));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported; send gzip or no encoding"
        ))),
    }
}

/// The durable path every protocol ends in.
#[derive(Clone)]
pub struct Ingest {
    wal: Wal,
    live: Option<Live>,
    live_max_age: Duration,
    late_after: Duration,
    device_letters: device::DeviceLetters,
}

/// Where a request's readings stand against the clock.
#[derive(Debug, Clone, Copy)]
pub struct Ages {
    /// The oldest timestamp still published live, when NATS is configured.
    pub live_oldest: Option<Nanos>,
    /// Readings older than this are late for the query service's rollups.
    pub late_before: Nanos,
}

/// Per measurement, the time span of the late readings of one request: the query service
/// recomputes its rollups over these spans (see docs/schema.md, "Late readings").
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LateSpans(Vec<(Metric, Nanos, Nanos)>);

impl LateSpans {
    /// Notes a late reading of `metric` at `time`.
    pub fn note(&mut self, metric: Metric, time: Nanos) {
        match self.0.iter_mut().find(|(m, _, _)| *m == metric) {
            Some((_, from, to)) => {
                *from = (*from).min(time);
                *to = (*to).max(time);
            }
            None => self.0.push((metric, time, time)),
        }
    }

    /// Appends one `velometry_late` marker per measurement, stamped `now`.
    fn encode(&self, identity: &DeviceIdentity, now: Nanos, out: &mut Vec<u8>) {
        for (metric, from, to) in &self.0 {
            let line = format!(
                "velometry_late,device={},measurement={},rider={} from_ns={from}i,to_ns={to}i {now}\n",
                identity.device.as_str(),
                metric.name(),
                identity.rider.as_str()
            );
            out.extend_from_slice(line.as_bytes());
        }
    }
}

impl Ingest {
    /// The path writing to `wal` and publishing to `live` when NATS is configured; readings
    /// older than `late_after` are announced to the rollups; device fixes that can never be
    /// stored go to `device_letters`.
    pub fn new(
        wal: Wal,
        live: Option<Live>,
        live_max_age: Duration,
        late_after: Duration,
        device_letters: device::DeviceLetters,
    ) -> Ingest {
        Ingest { wal, live, live_max_age, late_after, device_letters }
    }

    /// The WAL, for readiness.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Makes readings durable and publishes the live ones. Returns once they are on disk.
    ///
    /// # Errors
    /// [`ApiError::Full`] when the WAL is full, [`ApiError::Internal`] when it fails.
    pub async fn commit(
        &self,
        protocol: &'static str,
        identity: &DeviceIdentity,
        readings: &[Reading],
    ) -> Result<(), ApiError> {
        self.commit_with(protocol, identity, readings, Vec::new()).await
    }

    /// Stores what the fixes of a device protocol gave: the readings (with a note of the
    /// fixes kept at the collector's time) in the log, then the fixes that can never be
    /// stored in the dead-letter file. See [`device`].
    ///
    /// # Errors
    /// As [`Ingest::commit`], and [`ApiError::Unavailable`] when the dead-letter file cannot
    /// be written.
    pub async fn commit_fixes(
        &self,
        protocol: &'static str,
        identity: &DeviceIdentity,
        fixes: device::Fixes,
    ) -> Result<(), ApiError> {
        let device::Fixes { readings, retimed, dead } = fixes;
        let notes = device::retimed_lines(protocol, identity, &retimed);
        self.commit_with(protocol, identity, &readings, notes).await?;
        for r in &retimed {
            tracing::info!(protocol, rider = %identity.rider, device = %identity.device,
                device_time = %velometry_core::time::format_rfc3339(r.device_time),
                ahead_s = (r.device_time - r.kept_at) / 1_000_000_000,
                "A fix stamped ahead of the collector's clock was kept at the collector's time (is the phone's clock wrong?).");
        }
        m::retimed(protocol, retimed.len());
        if dead.is_empty() {
            return Ok(());
        }
        self.device_letters.write(protocol, identity, dead).await
    }

    /// [`Ingest::commit`], with `extra` lines (already encoded) in the same log record.
    async fn commit_with(
        &self,
        protocol: &'static str,
        identity: &DeviceIdentity,
        readings: &[Reading],
        extra: Vec<u8>,
    ) -> Result<(), ApiError> {
        let origin = Origin { rider: &identity.rider, device: &identity.device, source: protocol };
        let mut lines = Vec::with_capacity(readings.len() * 96);
        let late_before = self.ages(now_nanos()).late_before;
        let mut late = LateSpans::default();
        for reading in readings {
            encode(reading, origin, &mut lines);
            if reading.time() < late_before {
                late.note(reading.metric(), reading.time());
            }
        }
        lines.extend_from_slice(&extra);
        self.commit_lines(protocol, identity, lines, readings.len(), readings, &late).await
    }

    /// Makes already encoded, validated lines durable, with markers for their `late` spans,
    /// then publishes `live` (the readings among them that may be live; older ones are
    /// skipped here).
    ///
    /// # Errors
    /// As [`Ingest::commit`].
    pub async fn commit_lines(
        &self,
        protocol: &'static str,
        identity: &DeviceIdentity,
        mut lines: Vec<u8>,
        count: usize,
        live: &[Reading],
        late: &LateSpans,
    ) -> Result<(), ApiError> {
        if count == 0 {
            return Ok(());
        }
        // In the same log record as the readings: the marker reaches InfluxDB with them.
        late.encode(identity, now_nanos(), &mut lines);
        match self.wal.append(lines).await {
            Ok(_) => {}
            Err(AppendError::Full { .. }) => {
                m::rejected(protocol, "wal_full", count);
                return Err(ApiError::Full);
            }
            Err(e) => {
                // A full or failing disk, or shutdown: nothing was made durable, and the
                // client may send it again once the writer can write (see `wal`).
                m::rejected(protocol, "unavailable", count);
                return Err(ApiError::Unavailable(e.into()));
            }
        }
        m::accepted(protocol, count);
        if let Some(publisher) = &self.live {
            publisher.publish(live::messages(identity, live, now_nanos(), self.live_max_age));
        }
        Ok(())
    }

    /// Where readings stand against `now`: live or late.
    pub fn ages(&self, now: Nanos) -> Ages {
        let before = |age: Duration| now.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
        Ages {
            live_oldest: self.live.as_ref().map(|_| before(self.live_max_age)),
            late_before: before(self.late_after),
        }
    }
}

/// The event a route names and the entrant of it: 404 for an unknown event, then the
/// caller's own 403 when `refused` says it may not write for this event, then 404 for a
/// rider who is not an entrant.
///
/// # Errors
/// As above.
pub fn entrant_of<'r>(
    registry: &'r Registry,
    event: &str,
    rider: &str,
    refused: impl FnOnce(&Event) -> Option<String>,
) -> Result<(&'r Event, RiderId), ApiError> {
    let event = EventId::parse(event)
        .ok()
        .and_then(|id| registry.event(&id))
        .ok_or_else(|| ApiError::NotFound(format!("no event {event:?} in the riders file")))?;
    if let Some(why) = refused(event) {
        return Err(ApiError::Forbidden(why));
    }
    let rider = RiderId::parse(rider).ok().filter(|r| event.entrant(r).is_some()).ok_or_else(|| {
        ApiError::NotFound(format!("{rider:?} is not an entrant of event {:?}", event.id.as_str()))
    })?;
    Ok((event, rider))
}

/// The media type of a request, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}
