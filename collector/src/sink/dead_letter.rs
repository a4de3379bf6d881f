//! The dead-letter file: lines a sink refused as invalid, with the reason, one JSON object
//! per line. They are counted and kept; nothing is silently dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// An append-only JSON-lines file of refused lines.
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
}

impl DeadLetters {
    /// A dead-letter file at `path`, created on first use.
    pub fn new(path: PathBuf) -> DeadLetters {
        DeadLetters { path, file: None }
    }

    /// Appends refused lines with the reason and syncs them to disk.
    ///
    /// # Errors
    /// When the file cannot be opened or written.
    pub fn write(&mut self, sink: &str, reason: &str, lines: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let mut out = Vec::new();
        for line in velometry_core::lineproto::lines(lines).filter(|l| !l.is_empty()) {
            let line = String::from_utf8_lossy(line);
            let entry = serde_json::json!({
                "time": velometry_core::time::format_rfc3339(velometry_core::time::now_nanos()),
                "sink": sink,
                "reason": reason,
                "line": line,
            });
            serde_json::to_writer(&mut out, &entry)?;
            out.push(b'\n');
        }
        file.write_all(&out)?;
        file.sync_data()
    }
}
