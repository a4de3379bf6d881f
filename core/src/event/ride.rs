//! What an entrant is doing, as the progress service finds it and writes it (the `status`
//! field of `course_progress`, `course_status` and `stop`, docs/schema.md), and as the query
//! service reads it back: one list of codes and names for both.

use serde::{Deserialize, Serialize};

/// What a rider is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RideStatus {
    /// Moving.
    Riding,
    /// A stop, short so far.
    Stopped,
    /// A long stop.
    Resting,
    /// A long stop at local night.
    Sleeping,
    /// No fix for a while after riding.
    NoSignal,
    /// Reached the finish.
    Finished,
    /// Out of the event (DNF), as the organiser said.
    Scratched,
}

impl RideStatus {
    /// Every status, in the order of their codes.
    pub const ALL: [RideStatus; 7] = [
        RideStatus::Riding,
        RideStatus::Stopped,
        RideStatus::Resting,
        RideStatus::Sleeping,
        RideStatus::NoSignal,
        RideStatus::Finished,
        RideStatus::Scratched,
    ];

    /// The name used in readings' documentation and the API.
    pub fn name(self) -> &'static str {
        match self {
            RideStatus::Riding => "riding",
            RideStatus::Stopped => "stopped",
            RideStatus::Resting => "resting",
            RideStatus::Sleeping => "sleeping",
            RideStatus::NoSignal => "no_signal",
            RideStatus::Finished => "finished",
            RideStatus::Scratched => "scratched",
        }
    }

    /// Its code in the `status` field: `0` riding … `6` scratched.
    pub fn code(self) -> f64 {
        f64::from(self as u8)
    }

    /// The status of a `status` code.
    pub fn from_code(code: f64) -> Option<RideStatus> {
        RideStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// One of the kinds of stop.
    pub fn is_stop(self) -> bool {
        matches!(self, RideStatus::Stopped | RideStatus::Resting | RideStatus::Sleeping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones_and_read_back() {
        let codes: Vec<(f64, &str)> = RideStatus::ALL.iter().map(|s| (s.code(), s.name())).collect();
        assert_eq!(
            codes,
            [
                (0.0, "riding"),
                (1.0, "stopped"),
                (2.0, "resting"),
                (3.0, "sleeping"),
                (4.0, "no_signal"),
                (5.0, "finished"),
                (6.0, "scratched")
            ]
        );
        for s in RideStatus::ALL {
            assert_eq!(RideStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(RideStatus::from_code(7.0), None);
        assert_eq!(RideStatus::from_code(0.5), None);
    }
}
