//! What the device protocols share (OsmAnd / Traccar Client at `/v1/osmand`, OwnTracks at
//! `/v1/owntracks`). Their apps keep every fix until the server answers 2xx and send the
//! oldest one again and again, so one refused fix would stop every later fix of that phone:
//!
//! - A request that cannot be read as the protocol at all (not JSON, no position, a number
//!   that is not one) is still refused with 400: that is a misconfigured client, and the app
//!   shows the error to the person who can fix it.
//! - A fix that is well-formed but can never be stored (a time before 1990, a value out of
//!   its range, NaN, an OwnTracks message the collector has no key for) is answered 2xx,
//!   written with the reason to `<wal-dir>/dead-letters.devices.jsonl` (synced before the
//!   answer), counted by reason and logged. The other readings of the request are stored.
//! - A fix stamped more than five minutes ahead of the collector's clock — a phone whose
//!   clock is wrong — is kept at the collector's time: the position is worth more than the
//!   phone's idea of when it was. Its own time is noted in a `velometry_retimed` point
//!   written in the same log record (docs/schema.md), and counted.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use velometry_core::reading::{Metric, Reading, ReadingError, MAX_FUTURE_NANOS};
use velometry_core::riders::DeviceIdentity;
use velometry_core::time::{format_rfc3339, now_nanos, Nanos};

use crate::dead_letters::DeadLetters;
use crate::error::ApiError;
use crate::metrics as m;

/// Why a fix can never be stored: the bounded `reason` label of the dead-letter metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// Stamped before 1990-01-01 (a phone without a time yet, a GPS week rollover).
    TooOld,
    /// A value outside its valid range (docs/schema.md).
    OutOfRange,
    /// NaN or infinity.
    NotFinite,
    /// An OwnTracks message encrypted for a device without `owntracks_key`.
    NoKey,
    /// An OwnTracks message that the device's key does not open.
    WrongKey,
    /// Anything else the schema refuses.
    Invalid,
}

impl DeadReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DeadReason::TooOld => "too_old",
            DeadReason::OutOfRange => "out_of_range",
            DeadReason::NotFinite => "not_finite",
            DeadReason::NoKey => "no_key",
            DeadReason::WrongKey => "wrong_key",
            DeadReason::Invalid => "invalid",
        }
    }

    /// The reason a reading was refused.
    pub fn of(error: &ReadingError) -> DeadReason {
        match error {
            ReadingError::TooOld(_) => DeadReason::TooOld,
            ReadingError::OutOfRange { .. } => DeadReason::OutOfRange,
            ReadingError::NotFinite { .. } => DeadReason::NotFinite,
            _ => DeadReason::Invalid,
        }
    }
}

/// A fix that can never be stored, with what the device sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadFix {
    /// Why.
    pub reason: DeadReason,
    /// The message saying why, for the dead-letter file and the log.
    pub error: String,
    /// What the device sent (without its token).
    pub message: Value,
}

/// A fix kept at the collector's time instead of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retimed {
    /// The time the device gave it.
    pub device_time: Nanos,
    /// The collector's time it is stored at.
    pub kept_at: Nanos,
}

/// What the fixes of one request gave: readings to store, fixes kept at the collector's
/// time, and fixes that can never be stored.
#[derive(Debug, Default)]
pub struct Fixes {
    /// Valid readings, in the order they came.
    pub readings: Vec<Reading>,
    /// Fixes stored at the collector's time.
    pub retimed: Vec<Retimed>,
    /// Fixes for the dead-letter file.
    pub dead: Vec<DeadFix>,
}

impl Fixes {
    /// The time to store a fix at: its own, or the collector's clock when it has none or is
    /// more than five minutes ahead. Each call reads the clock anew, and the clock never
    /// gives a time twice, so two fixes without a time of their own never overwrite each
    /// other.
    pub fn time(&mut self, device_time: Option<Nanos>) -> Nanos {
        let now = now_nanos();
        match device_time {
            Some(t) if t > now.saturating_add(MAX_FUTURE_NANOS) => {
                self.retimed.push(Retimed { device_time: t, kept_at: now });
                now
            }
            Some(t) => t,
            None => now,
        }
    }

    /// Adds a reading of `metric`, or the fix to the dead letters when the schema refuses
    /// it. Returns whether it was valid.
    pub fn add<'a>(
        &mut self,
        metric: Metric,
        time: Nanos,
        fields: impl IntoIterator<Item = (&'a str, f64)>,
        message: &Value,
    ) -> bool {
        match Reading::known(metric, time, now_nanos().max(time), fields) {
            Ok(reading) => {
                self.readings.push(reading);
                true
            }
            Err(e) => {
                self.dead(DeadReason::of(&e), format!("{metric}: {e}"), message.clone());
                false
            }
        }
    }

    /// Adds a fix that can never be stored.
    pub fn dead(&mut self, reason: DeadReason, error: String, message: Value) {
        self.dead.push(DeadFix { reason, error, message });
    }

    /// Takes in the fixes of another message of the same request.
    pub fn extend(&mut self, other: Fixes) {
        self.readings.extend(other.readings);
        self.retimed.extend(other.retimed);
        self.dead.extend(other.dead);
    }
}

/// The `velometry_retimed` lines noting the fixes' own times, for the log record that
/// stores them.
pub fn retimed_lines(protocol: &str, identity: &DeviceIdentity, retimed: &[Retimed]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in retimed {
        let offset_s = (r.device_time - r.kept_at) as f64 / 1e9;
        out.extend_from_slice(
            format!(
                "velometry_retimed,device={},rider={},source={protocol} device_time_ns={}i,offset_s={} {}\n",
                identity.device.as_str(),
                identity.rider.as_str(),
                r.device_time,
                ryu::Buffer::new().format(offset_s),
                r.kept_at
            )
            .as_bytes(),
        );
    }
    out
}

/// The dead-letter file of the device protocols, shared by every request.
#[derive(Clone)]
pub struct DeviceLetters(Arc<Mutex<DeadLetters>>);

impl DeviceLetters {
    /// The file at `path`, created on first use.
    pub fn new(path: std::path::PathBuf) -> DeviceLetters {
        DeviceLetters(Arc::new(Mutex::new(DeadLetters::new(path))))
    }

    /// Writes `dead` to the file and syncs it; counts and logs each.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the file cannot be written (a full disk): then the
    /// device must send the fix again, so it is not answered 2xx.
    pub async fn write(
        &self,
        protocol: &'static str,
        identity: &DeviceIdentity,
        dead: Vec<DeadFix>,
    ) -> Result<(), ApiError> {
        let time = format_rfc3339(now_nanos());
        let entries: Vec<Value> = dead
            .iter()
            .map(|d| {
                serde_json::json!({
                    "time": time,
                    "protocol": protocol,
                    "rider": identity.rider.as_str(),
                    "device": identity.device.as_str(),
                    "reason": d.reason.label(),
                    "error": d.error,
                    "message": d.message,
                })
            })
            .collect();
        let file = self.0.clone();
        let written = tokio::task::spawn_blocking(move || {
            file.lock().unwrap_or_else(std::sync::PoisonError::into_inner).append(&entries)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
        if let Err(e) = written {
            tracing::error!(error = %e, protocol, "Cannot write the devices' dead-letter file (is the disk full?); the fix is refused with 503 and the device sends it again.");
            m::rejected(protocol, "unavailable", dead.len());
            return Err(ApiError::Unavailable(
                anyhow::Error::new(e).context("the devices' dead-letter file"),
            ));
        }
        for d in &dead {
            m::device_dead_letter(protocol, d.reason.label());
            tracing::warn!(protocol, rider = %identity.rider, device = %identity.device, reason = d.reason.label(),
                error = %d.error, "A fix that can never be stored was answered 2xx and dead-lettered.");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fix_far_ahead_is_kept_at_the_collectors_time_and_one_without_time_gets_a_new_one() {
        let mut fixes = Fixes::default();
        let ahead = now_nanos() + 600_000_000_000;
        let kept = fixes.time(Some(ahead));
        assert!(kept < ahead - 500_000_000_000, "kept at the collector's time");
        assert_eq!(fixes.retimed, [Retimed { device_time: ahead, kept_at: kept }]);
        let near = now_nanos() + 60_000_000_000;
        assert_eq!(fixes.time(Some(near)), near, "a minute ahead is within the tolerance");
        let (a, b) = (fixes.time(None), fixes.time(None));
        assert!(b > a, "two fixes without a time never share one");
    }

    #[test]
    fn refused_readings_become_dead_letters_with_a_bounded_reason() {
        let mut fixes = Fixes::default();
        let message = serde_json::json!({"lat": "95"});
        assert!(!fixes.add(Metric::Gps, now_nanos(), [("lat", 95.0), ("lon", 7.0)], &message));
        assert!(!fixes.add(Metric::Gps, 1_000, [("lat", 45.0), ("lon", 7.0)], &message));
        assert!(fixes.add(Metric::Gps, now_nanos(), [("lat", 45.0), ("lon", 7.0)], &message));
        let reasons: Vec<&str> = fixes.dead.iter().map(|d| d.reason.label()).collect();
        assert_eq!(reasons, ["out_of_range", "too_old"]);
        assert_eq!(fixes.dead[0].error, "gps: lat 95 is out of range [-90, 90] degrees");
        assert_eq!(fixes.readings.len(), 1);
    }

    #[test]
    fn retimed_fixes_are_noted_as_line_protocol() {
        let identity = DeviceIdentity {
            rider: velometry_core::ids::RiderId::parse("alice").expect("id"),
            device: velometry_core::ids::DeviceId::parse("phone").expect("id"),
        };
        let lines = retimed_lines(
            "osmand",
            &identity,
            &[Retimed { device_time: 1_600_000_000_000_000_000, kept_at: 1_599_999_400_000_000_000 }],
        );
        assert_eq!(
            String::from_utf8(lines).expect("utf-8"),
            "velometry_retimed,device=phone,rider=alice,source=osmand device_time_ns=1600000000000000000i,offset_s=600.0 1599999400000000000\n"
        );
    }
}
