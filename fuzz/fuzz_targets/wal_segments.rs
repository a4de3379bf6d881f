//! The write-ahead log's recovery and reader on damaged segments. Records are appended
//! through the real log (small segments, so there are several), then bytes of the segment
//! files are flipped and files cut short, as a crash or a failing disk would leave them; the
//! log is opened again and read to its end. A damaged record must be cut, never misread:
//! every line read back is one that was written, in order, once; every record wholly
//! before the first damage is read back; and the log takes and returns new records after.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use velometry_collector::wal::{Wal, WalOptions};

/// Bytes of record header before each payload (length and CRC-32).
const HEADER: u64 = 8;

fn options(dir: &Path) -> WalOptions {
    // No records kept in memory: every read after the reopening comes from the disk.
    WalOptions { dir: dir.to_owned(), max_bytes: 1 << 30, segment_bytes: 256, memory_bytes: 0 }
}

/// The segment files, by their start LSN (their name).
fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .expect("the WAL folder")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let start = path.file_name()?.to_str()?.strip_suffix(".wal")?.parse().ok()?;
            Some((start, path))
        })
        .collect();
    found.sort();
    found
}

/// Every line the log holds, read to its end by a fresh reader.
fn read_all(dir: &Path) -> (Wal, Vec<String>) {
    let (wal, mut readers) = Wal::open(&options(dir), &["fuzz"]).expect("the log opens after damage");
    let reader = &mut readers[0];
    let mut text = Vec::new();
    while !reader.caught_up() {
        let batch = reader.read(usize::MAX, usize::MAX).expect("the log reads after damage");
        if batch.body.is_empty() {
            break;
        }
        text.extend_from_slice(&batch.body);
    }
    let text = String::from_utf8(text).expect("only written text is read back");
    (wal, text.lines().map(str::to_owned).collect())
}

fuzz_target!(|data: &[u8]| {
    // The first bytes say what to damage; the rest are the records' contents.
    let Some((&damages, rest)) = data.split_first() else { return };
    let damages = usize::from(damages % 4);
    let (plan, contents) = rest.split_at(rest.len().min(damages * 4));
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: Vec<String> = contents
        .chunks(24)
        .enumerate()
        .map(|(i, chunk)| format!("r{i} {}", chunk.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        .collect();
    if lines.is_empty() {
        return;
    }
    {
        let (wal, _) = Wal::open(&options(dir.path()), &["fuzz"]).expect("a new log");
        for line in &lines {
            futures::executor::block_on(wal.append(format!("{line}\n").into_bytes())).expect("append");
        }
    }
    // Where each record starts, as an LSN.
    let mut starts = Vec::with_capacity(lines.len());
    let mut lsn = 0;
    for line in &lines {
        starts.push(lsn);
        lsn += HEADER + line.len() as u64 + 1;
    }
    let files = segments(dir.path());
    let mut first_damage = u64::MAX;
    for damage in plan.chunks_exact(4) {
        let (start, path) = &files[usize::from(damage[0]) % files.len()];
        let len = std::fs::metadata(path).expect("segment").len();
        if len == 0 {
            continue;
        }
        let at = u64::from(u16::from_le_bytes([damage[1], damage[2]])) % len;
        if damage[3] == 0 {
            std::fs::OpenOptions::new().write(true).open(path).expect("segment").set_len(at).expect("cut");
        } else {
            let mut bytes = std::fs::read(path).expect("segment");
            bytes[at as usize] ^= damage[3];
            std::fs::write(path, bytes).expect("segment");
        }
        first_damage = first_damage.min(start + at);
    }

    let (wal, read) = read_all(dir.path());
    let mut last = None;
    for line in &read {
        let i: usize = line
            .strip_prefix('r')
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("read back a line never written: {line:?}"));
        assert_eq!(lines.get(i), Some(line), "record {i} was misread");
        assert!(last.is_none_or(|l| l < i), "record {i} read out of order or twice");
        last = Some(i);
    }
    for (i, line) in lines.iter().enumerate() {
        let end = starts[i] + HEADER + line.len() as u64 + 1;
        if end <= first_damage {
            assert!(read.contains(line), "record {i}, before any damage, was lost");
        }
    }
    // The log goes on: a record appended now is read after everything kept.
    futures::executor::block_on(wal.append(b"after\n".to_vec())).expect("append after recovery");
    drop(wal);
    let (_, again) = read_all(dir.path());
    assert_eq!(again.last().map(String::as_str), Some("after"), "{again:?}");
    assert_eq!(&again[..again.len() - 1], &read[..], "the kept records stay as they were");
});
