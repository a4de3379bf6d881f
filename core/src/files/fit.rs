//! FIT files, decoded by `fitparser`, for ride files and course files alike.
//!
//! Two things are done around the decoder:
//! - A file that ends early — a bike computer that crashed or lost power mid-ride — gives
//!   every message before the cut, and says where the cut is ([`Decoded::cut`]): refusing
//!   it would lose the whole ride. A header that is not a FIT header, data the decoder
//!   refuses and a checksum that does not match are errors.
//! - A definition whose field size is not a multiple of its base type (seen in Coros files)
//!   is read as fitparser reads it — the field as bytes — but without fitparser's `ERROR:`
//!   line on stderr, which the person importing can do nothing about: the base type is
//!   rewritten to `byte` in a copy before decoding, and the data checksum checked against the
//!   file as it was.

use fitparser::de::{DecodeOption, FitObject, FitStreamProcessor};
use fitparser::{FitDataRecord, Value};

/// Why FIT data cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    /// A FIT file header (or the header of a chained FIT file) is not one.
    #[error("{}", if *at == 0 {
        format!("not a FIT file (bad header: {why})")
    } else {
        format!("corrupt chained FIT file (bad header at byte {at}: {why})")
    })]
    Header {
        /// Where the header starts.
        at: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The file ends before its data does.
    #[error("truncated at byte {at} (unexpected end of file)")]
    Truncated {
        /// Where it ends.
        at: usize,
    },
    /// Data the decoder refuses: a bad checksum, a message without a definition.
    #[error("corrupt FIT data at byte {at}: {detail}")]
    Corrupt {
        /// Where the refused object starts.
        at: usize,
        /// The decoder's reason.
        detail: String,
    },
}

/// The data messages of a FIT file.
#[derive(Debug)]
pub struct Decoded {
    /// Every data message, in file order.
    pub records: Vec<FitDataRecord>,
    /// For a file cut short: the first byte not read, and the length its header promises.
    pub cut: Option<(usize, usize)>,
}

/// Decodes every data message of a FIT file, chained files included. Unlike
/// `fitparser::from_bytes`, which returns what it has when the bytes run out between two
/// messages, a file must end with the checksum its header promised; when it does not, the
/// messages before the cut are returned with where the cut is and how long the file should
/// be ([`Decoded::cut`]). A cut before the first data message is an error.
///
/// # Errors
/// [`FitError`] for a header that is not one, a file cut before its first message, data the
/// decoder refuses (a wrong checksum among them).
pub fn decode(bytes: &[u8]) -> Result<Decoded, FitError> {
    // fitparser does arithmetic on lengths read from the file and a few of its paths can
    // overflow on hostile input; a bad upload must be an error, never a crashed import.
    std::panic::catch_unwind(|| decode_unguarded(bytes)).unwrap_or_else(|_| {
        Err(FitError::Corrupt { at: 0, detail: "the decoder failed on malformed data".to_owned() })
    })
}

/// The first field called `name` of a message, as a number: fitparser lists the profile's
/// fields before developer fields, which may reuse a profile name for something else.
pub fn number(record: &FitDataRecord, name: &str) -> Option<f64> {
    record.fields().iter().find(|f| f.name() == name).and_then(|f| value_number(f.value()))
}

/// Degrees from FIT's semicircles (2^31 of them to 180°).
pub fn degrees(semicircles: f64) -> f64 {
    semicircles * 180.0 / 2_147_483_648.0
}

/// [`decode`], without the guard against the decoder's panics.
fn decode_unguarded(bytes: &[u8]) -> Result<Decoded, FitError> {
    if bytes.is_empty() {
        return Err(FitError::Header { at: 0, why: "the file is empty" });
    }
    let (normalised, skip_crc) = normalise(bytes);
    let data = normalised.as_deref().unwrap_or(bytes);
    let mut processor = FitStreamProcessor::new();
    if skip_crc {
        processor.add_option(DecodeOption::SkipDataCrcValidation);
    }
    let mut records = Vec::new();
    let mut rest = data;
    let mut at_header = true;
    // The length the header of the current (chained) file promises, from its start.
    let mut expected = 0;
    // Only a file shorter than its header says is cut short: one that runs out in the
    // middle of a message although it is as long as it should be is damaged inside, an error.
    let cut = |at: usize, expected: usize, records: &Vec<FitDataRecord>| {
        if records.is_empty() || bytes.len() >= expected {
            Err(FitError::Truncated { at: bytes.len() })
        } else {
            Ok(Some((at, expected)))
        }
    };
    while !rest.is_empty() {
        let at = data.len() - rest.len();
        if at_header && at > 0 && rest.len() < 12 {
            // Cut inside the header of a chained file.
            let found = cut(at, at + 12, &records)?;
            return Ok(Decoded { records, cut: found });
        }
        if at_header {
            expected = at + check_header(rest, at)?;
        }
        let (next, object) = match processor.deserialize_next(rest) {
            Ok(next) => next,
            Err(e) if matches!(*e, fitparser::ErrorKind::UnexpectedEof(_)) => {
                let found = cut(at, expected, &records)?;
                return Ok(Decoded { records, cut: found });
            }
            Err(e) => return Err(fit_error(*e, at, bytes.len())),
        };
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
                let record = processor.decode_message(message).map_err(|e| fit_error(*e, at, bytes.len()))?;
                records.push(record);
            }
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => {}
        }
        rest = next;
    }
    if !at_header {
        let found = cut(bytes.len(), expected, &records)?;
        return Ok(Decoded { records, cut: found });
    }
    Ok(Decoded { records, cut: None })
}

/// Checks a FIT header before fitparser sees it (fitparser computes how many bytes it lacks
/// from the header's first byte, which underflows on short garbage); returns the length of
/// the file the header describes, checksum included.
fn check_header(rest: &[u8], at: usize) -> Result<usize, FitError> {
    let bad = |why| Err(FitError::Header { at, why });
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
    Ok(header_size.saturating_add(data_size).saturating_add(2))
}

/// The size of a FIT base type (its number with the endian bit, as in definitions), as
/// fitparser counts it: an unknown type counts as one byte.
fn base_type_size(base_type: u8) -> u8 {
    match base_type & 0x9F {
        0x83 | 0x84 | 0x8B => 2,
        0x85 | 0x86 | 0x88 | 0x8C => 4,
        0x89 | 0x8E | 0x8F | 0x90 => 8,
        _ => 1,
    }
}

/// FIT's `byte` base type.
const BYTE: u8 = 0x0D;

/// A copy of `bytes` in which every field definition whose size is not a multiple of its
/// base type is of type `byte` (what fitparser would make of it, but silently), if there is
/// one; and whether the data checksums must then be left unchecked by the decoder, because
/// they were checked here against the original bytes and rewritten for the copy.
fn normalise(bytes: &[u8]) -> (Option<Vec<u8>>, bool) {
    let mut copy: Option<Vec<u8>> = None;
    let mut checked = true;
    let mut start = 0;
    while let Some(file) = bytes.get(start..).filter(|f| f.len() >= 12 && &f[8..12] == b".FIT") {
        let header_size = usize::from(file[0]);
        let data_size = u32::from_le_bytes([file[4], file[5], file[6], file[7]]) as usize;
        let data_end = (header_size + data_size).min(file.len());
        let odd = odd_field_types(&file[..data_end], header_size);
        if !odd.is_empty() {
            let copy = copy.get_or_insert_with(|| bytes.to_vec());
            for i in &odd {
                copy[start + i] = BYTE;
            }
            if let Some(stored) =
                file.get(data_end..data_end + 2).filter(|_| data_end == header_size + data_size)
            {
                // The checksum covers the header too unless the header has one of its own.
                let header_crc = header_size == 14 && u16::from_le_bytes([file[12], file[13]]) != 0;
                let from = if header_crc { header_size } else { 0 };
                if crc(&file[from..data_end]).to_le_bytes() == stored {
                    let crc = crc(&copy[start + from..start + data_end]).to_le_bytes();
                    copy[start + data_end..start + data_end + 2].copy_from_slice(&crc);
                } else {
                    // A checksum that does not match stays, and the decoder checks it: it
                    // refuses the file as it would have.
                    checked = false;
                }
            }
        }
        start += data_end + 2;
    }
    let skip_crc = copy.is_some() && checked;
    (copy, skip_crc)
}

/// Offsets (in `file`) of the base-type bytes of field definitions whose size is not a
/// multiple of their base type. Walks the messages as far as they are whole and defined.
fn odd_field_types(file: &[u8], header_size: usize) -> Vec<usize> {
    let mut odd = Vec::new();
    // Data message sizes by local message number.
    let mut sizes = [None::<usize>; 16];
    let mut pos = header_size;
    while let Some(&header) = file.get(pos) {
        let (local, definition, developer) = if header & 0x80 != 0 {
            (usize::from((header >> 5) & 0x03), false, false)
        } else {
            (usize::from(header & 0x0F), header & 0x40 != 0, header & 0x20 != 0)
        };
        pos += 1;
        if !definition {
            match sizes[local] {
                Some(size) => pos += size,
                None => break,
            }
            continue;
        }
        let Some(&fields) = file.get(pos + 4) else { break };
        let mut size = 0;
        let mut at = pos + 5;
        for _ in 0..fields {
            let (Some(&field_size), Some(&base_type)) = (file.get(at + 1), file.get(at + 2)) else {
                return odd;
            };
            if field_size % base_type_size(base_type) != 0 {
                odd.push(at + 2);
            }
            size += usize::from(field_size);
            at += 3;
        }
        if developer {
            let Some(&count) = file.get(at) else { break };
            at += 1;
            for _ in 0..count {
                let Some(&field_size) = file.get(at + 1) else { return odd };
                size += usize::from(field_size);
                at += 3;
            }
        }
        sizes[local] = Some(size);
        pos = at;
    }
    odd
}

/// The FIT checksum (CRC-16 as the FIT SDK computes it).
pub fn crc(bytes: &[u8]) -> u16 {
    const TABLE: [u16; 16] = [
        0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401, 0xA001, 0x6C00, 0x7800, 0xB401,
        0x5000, 0x9C01, 0x8801, 0x4400,
    ];
    let mut crc = 0u16;
    for &byte in bytes {
        for nibble in [byte & 0xF, byte >> 4] {
            let tmp = TABLE[usize::from(crc & 0xF)];
            crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ TABLE[usize::from(nibble)];
        }
    }
    crc
}

fn fit_error(err: fitparser::ErrorKind, at: usize, len: usize) -> FitError {
    use fitparser::ErrorKind;
    match err {
        ErrorKind::UnexpectedEof(_) => FitError::Truncated { at: len },
        ErrorKind::InvalidCrc((_, FitObject::Header(_), expected, computed)) => FitError::Corrupt {
            at,
            detail: format!("header checksum {expected:#06x} does not match the header ({computed:#06x})"),
        },
        ErrorKind::InvalidCrc((_, _, expected, computed)) => FitError::Corrupt {
            at,
            detail: format!("data checksum {expected:#06x} does not match the data ({computed:#06x})"),
        },
        other => FitError::Corrupt { at, detail: other.to_string() },
    }
}

/// A FIT value as a number, when it is one.
pub fn value_number(value: &Value) -> Option<f64> {
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
