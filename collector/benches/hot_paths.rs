//! The collector's hot paths alone, each side by side with a baseline in the same run:
//!
//! - `wal_append`: appending to the write-ahead log (group commit, fsync) against a plain
//!   `write_all` + `sync_data` of the same bytes, so the ratio is the log's overhead over
//!   the disk. The log has no append without fsync; a `write_all` without sync is measured
//!   too, to show how much of the time is the disk's.
//! - `json_decode`: the `/v1/readings` body decoder (JSON, then one validated `Reading` per
//!   object) against `serde_json::from_slice::<Value>` of the same bytes.
//! - `lineproto_ingest`: `/write`'s parse, validate and re-encode of a 5,000-line batch,
//!   with client tags and without, against the bare line-protocol parser on the same batch.
//!
//! `cargo bench -p velometry-collector --bench hot_paths`
//!
//! On a shared machine the absolute times move from run to run; the ratio to the baseline
//! measured in the same run is the figure to compare.

// The line-protocol batch of the core's benchmark.
#[path = "../../core/benches/traffic.rs"]
mod traffic;

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::executor::block_on;
use serde_json::Value;
use velometry_collector::field_types::FieldTypes;
use velometry_collector::ingest::json::parse_reading;
use velometry_collector::ingest::{lineproto, Ages};
use velometry_collector::wal::{Wal, WalOptions};
use velometry_core::ids::{DeviceId, RiderId};
use velometry_core::lineproto::parse::parse_line;
use velometry_core::lineproto::Origin;
use velometry_core::reading::Reading;
use velometry_core::time::Nanos;

use traffic::line;

/// 2026-11-27T10:00:00Z in nanoseconds.
const T0: Nanos = 1_795_773_600_000_000_000;
/// The clock the decoders are given: just after the batch, so every reading is on time.
const NOW: Nanos = T0 + 3_600_000_000_000;
/// Concurrent single-reading requests, as `wrk -c32` in the JSON benchmark.
const CONCURRENT: usize = 32;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn origin_ids() -> (RiderId, DeviceId) {
    (RiderId::parse("alice").expect("valid id"), DeviceId::parse("edge530").expect("valid id"))
}

const AGES: Ages = Ages { live_oldest: None, late_before: T0 - 3_600_000_000_000 };

/// What the collector appends for a 5,000-line `/write`: the batch, parsed and re-encoded.
fn lineproto_record() -> Vec<u8> {
    let text: String = (0..5_000).map(|n| line(n) + "\n").collect();
    let (rider, device) = origin_ids();
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    let request = lineproto::Request { multiplier: 1, now: NOW, origin, ages: AGES };
    let parsed = lineproto::parse(text.as_bytes(), request, &mut FieldTypes::in_memory().checker());
    assert_eq!(parsed.bad, 0, "{:?}", parsed.first_error);
    parsed.lines
}

/// What the collector appends for one single-reading JSON request.
fn reading_record(n: usize) -> Vec<u8> {
    format!(
        "heart_rate,device=phone{n},rider=r{n},source=json bpm={} {}\n",
        100 + n % 80,
        T0 + n as i64 * 1_000_000_000
    )
    .into_bytes()
}

/// Runs `iters` appends of `group` against a log in a fresh directory, and returns the
/// time spent in them alone (opening the log and copying payloads are left out).
fn time_wal(iters: u64, group: &[Vec<u8>]) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = WalOptions {
        dir: dir.path().to_owned(),
        max_bytes: u64::MAX,
        segment_bytes: 64 << 20,
        memory_bytes: 64 << 20,
    };
    let (wal, _readers) = Wal::open(&options, &["bench"]).expect("open the log");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let payloads = group.to_vec();
        let started = Instant::now();
        let appends = payloads.into_iter().map(|p| wal.append(p));
        for result in block_on(futures::future::join_all(appends)) {
            result.expect("appended");
        }
        total += started.elapsed();
    }
    total
}

/// The same bytes (headers of the log's size included) written to a plain file with one
/// `write_all`, and synced with `sync_data` when `sync` says so.
fn time_file(iters: u64, group: &[Vec<u8>], sync: bool) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = OpenOptions::new().create(true).append(true).open(dir.path().join("plain")).expect("open");
    File::open(dir.path()).and_then(|d| d.sync_all()).expect("sync the directory");
    let mut bytes = Vec::new();
    for payload in group {
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.extend_from_slice(payload);
    }
    let started = Instant::now();
    for _ in 0..iters {
        file.write_all(black_box(&bytes)).expect("write");
        if sync {
            file.sync_data().expect("sync");
        }
    }
    started.elapsed()
}

fn wal_append(c: &mut Criterion) {
    // Throughput in lines (readings), whether they come as one record or many.
    let cases = [
        ("one 5,000-line /write", 5_000, vec![lineproto_record()]),
        ("32 concurrent single readings", CONCURRENT, (0..CONCURRENT).map(reading_record).collect()),
    ];
    let mut group = c.benchmark_group("wal_append");
    for (name, lines, records) in &cases {
        let bytes: usize = records.iter().map(|r| r.len() + 8).sum();
        group.throughput(Throughput::ElementsAndBytes { elements: *lines as u64, bytes: bytes as u64 });
        group.bench_with_input(BenchmarkId::new("wal append, fsync", name), records, |b, r| {
            b.iter_custom(|iters| time_wal(iters, r));
        });
        group.bench_with_input(BenchmarkId::new("baseline: write_all + sync_data", name), records, |b, r| {
            b.iter_custom(|iters| time_file(iters, r, true))
        });
        group.bench_with_input(BenchmarkId::new("write_all, no sync", name), records, |b, r| {
            b.iter_custom(|iters| time_file(iters, r, false));
        });
    }
    group.finish();
}

/// The `/v1/readings` handler's decoding: the body as JSON, then each object validated.
fn decode_readings(body: &[u8]) -> Vec<Reading> {
    let items = match serde_json::from_slice(body).expect("valid JSON") {
        Value::Array(items) => items,
        value @ Value::Object(_) => vec![value],
        _ => panic!("expected an array"),
    };
    items.iter().map(|item| parse_reading(item, NOW).expect("valid reading")).collect()
}

/// `n` readings of a phone's two-minute upload: heart rate, power and gps fixes by turns.
fn json_body(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            let time = format!("2026-11-27T10:{:02}:{:02}Z", i / 60, i % 60);
            match i % 3 {
                0 => format!(r#"{{"metric":"heart_rate","time":"{time}","bpm":{}}}"#, 120 + i % 40),
                1 => format!(r#"{{"metric":"power","time":"{time}","watts":{}}}"#, 180 + i % 90),
                _ => format!(
                    r#"{{"metric":"gps","time":"{time}","lat":{},"lon":{},"alt":{},"speed":{}}}"#,
                    45.1 + i as f64 * 1e-5,
                    7.6 + i as f64 * 1e-5,
                    250 + i % 30,
                    8.3
                ),
            }
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json_decode(c: &mut Criterion) {
    let single = r#"[{"metric":"heart_rate","time":"2026-11-27T10:00:00Z","bpm":142}]"#.to_owned();
    let cases = [("1 reading", 1, single), ("120 readings", 120, json_body(120))];
    let mut group = c.benchmark_group("json_decode");
    for (name, count, body) in &cases {
        assert_eq!(decode_readings(body.as_bytes()).len(), *count);
        group.throughput(Throughput::ElementsAndBytes { elements: *count as u64, bytes: body.len() as u64 });
        group.bench_with_input(BenchmarkId::new("velometry /v1/readings decode", name), body, |b, body| {
            b.iter(|| decode_readings(black_box(body.as_bytes())));
        });
        group.bench_with_input(
            BenchmarkId::new("baseline: serde_json::from_slice::<Value>", name),
            body,
            |b, body| b.iter(|| serde_json::from_slice::<Value>(black_box(body.as_bytes())).expect("JSON")),
        );
    }
    group.finish();
}

fn lineproto_ingest(c: &mut Criterion) {
    let (rider, device) = origin_ids();
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    let tagged: String = (0..5_000).map(|n| line(n) + "\n").collect();
    // The same lines without client tags, as phones and most devices send them: known
    // measurements whose fields are copied as written.
    let bare: String = (0..5_000)
        .map(|n| {
            let line = line(n);
            let (series, rest) = line.split_once(' ').expect("a series key and fields");
            let measurement = series.split(',').next().unwrap_or(series);
            format!("{measurement} {rest}\n")
        })
        .collect();
    for (name, text) in [("client tags", &tagged), ("no client tags", &bare)] {
        let mut group = c.benchmark_group(format!("lineproto_ingest/{name}"));
        group.throughput(Throughput::ElementsAndBytes { elements: 5_000, bytes: text.len() as u64 });
        // The field types as a running collector has them: learned from the batch.
        let types = FieldTypes::in_memory();
        let request = lineproto::Request { multiplier: 1, now: NOW, origin, ages: AGES };
        types.check(|checker| lineproto::parse(text.as_bytes(), request, checker));
        group.bench_function("collector parse, validate, re-encode", |b| {
            b.iter(|| lineproto::parse(black_box(text).as_bytes(), request, &mut types.checker()).count);
        });
        group.bench_function("baseline: core parse_line alone", |b| {
            b.iter(|| {
                black_box(text)
                    .split('\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| parse_line(l).expect("valid line").fields.len())
                    .sum::<usize>()
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = wal_append, json_decode, lineproto_ingest
}
criterion_main!(benches);
