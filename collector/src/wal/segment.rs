//! Segment files: naming, record framing, and recovery at start-up.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes before each payload: length and CRC-32.
pub const RECORD_HEADER: usize = 8;
/// No single record may be larger (a request body is far smaller).
pub const MAX_RECORD: usize = 256 << 20;

const SUFFIX: &str = ".wal";

pub fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}{SUFFIX}"))
}

/// Start LSNs of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut starts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(start) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)).and_then(|n| n.parse().ok()) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// The header written before a payload: its length and CRC-32.
pub fn record_header(payload: &[u8]) -> [u8; RECORD_HEADER] {
    let mut header = [0u8; RECORD_HEADER];
    // Request bodies are capped far below 4 GiB, so the length fits.
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// The outcome of reading one record header.
pub enum Frame {
    /// A whole, valid record: its payload range and total length.
    Record { payload: std::ops::Range<usize>, len: usize },
    /// The buffer ends inside the record, which needs this many bytes in all.
    Incomplete(usize),
    /// A bad length or checksum: the log ends here.
    Corrupt,
}

/// Reads the record starting at `buf[0]`.
pub fn frame(buf: &[u8]) -> Frame {
    if buf.len() < RECORD_HEADER {
        return Frame::Incomplete(RECORD_HEADER);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len > MAX_RECORD {
        return Frame::Corrupt;
    }
    let total = RECORD_HEADER + len;
    if buf.len() < total {
        return Frame::Incomplete(total);
    }
    let payload = RECORD_HEADER..total;
    if crc32fast::hash(&buf[payload.clone()]) != crc {
        return Frame::Corrupt;
    }
    Frame::Record { payload, len: total }
}

pub fn create(dir: &Path, start: u64) -> io::Result<File> {
    let file = OpenOptions::new().create(true).append(true).open(segment_path(dir, start))?;
    // The new name must survive a crash too.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

pub fn seek_end(file: &mut File) -> io::Result<u64> {
    file.seek(SeekFrom::End(0))
}

/// What recovery found.
pub struct Recovered {
    /// LSN of the first record not yet flushed.
    pub start: u64,
    /// LSN after the last valid record.
    pub end: u64,
    /// The segment to append to, and its start.
    pub tail: File,
    pub tail_start: u64,
}

/// Drops flushed segments, cuts torn tails, and opens the last segment for appending.
pub fn recover(dir: &Path, checkpoint: u64) -> io::Result<Recovered> {
    let starts = list_segments(dir)?;
    let mut kept = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let path = segment_path(dir, start);
        let len = std::fs::metadata(&path)?.len();
        let is_last = i + 1 == starts.len();
        if start + len <= checkpoint && !is_last {
            std::fs::remove_file(&path)?;
            continue;
        }
        let valid = valid_length(&path)?;
        if valid < len {
            tracing::warn!(
                segment = %path.display(),
                kept_bytes = valid,
                cut_bytes = len - valid,
                "Cut a torn or corrupt tail off a WAL segment (a write interrupted by a crash)."
            );
            OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
        }
        kept.push((start, valid));
    }
    let (start, end, tail, tail_start) = match (kept.first(), kept.last()) {
        (Some(&(first, _)), Some(&(last, valid))) => {
            let end = last + valid;
            let mut file = OpenOptions::new().append(true).open(segment_path(dir, last))?;
            seek_end(&mut file)?;
            (checkpoint.clamp(first, end), end, file, last)
        }
        _ => (checkpoint, checkpoint, create(dir, checkpoint)?, checkpoint),
    };
    Ok(Recovered { start, end, tail, tail_start })
}

fn valid_length(path: &Path) -> io::Result<u64> {
    let mut buf = Vec::new();
    File::open(path)?.read_to_end(&mut buf)?;
    let mut pos = 0;
    while pos < buf.len() {
        match frame(&buf[pos..]) {
            Frame::Record { len, .. } => pos += len,
            Frame::Incomplete(_) | Frame::Corrupt => break,
        }
    }
    Ok(pos as u64)
}
