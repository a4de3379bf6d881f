//! Reading committed records for the sink, and moving the checkpoint once they are stored.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use super::segment::{frame, list_segments, segment_path, Frame, RECORD_HEADER};
use super::{lock, Shared};
use crate::metrics as m;

/// How much of a segment one read takes.
const CHUNK: usize = 4 << 20;

fn checkpoint_path(dir: &std::path::Path, sink: &str) -> PathBuf {
    dir.join(format!("checkpoint.{sink}"))
}

/// Reads a sink's checkpoint; a missing or unreadable one means "send everything the log
/// still holds", which is safe because points are idempotent.
pub fn read_checkpoint(dir: &std::path::Path, sink: &str) -> u64 {
    std::fs::read_to_string(checkpoint_path(dir, sink)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Records read from the log, concatenated: line protocol ready to send.
#[derive(Debug, Default)]
pub struct Batch {
    /// The payloads, back to back.
    pub body: Bytes,
    /// Number of lines in `body`.
    pub lines: usize,
    /// LSN after the last record: the checkpoint once the batch is stored.
    pub end: u64,
}

/// The sink's cursor over the log.
pub struct WalReader {
    dir: PathBuf,
    sink: &'static str,
    index: usize,
    pos: u64,
    committed: watch::Receiver<u64>,
    shared: Arc<Shared>,
    current: Option<(u64, File)>,
    /// The last chunk read from disk, and the LSN of its first byte: the records of one
    /// chunk serve several batches.
    buf: Vec<u8>,
    buf_lsn: u64,
    /// The checkpoint in memory, and when it was last written to disk.
    checkpoint: u64,
    persisted: Option<Instant>,
}

/// How often a moving checkpoint is written to disk. Losing the last ones to a crash only
/// means sending those batches again, which overwrites the same points.
const PERSIST_EVERY: Duration = Duration::from_millis(250);

impl WalReader {
    pub(super) fn new(
        dir: PathBuf,
        sink: &'static str,
        index: usize,
        pos: u64,
        committed: watch::Receiver<u64>,
        shared: Arc<Shared>,
    ) -> Self {
        WalReader {
            dir,
            sink,
            index,
            pos,
            committed,
            shared,
            current: None,
            buf: Vec::new(),
            buf_lsn: 0,
            checkpoint: pos,
            persisted: None,
        }
    }

    /// Whether every committed record has been read.
    pub fn caught_up(&self) -> bool {
        self.pos >= *self.committed.borrow()
    }

    /// Waits until there are committed records past the cursor.
    pub async fn wait(&mut self) {
        let pos = self.pos;
        // An error means the writer is gone; then there is nothing more to wait for.
        let _ = self.committed.wait_for(|&end| end > pos).await;
    }

    /// Reads committed records until `max_lines` lines or `max_bytes` bytes are collected,
    /// or the committed end is reached. Returns an empty batch when caught up.
    ///
    /// # Errors
    /// When a segment cannot be read.
    pub fn read(&mut self, max_lines: usize, max_bytes: usize) -> io::Result<Batch> {
        let committed = *self.committed.borrow();
        let mut parts: Vec<Bytes> = Vec::new();
        let (mut lines, mut bytes) = (0, 0);
        while self.pos < committed && lines < max_lines && bytes < max_bytes {
            if let Some(payload) = lock(&self.shared.tail).get(self.pos).cloned() {
                // Still in memory: no disk read, no copy.
                lines += memchr::memchr_iter(b'\n', &payload).count();
                bytes += payload.len();
                self.pos += (RECORD_HEADER + payload.len()) as u64;
                parts.push(payload);
                continue;
            }
            let (got_lines, got_bytes) =
                self.read_disk(committed, max_lines - lines, max_bytes - bytes, &mut parts)?;
            if got_bytes == 0 {
                break;
            }
            lines += got_lines;
            bytes += got_bytes;
        }
        let body = match parts.len() {
            0 => Bytes::new(),
            1 => parts.pop().unwrap_or_default(),
            _ => {
                let mut body = BytesMut::with_capacity(bytes);
                for part in parts {
                    body.extend_from_slice(&part);
                }
                body.freeze()
            }
        };
        Ok(Batch { body, lines, end: self.pos })
    }

    /// Reads records at the cursor from disk (through the chunk last read, while it holds
    /// them); returns the lines and bytes added, (0, 0) when the cursor is at the committed end.
    fn read_disk(
        &mut self,
        committed: u64,
        max_lines: usize,
        max_bytes: usize,
        parts: &mut Vec<Bytes>,
    ) -> io::Result<(usize, usize)> {
        let (used, lines, bytes) = self.take_buffered(max_lines, max_bytes, parts);
        if used > 0 {
            return Ok((lines, bytes));
        }
        let start = self.fill(committed)?;
        let (used, lines, bytes) = self.take_buffered(max_lines, max_bytes, parts);
        if used == 0 {
            // Nothing more in this segment: the next one starts further on (after a cut).
            if let Some(next) = self.next_segment_start(start)?.filter(|&next| next <= committed) {
                self.pos = next;
                return self.read_disk(committed, max_lines, max_bytes, parts);
            }
        }
        Ok((lines, bytes))
    }

    /// Takes the whole records of the buffered chunk at the cursor, as one part; returns the
    /// bytes the cursor moved, and the lines and payload bytes taken.
    fn take_buffered(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
        parts: &mut Vec<Bytes>,
    ) -> (usize, usize, usize) {
        let Some(skip) = self.pos.checked_sub(self.buf_lsn).filter(|&skip| skip < self.buf.len() as u64)
        else {
            return (0, 0, 0);
        };
        let skip = skip as usize;
        let (mut used, mut lines, mut bytes) = (skip, 0, 0);
        let mut part = BytesMut::new();
        while used < self.buf.len() && lines < max_lines && bytes < max_bytes {
            match frame(&self.buf[used..]) {
                Frame::Record { payload, len } => {
                    let payload = &self.buf[used + payload.start..used + payload.end];
                    lines += memchr::memchr_iter(b'\n', payload).count();
                    bytes += payload.len();
                    part.extend_from_slice(payload);
                    used += len;
                }
                Frame::Incomplete(_) | Frame::Corrupt => break,
            }
        }
        if !part.is_empty() {
            parts.push(part.freeze());
        }
        self.pos += (used - skip) as u64;
        (used - skip, lines, bytes)
    }

    /// Reads the chunk of the segment holding the cursor that starts at the cursor (a
    /// record larger than a chunk whole); returns the segment's start.
    fn fill(&mut self, committed: u64) -> io::Result<u64> {
        let start = self.open_segment_for(self.pos)?;
        let file = match &self.current {
            Some((_, file)) => file,
            None => return Err(io::Error::other("no WAL segment open")),
        };
        let offset = self.pos - start;
        let want = (committed - self.pos).min(CHUNK as u64) as usize;
        self.buf.clear();
        self.buf.resize(want, 0);
        let got = read_at(file, &mut self.buf, offset)?;
        self.buf.truncate(got);
        self.buf_lsn = self.pos;
        if let Frame::Incomplete(need) = frame(&self.buf) {
            if got == want && need > want {
                self.buf.resize(need, 0);
                let got = read_at(file, &mut self.buf, offset)?;
                self.buf.truncate(got);
            }
        }
        Ok(start)
    }

    fn open_segment_for(&mut self, pos: u64) -> io::Result<u64> {
        let holds = match &self.current {
            Some((start, file)) => *start <= pos && pos < start + file.metadata()?.len(),
            None => false,
        };
        if !holds {
            let start = list_segments(&self.dir)?
                .into_iter()
                .rev()
                .find(|&s| s <= pos)
                .ok_or_else(|| io::Error::other(format!("no WAL segment holds LSN {pos}")))?;
            self.current = Some((start, File::open(segment_path(&self.dir, start))?));
        }
        self.current.as_ref().map(|(start, _)| *start).ok_or_else(|| io::Error::other("no WAL segment open"))
    }

    fn next_segment_start(&self, after: u64) -> io::Result<Option<u64>> {
        Ok(list_segments(&self.dir)?.into_iter().find(|&s| s > after))
    }

    /// Records that everything before `end` is stored in this reader's sink: moves its
    /// checkpoint, and deletes the segments wholly behind every sink's checkpoint.
    ///
    /// # Errors
    /// When the checkpoint cannot be written.
    pub fn commit(&mut self, end: u64) -> io::Result<()> {
        self.checkpoint = end;
        // Segments are deleted before the checkpoint is written: on a full disk that is what
        // makes room for it. Deleting ahead of the checkpoint on disk is safe: what is behind
        // the checkpoint in memory is stored, and after a crash the log resumes at its first
        // segment left.
        let deleted = self.release(end);
        if self.persisted.is_none_or(|t| t.elapsed() >= PERSIST_EVERY) {
            self.persist()?;
        }
        deleted
    }

    /// Moves this reader's checkpoint in memory to `end`, and deletes the segments wholly
    /// behind every sink's checkpoint.
    fn release(&mut self, end: u64) -> io::Result<()> {
        let lowest = {
            let mut checkpoints = lock(&self.shared.checkpoints);
            checkpoints[self.index] = end;
            checkpoints.iter().copied().min().unwrap_or(end)
        };
        if lowest <= self.shared.flushed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.shared.flushed.store(lowest, Ordering::Release);
        self.shared.full.store(false, Ordering::Release);
        lock(&self.shared.tail).drop_before(lowest);
        {
            let mut pending = lock(&self.shared.pending);
            while pending.front().is_some_and(|&(lsn, _)| lsn <= lowest) {
                pending.pop_front();
            }
        }
        let starts = list_segments(&self.dir)?;
        for pair in starts.windows(2) {
            // A segment is wholly flushed when the next one starts at or before `lowest`.
            if pair[1] <= lowest {
                std::fs::remove_file(segment_path(&self.dir, pair[0]))?;
            }
        }
        // Another reader may have deleted the segment this one holds open: reopen lazily.
        if self.current.as_ref().is_some_and(|(s, _)| starts.windows(2).any(|p| p[0] == *s && p[1] <= lowest))
        {
            self.current = None;
        }
        m::wal_bytes(self.shared.unflushed());
        Ok(())
    }
}

impl WalReader {
    /// Writes the checkpoint to disk now (at shutdown; otherwise [`WalReader::commit`] does
    /// it at most every 250 ms).
    ///
    /// # Errors
    /// When the checkpoint file cannot be written.
    pub fn persist(&mut self) -> io::Result<()> {
        let tmp = self.dir.join(format!("checkpoint.{}.tmp", self.sink));
        std::fs::write(&tmp, self.checkpoint.to_string())?;
        std::fs::rename(&tmp, checkpoint_path(&self.dir, self.sink))?;
        self.persisted = Some(Instant::now());
        Ok(())
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
