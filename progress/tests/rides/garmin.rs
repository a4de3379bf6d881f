//! The shared Garmin rides against a course made from themselves.
