//! FIT files, decoded by [`velometry_core::files::fit`] (which also reads courses): the
//! `record` messages become points.

use fitparser::profile::MesgNum;
use fitparser::{FitDataRecord, Value};
use velometry_core::files::fit::{self as decoder, FitError};

use super::*;

pub(super) fn read_fit(name: &str, bytes: &[u8], out: &mut Collector) -> Result<Option<Damage>, FileError> {
    let decoded = decoder::decode(bytes).map_err(|e| fit_error(name, e))?;
    for record in decoded.records.iter().filter(|r| r.kind() == MesgNum::Record) {
        out.add(fit_point(record));
    }
    Ok(decoded.cut.map(|(at, expected)| Damage {
        at,
        missing_bytes: expected.saturating_sub(at),
        expected_bytes: expected,
        last_time: out.last_time(),
    }))
}

/// The decoder's error, with the file's name.
fn fit_error(name: &str, err: FitError) -> FileError {
    let name = name.to_owned();
    match err {
        FitError::Header { at, why } => FileError::FitHeader { name, at, why },
        FitError::Truncated { at } => FileError::Truncated { name, at },
        FitError::Corrupt { at, detail } => FileError::FitCorrupt { name, at, detail },
    }
}

fn fit_point(record: &FitDataRecord) -> Point {
    let number = |name: &str| decoder::number(record, name);
    let semicircles = |name: &str| number(name).map(decoder::degrees);
    let timestamp = record.fields().iter().find(|f| f.name() == "timestamp").map(|f| f.value());
    Point {
        time: match timestamp {
            Some(Value::Timestamp(t)) => t.timestamp_nanos_opt().ok_or("time out of range"),
            _ => Err("no time"),
        },
        lat: semicircles("position_lat"),
        lon: semicircles("position_long"),
        // The enhanced fields are 32-bit versions of the 16-bit ones; fitparser expands the
        // 16-bit ones into them, so a file has one or the other.
        alt: number("enhanced_altitude").or_else(|| number("altitude")),
        speed: number("enhanced_speed").or_else(|| number("speed")),
        heading: None,
        accuracy: number("gps_accuracy"),
        bpm: number("heart_rate"),
        rpm: number("cadence").map(|rpm| rpm + number("fractional_cadence").unwrap_or(0.0)),
        watts: number("power"),
        celsius: number("temperature"),
        meters: number("distance"),
        unreadable: Vec::new(),
    }
}
