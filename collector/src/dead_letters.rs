//! Dead-letter files: what the collector took from a client but can never store, one JSON
//! object per line with the reason, synced to disk before anyone is told it was handled.
//! Nothing is silently dropped.
//!
//! Two kinds live in the WAL directory: `dead-letters.<sink>.jsonl`, lines a sink refused
//! as invalid, and `dead-letters.devices.jsonl`, fixes of the device protocols (OsmAnd,
//! OwnTracks) that can never be stored, which are answered 2xx so that the phone's queue
//! moves on (see `ingest::device`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// An append-only JSON-lines file.
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
}

impl DeadLetters {
    /// A dead-letter file at `path`, created on first use.
    pub fn new(path: PathBuf) -> DeadLetters {
        DeadLetters { path, file: None }
    }

    /// Appends `entries`, one line each, and syncs them to disk. Either every entry is
    /// appended or, on an error, none is left half-written.
    ///
    /// # Errors
    /// When the file cannot be opened, written or synced (a full disk).
    pub fn append(&mut self, entries: &[serde_json::Value]) -> io::Result<()> {
        let mut out = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut out, entry)?;
            out.push(b'\n');
        }
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let before = file.metadata()?.len();
        let written = file.write_all(&out).and_then(|()| file.sync_data());
        if written.is_err() {
            // A torn line would make the file unreadable from there on: cut it off, so that
            // the entries can be written whole when they are tried again.
            let _ = file.set_len(before);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dead-letters.test.jsonl");
        let mut letters = DeadLetters::new(path.clone());
        letters.append(&[serde_json::json!({"reason": "a"})]).expect("append");
        letters
            .append(&[serde_json::json!({"reason": "b"}), serde_json::json!({"reason": "c"})])
            .expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"reason\":\"a\"}\n{\"reason\":\"b\"}\n{\"reason\":\"c\"}\n");
    }
}
