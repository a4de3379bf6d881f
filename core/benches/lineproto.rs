//! The line-protocol parser and encoder on a 5,000-line batch shaped like the collector's
//! traffic, each side by side with the `influxdb-line-protocol` crate doing the same work.
//!
//! `cargo bench -p velometry-core --bench lineproto`
//!
//! The batch is a quarter each `heart_rate`, `power`, four-field and six-field `gps`
//! lines, every one with two client tags and a nanosecond timestamp, as Telegraf or an
//! import sends them. On a shared machine the absolute times move from run to run; the
//! ratio to the baseline measured in the same run is the figure to compare.

mod traffic;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use influxdb_line_protocol::LineProtocolBuilder;
use velometry_core::ids::{DeviceId, RiderId};
use velometry_core::lineproto::parse::{parse_line, Value};
use velometry_core::lineproto::{encode_parts, FieldRef, Origin};

use traffic::line;

/// Lines per batch: InfluxDB's recommended batch, the collector sink's default.
const LINES: usize = 5_000;

fn batch() -> String {
    (0..LINES).map(|n| line(n) + "\n").collect()
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn parse(c: &mut Criterion) {
    let text = batch();
    let mut group = c.benchmark_group("lineproto_parse");
    group.throughput(Throughput::ElementsAndBytes { elements: LINES as u64, bytes: text.len() as u64 });
    group.bench_function("velometry parse_line", |b| {
        b.iter(|| {
            let mut fields = 0;
            for raw in black_box(&text).split('\n').filter(|l| !l.is_empty()) {
                fields += parse_line(raw).expect("valid line").fields.len();
            }
            fields
        });
    });
    group.bench_function("baseline: influxdb-line-protocol parse_lines", |b| {
        b.iter(|| {
            let mut fields = 0;
            for parsed in influxdb_line_protocol::parse_lines(black_box(&text)) {
                fields += parsed.expect("valid line").field_set.len();
            }
            fields
        });
    });
    group.finish();
}

/// A parsed line, owned, so that encoding is timed alone.
struct Parts {
    measurement: String,
    tags: Vec<(String, String)>,
    /// Name, value, and the value's text as written.
    fields: Vec<(String, f64, String)>,
    time: i64,
}

fn parts(text: &str) -> Vec<Parts> {
    text.lines()
        .map(|raw| {
            let l = parse_line(raw).expect("valid line");
            let fields = l
                .fields
                .iter()
                .map(|f| match &f.value {
                    Value::Float(v, written) => (f.key.to_string(), *v, (*written).to_owned()),
                    other => panic!("the batch holds floats only, not {other:?}"),
                })
                .collect();
            Parts {
                measurement: l.measurement.into_owned(),
                tags: l.tags.iter().map(|t| (t.key().into_owned(), t.value().into_owned())).collect(),
                fields,
                time: l.timestamp.expect("timestamped"),
            }
        })
        .collect()
}

fn encode_velometry(lines: &[Parts], origin: Origin<'_>, copy_text: bool, out: &mut Vec<u8>) {
    for p in lines {
        let fields = p.fields.iter().map(|(k, v, text)| {
            (k.as_str(), if copy_text { FieldRef::FloatText(text) } else { FieldRef::Float(*v) })
        });
        encode_parts(&p.measurement, &p.tags, origin, fields, p.time, out);
    }
}

/// The same lines through the crate's builder, with the tags the collector writes (the
/// client's and the origin's, merged and sorted once here, outside the timing).
fn encode_builder(lines: &[(&Parts, Vec<(&str, &str)>)], out: Vec<u8>) -> Vec<u8> {
    let mut builder = LineProtocolBuilder::new_with(out);
    for (p, tags) in lines {
        let mut tagged = builder.measurement(&p.measurement);
        for (k, v) in tags {
            tagged = tagged.tag(k, v);
        }
        let mut fields = p.fields.iter();
        let (k, v, _) = fields.next().expect("a field");
        let mut line = tagged.field(k, *v);
        for (k, v, _) in fields {
            line = line.field(k, *v);
        }
        builder = line.timestamp(p.time).close_line();
    }
    builder.build()
}

fn encode(c: &mut Criterion) {
    let lines = parts(&batch());
    let rider = RiderId::parse("alice").expect("valid id");
    let device = DeviceId::parse("edge530").expect("valid id");
    let origin = Origin { rider: &rider, device: &device, source: "lineproto" };
    let sorted: Vec<(&Parts, Vec<(&str, &str)>)> = lines
        .iter()
        .map(|p| {
            let mut tags: Vec<(&str, &str)> = p.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            tags.extend([("device", device.as_str()), ("rider", rider.as_str()), ("source", "lineproto")]);
            tags.sort_unstable();
            (p, tags)
        })
        .collect();

    // Both encoders must write the same text, or the comparison means nothing.
    let mut ours = Vec::new();
    encode_velometry(&lines, origin, false, &mut ours);
    let theirs = encode_builder(&sorted, Vec::new());
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "same output");

    let mut group = c.benchmark_group("lineproto_encode");
    group.throughput(Throughput::ElementsAndBytes { elements: LINES as u64, bytes: ours.len() as u64 });
    let mut out = Vec::with_capacity(ours.len() * 2);
    group.bench_function("velometry encode_parts, floats formatted", |b| {
        b.iter(|| {
            out.clear();
            encode_velometry(black_box(&lines), origin, false, &mut out);
            out.len()
        });
    });
    group.bench_function("velometry encode_parts, floats copied as written", |b| {
        b.iter(|| {
            out.clear();
            encode_velometry(black_box(&lines), origin, true, &mut out);
            out.len()
        });
    });
    group.bench_function("baseline: influxdb-line-protocol LineProtocolBuilder", |b| {
        let mut buf = Some(Vec::with_capacity(ours.len() * 2));
        b.iter(|| {
            let mut reused = buf.take().expect("buffer returned");
            reused.clear();
            let written = encode_builder(black_box(&sorted), reused);
            let len = written.len();
            buf = Some(written);
            len
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse, encode
}
criterion_main!(benches);
