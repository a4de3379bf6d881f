//! FIT files, decoded by `fitparser`.

use fitparser::de::{FitObject, FitStreamProcessor};
use fitparser::profile::MesgNum;
use fitparser::{FitDataRecord, Value};

use super::*;

pub(super) fn read_fit(name: &str, bytes: &[u8], out: &mut Collector) -> Result<(), FileError> {
    // fitparser does arithmetic on lengths read from the file and a few of its paths can
    // overflow on hostile input; a bad upload must be an error, never a crashed import.
    let records = std::panic::catch_unwind(|| decode_fit(name, bytes)).unwrap_or_else(|_| {
        Err(FileError::FitCorrupt {
            name: name.to_owned(),
            at: 0,
            detail: "the decoder failed on malformed data".to_owned(),
        })
    })?;
    for record in records.iter().filter(|r| r.kind() == MesgNum::Record) {
        out.add(fit_point(record));
    }
    Ok(())
}

/// Decodes every data message of a FIT file, chained files included. Unlike
/// `fitparser::from_bytes`, which returns what it has when the bytes run out between two
/// messages, a file must end with the checksum its header promised.
fn decode_fit(name: &str, bytes: &[u8]) -> Result<Vec<FitDataRecord>, FileError> {
    if bytes.is_empty() {
        return Err(FileError::FitHeader { name: name.to_owned(), at: 0, why: "the file is empty" });
    }
    let mut processor = FitStreamProcessor::new();
    let mut records = Vec::new();
    let mut rest = bytes;
    let mut at_header = true;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        if at_header {
            check_fit_header(name, rest, at, bytes.len())?;
        }
        let (next, object) =
            processor.deserialize_next(rest).map_err(|e| fit_error(name, *e, at, bytes.len()))?;
        at_header = false;
        match object {
            FitObject::Crc(_) => {
                // The next bytes, if any, are another FIT file with its own definitions.
                processor.reset();
                at_header = true;
            }
            FitObject::DataMessage(message) => {
                // Every message is decoded: any of them may set the base time that the
                // compressed timestamps of the records that follow count from.
                let record =
                    processor.decode_message(message).map_err(|e| fit_error(name, *e, at, bytes.len()))?;
                records.push(record);
            }
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => {}
        }
        rest = next;
    }
    if !at_header {
        return Err(FileError::Truncated { name: name.to_owned(), at: bytes.len() });
    }
    Ok(records)
}

/// Checks a FIT header before fitparser sees it: fitparser computes how many bytes it lacks
/// from the header's first byte, which underflows on short garbage, and it reports a file
/// that ends early only once it runs out in the middle of a message.
fn check_fit_header(name: &str, rest: &[u8], at: usize, len: usize) -> Result<(), FileError> {
    let bad = |why| Err(FileError::FitHeader { name: name.to_owned(), at, why });
    if rest.len() < 12 {
        return bad("shorter than a FIT header");
    }
    if &rest[8..12] != b".FIT" {
        return bad("no \".FIT\" signature");
    }
    let header_size = usize::from(rest[0]);
    if header_size != 12 && header_size != 14 {
        return bad("header size is neither 12 nor 14");
    }
    let data_size = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    if rest.len() < header_size.saturating_add(data_size).saturating_add(2) {
        return Err(FileError::Truncated { name: name.to_owned(), at: len });
    }
    Ok(())
}

fn fit_error(name: &str, err: fitparser::ErrorKind, at: usize, len: usize) -> FileError {
    use fitparser::ErrorKind;
    match err {
        ErrorKind::UnexpectedEof(_) => FileError::Truncated { name: name.to_owned(), at: len },
        ErrorKind::InvalidCrc((_, FitObject::Header(_), expected, computed)) => FileError::FitCorrupt {
            name: name.to_owned(),
            at,
            detail: format!("header checksum {expected:#06x} does not match the header ({computed:#06x})"),
        },
        ErrorKind::InvalidCrc((_, _, expected, computed)) => FileError::FitCorrupt {
            name: name.to_owned(),
            at,
            detail: format!("data checksum {expected:#06x} does not match the data ({computed:#06x})"),
        },
        other => FileError::FitCorrupt { name: name.to_owned(), at, detail: other.to_string() },
    }
}

fn fit_point(record: &FitDataRecord) -> Point {
    // The first field of a name: fitparser lists the profile's fields before developer
    // fields, which may reuse a profile name for something else.
    let field = |name: &str| record.fields().iter().find(|f| f.name() == name).map(|f| f.value());
    let number = |name: &str| field(name).and_then(fit_number);
    let semicircles = |name: &str| number(name).map(|v| v * 180.0 / 2_147_483_648.0);
    Point {
        time: match field("timestamp") {
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

fn fit_number(value: &Value) -> Option<f64> {
    Some(match *value {
        Value::SInt8(v) => f64::from(v),
        Value::UInt8(v) | Value::UInt8z(v) => f64::from(v),
        Value::SInt16(v) => f64::from(v),
        Value::UInt16(v) | Value::UInt16z(v) => f64::from(v),
        Value::SInt32(v) => f64::from(v),
        Value::UInt32(v) | Value::UInt32z(v) => f64::from(v),
        Value::SInt64(v) => v as f64,
        Value::UInt64(v) | Value::UInt64z(v) => v as f64,
        Value::Float32(v) => f64::from(v),
        Value::Float64(v) => v,
        _ => return None,
    })
}
