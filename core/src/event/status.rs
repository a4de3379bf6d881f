//! `event_status`: an organiser scratching a rider from an event (DNF) or reinstating them,
//! stored as a reading of the rider, so that it has a time and a history, and takes the
//! collector's durable path like every other reading.
//!
//! Known measurements have float fields only and no tags of their own, so everything is a
//! number: the event is [`event_code`] of its id (what every service computes from the
//! riders file to find an event's readings), the state and the reason are small codes. The
//! rider is the reading's `rider` tag, and the organiser who recorded it its `device` tag.

use crate::ids::EventId;
use crate::reading::{Metric, Reading, ReadingError};
use crate::time::Nanos;

/// The largest event code: 2^53 - 1, the largest integer a float holds exactly.
pub const MAX_EVENT_CODE: f64 = 9_007_199_254_740_991.0;

/// The number that stands for an event in `event_status`: the first 53 bits of the SHA-256
/// of its id, a whole number a float holds exactly. Two events of one riders file never share
/// one (the file is refused if they would).
pub fn event_code(event: &EventId) -> f64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(event.as_str().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    (u64::from_be_bytes(first) >> 11) as f64
}

/// Whether a rider is in the event or out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Riding (what every entrant is until scratched; what reinstating sets again).
    Racing,
    /// Out of the event: did not finish.
    Scratched,
}

impl Status {
    /// Its code in the `state` field.
    pub fn code(self) -> f64 {
        match self {
            Status::Racing => 0.0,
            Status::Scratched => 1.0,
        }
    }

    /// The status of a `state` code.
    pub fn from_code(code: f64) -> Option<Status> {
        [Status::Racing, Status::Scratched].into_iter().find(|s| s.code() == code)
    }

    /// Its name in the API and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Status::Racing => "racing",
            Status::Scratched => "scratched",
        }
    }

    /// The status of a name.
    pub fn from_name(name: &str) -> Option<Status> {
        [Status::Racing, Status::Scratched].into_iter().find(|s| s.name() == name)
    }
}

/// Why a rider was scratched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The rider stopped of their own will.
    Withdrew,
    /// The rider missed a cut-off.
    Cutoff,
    /// The organisers put the rider out.
    Disqualified,
    /// Injury, illness, a crash.
    Medical,
    /// Anything else.
    Other,
}

impl Reason {
    /// Every reason, in code order.
    pub const ALL: [Reason; 5] =
        [Reason::Withdrew, Reason::Cutoff, Reason::Disqualified, Reason::Medical, Reason::Other];

    /// Its code in the `reason` field (1 to 5).
    pub fn code(self) -> f64 {
        match self {
            Reason::Withdrew => 1.0,
            Reason::Cutoff => 2.0,
            Reason::Disqualified => 3.0,
            Reason::Medical => 4.0,
            Reason::Other => 5.0,
        }
    }

    /// The reason of a code.
    pub fn from_code(code: f64) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Its name in the API and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Withdrew => "withdrew",
            Reason::Cutoff => "cutoff",
            Reason::Disqualified => "disqualified",
            Reason::Medical => "medical",
            Reason::Other => "other",
        }
    }

    /// The reason of a name.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One change of a rider's status in an event, as read back from an `event_status` reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// The event's code ([`event_code`]).
    pub event: f64,
    /// The status from this reading's time on.
    pub status: Status,
    /// Why, for a scratch that says.
    pub reason: Option<Reason>,
}

impl Change {
    /// The `event_status` reading of this change at `time`.
    ///
    /// # Errors
    /// [`ReadingError`] when `time` is outside the window every reading must fall in (before
    /// 1990, or more than five minutes after `now`).
    pub fn reading(&self, time: Nanos, now: Nanos) -> Result<Reading, ReadingError> {
        let mut fields = vec![("event", self.event), ("state", self.status.code())];
        fields.extend(self.reason.map(|r| ("reason", r.code())));
        Reading::known(Metric::EventStatus, time, now, fields)
    }

    /// The change an `event_status` reading records, if it is one.
    pub fn of(reading: &Reading) -> Option<Change> {
        if reading.metric() != Metric::EventStatus {
            return None;
        }
        Some(Change {
            event: reading.float("event")?,
            status: Status::from_code(reading.float("state")?)?,
            reason: reading.float("reason").and_then(Reason::from_code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Nanos = 1_795_773_600_000_000_000;

    #[test]
    fn codes_are_whole_stable_and_within_a_float() {
        let tcr = EventId::parse("tcr-2026").expect("an id");
        let code = event_code(&tcr);
        assert_eq!(code, event_code(&tcr));
        assert!(code.fract() == 0.0 && (0.0..=MAX_EVENT_CODE).contains(&code), "{code}");
        assert_ne!(code, event_code(&EventId::parse("tcr-2027").expect("an id")));
        assert!(
            include_str!("../../../docs/schema.md").contains(&format!("\"event\" = {code}`")),
            "docs/schema.md's example"
        );
        for s in [Status::Racing, Status::Scratched] {
            assert_eq!((Status::from_code(s.code()), Status::from_name(s.name())), (Some(s), Some(s)));
        }
        for r in Reason::ALL {
            assert_eq!((Reason::from_code(r.code()), Reason::from_name(r.name())), (Some(r), Some(r)));
        }
    }

    #[test]
    fn a_change_is_a_reading_and_back() {
        let tcr = EventId::parse("tcr-2026").expect("an id");
        let change =
            Change { event: event_code(&tcr), status: Status::Scratched, reason: Some(Reason::Medical) };
        let reading = change.reading(NOW - 1, NOW).expect("valid");
        assert_eq!(reading.metric().name(), "event_status");
        assert_eq!(Change::of(&reading), Some(change));
        let reinstated = Change { reason: None, status: Status::Racing, ..change };
        assert_eq!(reinstated.reading(NOW, NOW).expect("valid").float("reason"), None);
        assert!(change.reading(NOW + 3_600_000_000_000, NOW).is_err(), "an hour ahead");
    }
}
