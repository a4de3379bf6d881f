//! Off course: the distance from the fix to the course within the rider's reach, with
//! hysteresis so that GPS noise near a threshold does not flap. A rider leaves the course
//! when `leave_fixes` fixes in a row are further than `leave_m` (100 m, two fixes), and
//! rejoins at the first fix within `rejoin_m` (50 m). Between the two thresholds nothing
//! changes. Leaving is dated at the first of the fixes that were too far.

use serde::{Deserialize, Serialize};
use velometry_core::time::Nanos;

/// Thresholds of off-course detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffCourseConfig {
    /// Further than this from the course counts toward leaving it, metres.
    pub leave_m: f64,
    /// Fixes in a row past `leave_m` that make the rider off course.
    pub leave_fixes: u32,
    /// Within this of the course, an off-course rider is back on it, metres.
    pub rejoin_m: f64,
}

impl Default for OffCourseConfig {
    fn default() -> OffCourseConfig {
        OffCourseConfig { leave_m: 100.0, leave_fixes: 2, rejoin_m: 50.0 }
    }
}

/// What off-course detection remembers between fixes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OffCourseState {
    off: bool,
    /// Fixes in a row past `leave_m`, and the time and place along the course of the first.
    far: u32,
    far_since: Option<(Nanos, f64)>,
}

/// A change of being on or off course.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Left the course at `time`, `at_m` along it.
    Left {
        /// The first fix too far.
        time: Nanos,
        /// Where along the course the rider was last.
        at_m: f64,
    },
    /// Back on the course.
    Rejoined,
}

impl OffCourseState {
    /// The rider is off course.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Takes the distance from the course of the fix at `time`, with the rider `at_m`
    /// along it.
    pub fn update(
        &mut self,
        config: &OffCourseConfig,
        time: Nanos,
        from_course_m: f64,
        at_m: f64,
    ) -> Option<Change> {
        if self.off {
            if from_course_m <= config.rejoin_m {
                *self = OffCourseState::default();
                return Some(Change::Rejoined);
            }
            return None;
        }
        if from_course_m > config.leave_m {
            self.far += 1;
            let (since, at) = *self.far_since.get_or_insert((time, at_m));
            if self.far >= config.leave_fixes {
                self.off = true;
                return Some(Change::Left { time: since, at_m: at });
            }
        } else {
            self.far = 0;
            self.far_since = None;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_far_fix_is_noise_two_leave_and_rejoining_needs_50_m() {
        let config = OffCourseConfig::default();
        let mut s = OffCourseState::default();
        assert_eq!(s.update(&config, 1, 150.0, 10.0), None);
        assert_eq!(s.update(&config, 2, 20.0, 11.0), None, "a single far fix is noise");
        assert_eq!(s.update(&config, 3, 150.0, 12.0), None);
        assert_eq!(s.update(&config, 4, 300.0, 12.0), Some(Change::Left { time: 3, at_m: 12.0 }));
        assert_eq!(s.update(&config, 5, 80.0, 12.0), None, "between the thresholds, still off");
        assert!(s.is_off());
        assert_eq!(s.update(&config, 6, 40.0, 13.0), Some(Change::Rejoined));
        assert!(!s.is_off());
    }
}
