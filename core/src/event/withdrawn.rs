//! The marks of a derived point withdrawn: a recomputation (late fixes, a fixed course) no
//! longer gives what it held, so the progress service overwrites it in place with one field
//! set to a value no live point carries (docs/schema.md, "Derived readings"). InfluxDB 2.x
//! and 3.x have no InfluxQL `DELETE`, and an overwrite reaches the live feed like any reading.
//! Readers leave the marked points out.

/// Per derived measurement an event gives, the field that marks it and the mark.
pub const MARKS: [(&str, &str, f64); 4] = [
    ("checkpoint", "outcome", CHECKPOINT_OUTCOME),
    ("course_status", "status", STATUS),
    ("stop", "status", STATUS),
    ("off_course", "off", OFF_COURSE),
];

/// The `outcome` of a withdrawn `checkpoint` point (0 arrived, 1 missed, 2 cut-off).
pub const CHECKPOINT_OUTCOME: f64 = 3.0;

/// The `status` of a withdrawn `course_status` or `stop` point (the status codes end at 6).
pub const STATUS: f64 = 7.0;

/// The `off` of a withdrawn `off_course` point (0 rejoined, 1 left).
pub const OFF_COURSE: f64 = 2.0;

/// The mark of `metric`'s withdrawn points: its field and value.
pub fn mark(metric: &str) -> Option<(&'static str, f64)> {
    MARKS.iter().find(|(m, _, _)| *m == metric).map(|&(_, field, value)| (field, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ride::RideStatus;

    #[test]
    fn no_live_status_carries_the_mark() {
        assert!(RideStatus::from_code(STATUS).is_none());
        assert_eq!(mark("stop"), Some(("status", STATUS)));
        assert_eq!(mark("course_progress"), None);
    }
}
