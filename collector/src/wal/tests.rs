use std::io::Write;

use super::*;

fn options(dir: &Path, max_bytes: u64, segment_bytes: u64) -> WalOptions {
    WalOptions { dir: dir.to_path_buf(), max_bytes, segment_bytes, memory_bytes: 1 << 20 }
}

fn open(options: &WalOptions) -> (Wal, WalReader) {
    let (wal, mut readers) = Wal::open(options, &["test"]).expect("open");
    (wal, readers.remove(0))
}

fn line(i: usize) -> Vec<u8> {
    format!("m f={i} {i}\n").into_bytes()
}

#[tokio::test]
async fn appended_records_are_read_back_in_order_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, mut reader) = open(&options(dir.path(), 1 << 20, 64));
    for i in 0..20 {
        wal.append(line(i)).await.expect("append");
    }
    assert!(segments(dir.path()).expect("list").len() > 1, "small segments rotate");
    let batch = reader.read(1000, 1 << 20).expect("read");
    let expected: Vec<u8> = (0..20).flat_map(line).collect();
    assert_eq!(batch.body, expected);
    assert_eq!(batch.lines, 20);
    assert!(reader.caught_up());
}

#[tokio::test]
async fn batches_stop_at_the_line_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, mut reader) = open(&options(dir.path(), 1 << 20, 1 << 20));
    for i in 0..10 {
        wal.append(line(i)).await.expect("append");
    }
    assert_eq!(reader.read(4, 1 << 20).expect("read").lines, 4);
    assert_eq!(reader.read(4, 1 << 20).expect("read").lines, 4);
    assert_eq!(reader.read(4, 1 << 20).expect("read").lines, 2);
    assert_eq!(reader.read(4, 1 << 20).expect("read").lines, 0);
}

#[tokio::test]
async fn a_restart_resumes_after_the_checkpoint_and_drops_flushed_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (wal, mut reader) = open(&options(dir.path(), 1 << 20, 64));
        for i in 0..10 {
            wal.append(line(i)).await.expect("append");
        }
        let first = reader.read(6, 1 << 20).expect("read");
        reader.commit(first.end).expect("commit");
        reader.persist().expect("persist");
        assert_eq!(wal.unflushed_bytes(), (reader.read(100, 1 << 20).expect("read").end - first.end));
    }
    let (wal, mut reader) = open(&options(dir.path(), 1 << 20, 64));
    let rest = reader.read(100, 1 << 20).expect("read");
    assert_eq!(rest.body, (6..10).flat_map(line).collect::<Vec<u8>>());
    wal.append(line(10)).await.expect("append after reopen");
    assert_eq!(reader.read(100, 1 << 20).expect("read").body, line(10));
}

#[tokio::test]
async fn a_torn_tail_is_cut_at_start_up_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (wal, _reader) = open(&options(dir.path(), 1 << 20, 1 << 20));
        for i in 0..3 {
            wal.append(line(i)).await.expect("append");
        }
    }
    let last = segments(dir.path()).expect("list").pop().expect("a segment");
    let mut file = std::fs::OpenOptions::new().append(true).open(&last).expect("open segment");
    // Half a record: a header promising 100 bytes, then 5 of them.
    file.write_all(&100u32.to_le_bytes()).expect("write");
    file.write_all(&[0, 0, 0, 0, 1, 2, 3, 4, 5]).expect("write");
    drop(file);
    let (wal, mut reader) = open(&options(dir.path(), 1 << 20, 1 << 20));
    wal.append(line(3)).await.expect("append");
    assert_eq!(reader.read(100, 1 << 20).expect("read").body, (0..4).flat_map(line).collect::<Vec<u8>>());
}

#[tokio::test]
async fn a_full_log_refuses_and_keeps_nothing_of_the_refused_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, mut reader) = open(&options(dir.path(), 40, 1 << 20));
    wal.append(line(1)).await.expect("first fits");
    let err = wal.append(vec![b'x'; 64]).await.expect_err("too much");
    assert!(matches!(err, AppendError::Full { .. }), "{err}");
    assert!(wal.unready().is_some(), "a full log is not ready");
    let batch = reader.read(100, 1 << 20).expect("read");
    assert_eq!(batch.body, line(1));
    reader.commit(batch.end).expect("commit");
    assert!(wal.unready().is_none());
    wal.append(line(2)).await.expect("room again after the flush");
}

#[tokio::test]
async fn segments_are_kept_until_every_sink_has_stored_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(dir.path(), 1 << 20, 64);
    {
        let (wal, mut readers) = Wal::open(&opts, &["fast", "slow"]).expect("open");
        for i in 0..10 {
            wal.append(line(i)).await.expect("append");
        }
        let all = readers[0].read(100, 1 << 20).expect("read");
        readers[0].commit(all.end).expect("commit");
        assert!(wal.unflushed_bytes() > 0, "the slow sink has stored nothing yet");
        let part = readers[1].read(3, 1 << 20).expect("read");
        readers[1].commit(part.end).expect("commit");
        readers[0].persist().expect("persist");
        readers[1].persist().expect("persist");
    }
    let (_wal, mut readers) = Wal::open(&opts, &["fast", "slow"]).expect("reopen");
    assert_eq!(readers[0].read(100, 1 << 20).expect("read").lines, 0, "fast resumes at its own checkpoint");
    assert_eq!(
        readers[1].read(100, 1 << 20).expect("read").body,
        (3..10).flat_map(line).collect::<Vec<u8>>()
    );
}

/// Everything the reader has yet to read, `max_lines` lines a batch.
fn read_to_end(reader: &mut WalReader, max_lines: usize) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let batch = reader.read(max_lines, 1 << 20).expect("read");
        if batch.lines == 0 {
            return body;
        }
        body.extend_from_slice(&batch.body);
    }
}

#[tokio::test]
async fn a_reader_behind_the_memory_tail_reads_the_disk_and_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions { memory_bytes: 40, ..options(dir.path(), 1 << 20, 100) };
    let (wal, mut reader) = open(&opts);
    for i in 0..30 {
        wal.append(line(i)).await.expect("append");
    }
    assert_eq!(read_to_end(&mut reader, 7), (0..30).flat_map(line).collect::<Vec<u8>>());
}

#[tokio::test]
async fn a_reader_on_disk_sees_records_appended_after_its_last_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Segments larger than everything written: the reads share one chunk of one segment.
    let opts = WalOptions { memory_bytes: 40, ..options(dir.path(), 1 << 20, 1 << 16) };
    let (wal, mut reader) = open(&opts);
    let mut body = Vec::new();
    for round in 0..5 {
        for i in 0..10 {
            wal.append(line(round * 10 + i)).await.expect("append");
        }
        // Three lines at a time: the chunk read for the first batch serves the next ones,
        // and the last read of a round ends where the log ended when the chunk was read.
        body.extend(read_to_end(&mut reader, 3));
    }
    assert_eq!(body, (0..50).flat_map(line).collect::<Vec<u8>>());
}

/// Found by the `wal_segments` fuzz target: a log closed right after an append, whose writer
/// thread was still starting the next segment, and opened again at once, had two writers;
/// their segments overlapped and a record appended after the reopening was lost. A log now
/// has one writer at a time: opening waits for the last one to let go, and a second
/// collector on the same folder is refused.
#[tokio::test]
async fn a_second_writer_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_wal, _reader) = open(&options(dir.path(), 1 << 20, 1 << 20));
    let refused = Wal::open(&options(dir.path(), 1 << 20, 1 << 20), &["test"]).err().expect("refused");
    assert!(refused.to_string().contains("--wal-dir of its own"), "{refused}");
}

/// A log closed right after an append and opened again at once, fifty times: the reopened
/// log waits for the last writer, and every record is read back once, in order.
#[tokio::test]
async fn a_log_closed_and_opened_at_once_keeps_what_is_appended_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Segments so small that every append starts a new one, after its answer.
    let options = options(dir.path(), 1 << 20, 8);
    for round in 0..50 {
        let (wal, _) = open(&options);
        wal.append(line(round)).await.expect("append");
    }
    let (_, mut reader) = open(&options);
    let body = reader.read(1000, 1 << 20).expect("read").body;
    assert_eq!(body, (0..50).flat_map(line).collect::<Vec<u8>>());
}
