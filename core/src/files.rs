//! What reading ride files (the collector's `import`) and course files (the events of the
//! riders file) share: gzip with a bound on the decompressed size, the format a file name
//! says, a walk over XML elements (GPX extensions and TCX, which `gpx` does not cover), and
//! a FIT decoder that survives files cut short. One copy, so that both read a file alike.

use std::io::Read;

pub mod fit;
pub mod xml;

/// The most a gzipped file may grow to when decompressed. The largest real rides and
/// courses are tens of megabytes; the limit keeps a small malicious `.gz` from filling the
/// memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 * 1024 * 1024;

/// A file format velometry reads rides and courses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Garmin's binary Flexible and Interoperable Data Transfer format.
    Fit,
    /// GPS Exchange Format (XML).
    Gpx,
    /// Garmin's Training Center XML.
    Tcx,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Fit => "FIT",
            Format::Gpx => "GPX",
            Format::Tcx => "TCX",
        })
    }
}

/// Why a gzipped file cannot be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The data is not gzip, or is cut short.
    #[error("not gzip data: {0}")]
    Corrupt(#[source] std::io::Error),
    /// It decompresses to more than [`MAX_DECOMPRESSED_BYTES`].
    #[error("larger than {MAX_DECOMPRESSED_BYTES} bytes once decompressed")]
    TooLarge,
}

/// Decompresses gzip data, every member of it (`cat a.gz b.gz` is valid gzip and some tools
/// write it), up to [`MAX_DECOMPRESSED_BYTES`].
///
/// # Errors
/// [`GzipError`] for data that is not gzip or decompresses to too much.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(GzipError::Corrupt)?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(GzipError::TooLarge);
    }
    Ok(out)
}

/// What a file's name says of it: whether it is gzipped (`.gz`), and its format from the
/// extension before that (`.fit`, `.gpx`, `.tcx`, in any case); the format is `None` for
/// another extension, and [`sniff`] may still tell it from the content.
pub fn format_of_name(name: &str) -> (Option<Format>, bool) {
    let lower = name.to_ascii_lowercase();
    let (inner, gzipped) = match lower.strip_suffix(".gz") {
        Some(inner) => (inner, true),
        None => (lower.as_str(), false),
    };
    let format = match inner.rsplit_once('.').map(|(_, ext)| ext) {
        Some("fit") => Some(Format::Fit),
        Some("gpx") => Some(Format::Gpx),
        Some("tcx") => Some(Format::Tcx),
        _ => None,
    };
    (format, gzipped)
}

/// The format of (decompressed) content whose name says none: FIT when it starts with a FIT
/// header. XML formats are not guessed: a wrong guess would give a confusing error.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    (bytes.get(8..12) == Some(b".FIT")).then_some(Format::Fit)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn names_say_format_and_compression() {
        assert_eq!(format_of_name("Ride.FIT.GZ"), (Some(Format::Fit), true));
        assert_eq!(format_of_name("course.gpx"), (Some(Format::Gpx), false));
        assert_eq!(format_of_name("a.tcx.gz"), (Some(Format::Tcx), true));
        assert_eq!(format_of_name("notes.txt"), (None, false));
        assert_eq!(sniff(b"\x0e\x10\0\0\0\0\0\0.FIT"), Some(Format::Fit));
    }

    #[test]
    fn gunzip_reads_every_member_and_refuses_what_is_not_gzip() {
        let member = |text: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text.as_bytes()).expect("in memory");
            gz.finish().expect("in memory")
        };
        let mut both = member("one ");
        both.extend(member("two"));
        assert_eq!(gunzip(&both).expect("gzip"), b"one two");
        assert!(matches!(gunzip(b"plain text"), Err(GzipError::Corrupt(_))));
    }
}
