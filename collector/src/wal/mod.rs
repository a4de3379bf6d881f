//! The write-ahead log: a reading is answered 2xx only once it is here, on disk.
//!
//! No crate fits: the well-known embedded logs either fsync every append (too slow for
//! 15,000 requests/s on one disk) or are unmaintained. So this is a small segment log:
//!
//! - Records are `[len: u32 LE][crc32: u32 LE][payload]`, appended to segment files named
//!   after the log sequence number (LSN, a byte offset across all segments) they start at.
//! - One writer thread takes every append that is waiting, writes them all, fsyncs once
//!   (group commit) and then answers them all. Only then does the committed LSN move.
//! - Each sink reads committed records with a [`WalReader`] of its own and, once a batch is
//!   stored, moves its own checkpoint; segments wholly behind every sink's checkpoint are
//!   deleted. The newest records are also kept in memory (a bounded tail), so a sink that
//!   keeps up never reads the disk back; one that falls behind reads the segments.
//! - At start-up every segment after the checkpoint is scanned; a torn or corrupt tail is
//!   cut off, not fatal. Everything after the checkpoint is sent again: the points carry
//!   the timestamps fixed at ingest, so InfluxDB overwrites them rather than duplicating.
//! - The unflushed bytes are bounded: past `max_bytes` an append is refused with
//!   [`AppendError::Full`] and nothing is written.
//! - A disk that is full (or failing) refuses the group with [`AppendError::Io`]: what was
//!   half written is cut off again, so nothing follows a torn record, and nobody is told
//!   their record is durable. The writer then starts a new segment, so that the old one can
//!   be deleted as soon as the sinks have stored it (a log that filled the disk itself frees
//!   it that way), and [`Wal::probe`] tries the disk every second, so the log is writable
//!   (and `/readyz` ready) again as soon as space returns, without waiting for traffic.

mod reader;
mod segment;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

pub use reader::{Batch, WalReader};
use segment::{list_segments, segment_path, RECORD_HEADER};

use crate::metrics as m;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The log holds `max_bytes` of data not yet in InfluxDB.
    #[error("the write-ahead log is full ({unflushed} of {max} bytes wait for InfluxDB); retry later")]
    Full {
        /// Unflushed bytes.
        unflushed: u64,
        /// The configured bound.
        max: u64,
    },
    /// Writing or syncing the log failed.
    #[error("the write-ahead log cannot be written: {0}")]
    Io(String),
    /// The writer thread has stopped (shutdown).
    #[error("the write-ahead log is closed")]
    Closed,
}

/// Settings of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Directory holding segments and the checkpoint.
    pub dir: PathBuf,
    /// Bound on bytes not yet flushed to the sink.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// How much of the newest log is also kept in memory for the sinks.
    pub memory_bytes: usize,
}

struct Append {
    payload: Bytes,
    reply: oneshot::Sender<Result<u64, AppendError>>,
}

/// What the writer thread is asked to do.
enum Op {
    /// Append a record.
    Append(Append),
    /// See whether a disk that failed can be written again.
    Probe,
}

/// State shared by the writer thread, the appenders and the reader.
struct Shared {
    max_bytes: u64,
    committed: watch::Sender<u64>,
    /// The lowest checkpoint of all sinks: everything before it is stored everywhere.
    flushed: AtomicU64,
    /// Each reader's checkpoint, by reader index.
    checkpoints: Mutex<Vec<u64>>,
    writable: AtomicBool,
    /// An append was refused for lack of room, and nothing has been flushed since.
    full: AtomicBool,
    /// End LSN and time of each commit not yet flushed, for the oldest-unflushed age.
    pending: Mutex<VecDeque<(u64, Instant)>>,
    /// The newest committed records: (start LSN, payload), oldest first.
    tail: Mutex<Tail>,
}

/// Committed records kept in memory for the readers, within a byte budget.
struct Tail {
    records: VecDeque<(u64, Bytes)>,
    bytes: usize,
    budget: usize,
}

impl Tail {
    fn push(&mut self, lsn: u64, payload: Bytes) {
        self.bytes += payload.len();
        self.records.push_back((lsn, payload));
        while self.bytes > self.budget {
            match self.records.pop_front() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Forgets records that end at or before `lsn`.
    fn drop_before(&mut self, lsn: u64) {
        while let Some((start, payload)) = self.records.front() {
            if start + (RECORD_HEADER + payload.len()) as u64 > lsn {
                break;
            }
            self.bytes -= payload.len();
            self.records.pop_front();
        }
    }

    /// The record starting at `lsn`, if it is still in memory.
    fn get(&self, lsn: u64) -> Option<&Bytes> {
        let i = self.records.binary_search_by_key(&lsn, |(start, _)| *start).ok()?;
        self.records.get(i).map(|(_, payload)| payload)
    }
}

impl Shared {
    fn unflushed(&self) -> u64 {
        self.committed.borrow().saturating_sub(self.flushed.load(Ordering::Acquire))
    }
}

/// The appending side of the log. Cheap to clone.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Op>,
    shared: Arc<Shared>,
}

impl Wal {
    /// Opens (recovering) or creates the log and starts its writer thread. Returns one
    /// reader per sink, in the order the names are given, each resuming after its own
    /// checkpoint.
    ///
    /// # Errors
    /// When the directory cannot be created, listed or written, or another writer (another
    /// collector given the same `--wal-dir`) holds it.
    pub fn open(options: &WalOptions, sinks: &[&'static str]) -> io::Result<(Wal, Vec<WalReader>)> {
        std::fs::create_dir_all(&options.dir)?;
        // Before recovery, which cuts files: no other writer may be appending to them.
        let held = lock_dir(&options.dir)?;
        let checkpoints: Vec<u64> = sinks.iter().map(|s| reader::read_checkpoint(&options.dir, s)).collect();
        let lowest = checkpoints.iter().copied().min().unwrap_or(0);
        let recovered = segment::recover(&options.dir, lowest)?;
        let first = recovered.start;
        let positions: Vec<u64> = checkpoints.iter().map(|c| (*c).clamp(first, recovered.end)).collect();
        let (committed, committed_rx) = watch::channel(recovered.end);
        let shared = Arc::new(Shared {
            max_bytes: options.max_bytes,
            committed,
            flushed: AtomicU64::new(recovered.start),
            checkpoints: Mutex::new(positions.clone()),
            writable: AtomicBool::new(true),
            full: AtomicBool::new(false),
            pending: Mutex::new(VecDeque::new()),
            tail: Mutex::new(Tail { records: VecDeque::new(), bytes: 0, budget: options.memory_bytes }),
        });
        if recovered.end > recovered.start {
            // Recovered data counts as pending since start-up.
            lock(&shared.pending).push_back((recovered.end, Instant::now()));
        }
        let (tx, rx) = mpsc::channel(8192);
        let writer = Writer {
            dir: options.dir.clone(),
            segment_bytes: options.segment_bytes,
            file: recovered.tail,
            segment_start: recovered.tail_start,
            end: recovered.end,
            shared: shared.clone(),
            torn: false,
            _lock: held,
        };
        std::thread::Builder::new().name("wal-writer".into()).spawn(move || writer.run(rx))?;
        let readers = sinks
            .iter()
            .zip(positions)
            .enumerate()
            .map(|(index, (sink, pos))| {
                WalReader::new(options.dir.clone(), sink, index, pos, committed_rx.clone(), shared.clone())
            })
            .collect();
        m::wal_bytes(shared.unflushed());
        Ok((Wal { tx, shared }, readers))
    }

    /// Appends one record and waits until it is on disk. Returns its end LSN.
    ///
    /// # Errors
    /// [`AppendError::Full`] when the bound would be passed; [`AppendError::Io`] when the
    /// disk fails; [`AppendError::Closed`] after shutdown.
    pub async fn append(&self, payload: Vec<u8>) -> Result<u64, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Append(Append { payload: Bytes::from(payload), reply }))
            .await
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    /// Why the log cannot take readings now, if it cannot: full (the sinks are behind), or
    /// its disk failed at the last write (full or failing).
    pub fn unready(&self) -> Option<&'static str> {
        if !self.shared.writable.load(Ordering::Acquire) {
            Some("the write-ahead log cannot be written (its disk is full or failing)")
        } else if self.shared.full.load(Ordering::Acquire) {
            Some("the write-ahead log is full (the sinks are behind or down)")
        } else {
            None
        }
    }

    /// After a failed write, asks the writer to try the disk again (a small file written,
    /// synced and removed), so that the log recovers once space returns even when nobody
    /// sends. Does nothing while the disk is fine.
    pub fn probe(&self) {
        if !self.shared.writable.load(Ordering::Acquire) {
            // Full of appends: those try the disk themselves.
            let _ = self.tx.try_send(Op::Probe);
        }
    }

    /// Bytes committed but not yet in the sink.
    pub fn unflushed_bytes(&self) -> u64 {
        self.shared.unflushed()
    }

    /// The position after the last committed record.
    pub fn committed_lsn(&self) -> u64 {
        *self.shared.committed.borrow()
    }

    /// The position below which every sink has stored (or dead-lettered) every record.
    pub fn flushed_lsn(&self) -> u64 {
        self.shared.flushed.load(Ordering::Acquire)
    }

    /// Age of the oldest commit not yet in the sink.
    pub fn oldest_unflushed_age(&self) -> Duration {
        lock(&self.shared.pending).front().map(|(_, t)| t.elapsed()).unwrap_or_default()
    }
}

/// How long opening the log waits for another writer to let it go: one of this process that
/// is finishing its last write (a log closed and opened again), never a second collector.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Takes the log's lock file: one writer at a time. Two collectors given the same
/// `--wal-dir` would interleave segments and lose acknowledged readings, so the second one
/// does not start. The writer thread holds the lock until it has finished its last write;
/// the kernel lets it go when the process dies.
fn lock_dir(dir: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::other(format!(
                    "another collector is using the write-ahead log in {}: give each collector a --wal-dir of its own",
                    dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock leaves only timestamps behind: still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One record of a group commit: header, payload, who waits for it, and its end LSN.
type Pending = ([u8; RECORD_HEADER], Bytes, oneshot::Sender<Result<u64, AppendError>>, u64);

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    segment_start: u64,
    end: u64,
    shared: Arc<Shared>,
    /// A failed write could not be cut off again: the segment may end in a torn record, so
    /// the next record must go to a new segment.
    torn: bool,
    /// The log's lock, held for as long as this writer may write.
    _lock: File,
}

/// The size of the file a probe writes: a little more than one small group.
const PROBE_BYTES: usize = 64 << 10;

/// How much one group commit may hold, so that one fsync never waits on too much.
const GROUP_BYTES: usize = 16 << 20;

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        let mut group: Vec<Pending> = Vec::new();
        while let Some(op) = rx.blocking_recv() {
            let first = match op {
                Op::Append(append) => append,
                Op::Probe => {
                    self.probe();
                    continue;
                }
            };
            let mut next = Some(first);
            let flushed = self.shared.flushed.load(Ordering::Acquire);
            let mut end = self.end;
            let mut bytes = 0;
            while let Some(Append { payload, reply }) = next.take() {
                let len = (RECORD_HEADER + payload.len()) as u64;
                let unflushed = end.saturating_sub(flushed);
                if unflushed + len > self.shared.max_bytes {
                    self.shared.full.store(true, Ordering::Release);
                    let _ = reply.send(Err(AppendError::Full { unflushed, max: self.shared.max_bytes }));
                } else {
                    end += len;
                    bytes += len as usize;
                    group.push((segment::record_header(&payload), payload, reply, end));
                }
                if bytes < GROUP_BYTES {
                    // A probe among appends is answered by writing them.
                    next = std::iter::from_fn(|| rx.try_recv().ok()).find_map(|op| {
                        if let Op::Append(a) = op {
                            Some(a)
                        } else {
                            None
                        }
                    });
                }
            }
            if group.is_empty() {
                continue;
            }
            if self.torn {
                if let Err(e) = self.rotate() {
                    self.failed(&e);
                    for (_, _, reply, _) in group.drain(..) {
                        let _ = reply.send(Err(AppendError::Io(e.to_string())));
                    }
                    continue;
                }
            }
            let started = Instant::now();
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(group.len() * 2);
            for (header, payload, _, _) in &group {
                slices.push(IoSlice::new(header));
                slices.push(IoSlice::new(payload));
            }
            let written = self.write_group(&mut slices);
            match written {
                Ok(()) => {
                    m::wal_fsync(started.elapsed());
                    self.end = end;
                    self.recovered();
                    lock(&self.shared.pending).push_back((end, Instant::now()));
                    {
                        let mut tail = lock(&self.shared.tail);
                        for (header, payload, _, record_end) in &group {
                            let start = record_end - (header.len() + payload.len()) as u64;
                            tail.push(start, payload.clone());
                        }
                    }
                    self.shared.committed.send_replace(end);
                    m::wal_bytes(self.shared.unflushed());
                    for (_, _, reply, lsn) in group.drain(..) {
                        let _ = reply.send(Ok(lsn));
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    for (_, _, reply, _) in group.drain(..) {
                        let _ = reply.send(Err(AppendError::Io(e.to_string())));
                    }
                    // A new segment, so that this one can be deleted once the sinks have
                    // stored it: a log that filled the disk itself frees it that way.
                    if self.end > self.segment_start || self.torn {
                        if let Err(e) = self.rotate() {
                            tracing::warn!(error = %e, "Cannot start a new WAL segment yet.");
                        }
                    }
                    continue;
                }
            }
            if self.end - self.segment_start >= self.segment_bytes {
                if let Err(e) = self.rotate() {
                    self.failed(&e);
                }
            }
        }
        // Every sender is gone: shutdown. Data is already synced.
    }

    fn write_group(&mut self, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        let len_before = self.end - self.segment_start;
        let mut result = Ok(());
        while !slices.is_empty() {
            match self.file.write_vectored(slices) {
                Ok(0) => {
                    result = Err(io::Error::new(io::ErrorKind::WriteZero, "the disk took no bytes"));
                    break;
                }
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let result = result.and_then(|()| self.file.sync_data());
        if result.is_err() {
            // Leave no half-written record behind for the next group to follow; if even that
            // fails, the next group goes to a new segment.
            let cut = self.file.set_len(len_before).and_then(|()| self.file.sync_data());
            self.torn |= cut.is_err();
            let _ = segment::seek_end(&mut self.file);
        }
        result
    }

    /// Starts a new segment at the end of the log.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = segment::create(&self.dir, self.end)?;
        self.segment_start = self.end;
        self.torn = false;
        Ok(())
    }

    /// Writes, syncs and removes a small file beside the segments: whether the disk takes
    /// data again. On success the log is writable again.
    fn probe(&mut self) {
        if self.shared.writable.load(Ordering::Acquire) {
            return;
        }
        let path = self.dir.join("probe.tmp");
        let written = File::create(&path).and_then(|mut f| {
            f.write_all(&[0u8; PROBE_BYTES])?;
            f.sync_data()
        });
        let _ = std::fs::remove_file(&path);
        let ready = written.and_then(|()| if self.torn { self.rotate() } else { Ok(()) });
        if ready.is_ok() {
            self.recovered();
        }
    }

    /// The disk refused a write: refuse readings until it takes them again (logged once).
    fn failed(&self, e: &io::Error) {
        if self.shared.writable.swap(false, Ordering::AcqRel) {
            tracing::error!(error = %e, dir = %self.dir.display(),
                "Cannot write the WAL (is the disk full?); refusing readings with 503 until it can, nothing acknowledged is lost.");
        }
    }

    /// A write or a probe succeeded.
    fn recovered(&self) {
        if !self.shared.writable.swap(true, Ordering::AcqRel) {
            tracing::info!(dir = %self.dir.display(), "The WAL can be written again; taking readings.");
        }
    }
}

/// The segment files of a log directory, oldest first (for tests and tools).
///
/// # Errors
/// When the directory cannot be listed.
pub fn segments(dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(list_segments(dir)?.into_iter().map(|start| segment_path(dir, start)).collect())
}

#[cfg(test)]
mod tests;
