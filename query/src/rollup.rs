//! The rollup tiers: per rider, measurement and numeric field, one row per minute and one per
//! hour holding the window's count, sum, mean, minimum, maximum, first and last, with the
//! times of the last four. They are computed here and written back as line protocol, because
//! InfluxDB 2.x and 3.x have neither continuous queries nor `SELECT INTO`.
//!
//! A background job rolls up every complete minute up to now, remembering how far it got
//! (the watermark) in InfluxDB itself, so a restart resumes where it stopped and replicas
//! share it. Each cycle also recomputes the last `resettle` of minutes, which catches
//! readings that reach InfluxDB a little late (a collector draining its log after a
//! restart); the hours those minutes belong to are merged again from the minute tier, so a
//! cycle reads only `resettle` plus one interval of raw readings. Readings that are late by more — a ride file imported months later, a device
//! that syncs after a day offline — are announced by the collector with a `velometry_late`
//! marker naming the rider, the measurement and the time range; the job recomputes those
//! windows in its next cycle.
//!
//! Because the times of the extremes are kept, a chart drawn from a tier is the chart the
//! raw points give (see [`crate::downsample`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;
use velometry_core::reading::Metric;
use velometry_core::time::now_nanos;

use crate::downsample::{regroup, windows, Point, Window};
use crate::influx::{ident, literal, Cell, Influx, InfluxError, Series};
use crate::metrics as m;

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The measurement holding the job's progress.
pub const STATE_MEASUREMENT: &str = "velometry_rollup_state";
/// The measurement where the collector announces late readings.
pub const LATE_MEASUREMENT: &str = "velometry_late";

/// A rollup tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Its name, the suffix of its measurements (`heart_rate_1m`).
    pub name: &'static str,
    /// The width of its windows, in nanoseconds.
    pub width: i64,
}

/// The tiers, finest first.
pub const TIERS: [Tier; 2] = [Tier { name: "1m", width: MINUTE }, Tier { name: "1h", width: HOUR }];

impl Tier {
    /// The tier called `name`.
    pub fn named(name: &str) -> Option<Tier> {
        TIERS.into_iter().find(|t| t.name == name)
    }

    /// The measurement holding this tier of `metric`.
    pub fn measurement(self, metric: Metric) -> String {
        format!("{}_{}", metric.name(), self.name)
    }
}

/// The aggregates stored per field, as field-name suffixes.
const AGGREGATES: [&str; 11] = [
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "first",
    "last",
    "min_time",
    "max_time",
    "first_time",
    "last_time",
];

/// Appends the line of one window of `field` (one line per window and field; InfluxDB
/// merges the fields of lines with the same series and time).
fn encode(measurement: &str, rider: &str, field: &str, w: &Window, out: &mut Vec<u8>) {
    let mut f = ryu::Buffer::new();
    let mut line = String::with_capacity(256);
    let _ = write!(line, "{measurement},rider={rider} {field}_count={}i", w.count);
    for (suffix, value) in [
        ("sum", w.sum),
        ("mean", w.mean()),
        ("min", w.min.1),
        ("max", w.max.1),
        ("first", w.first.1),
        ("last", w.last.1),
    ] {
        let _ = write!(line, ",{field}_{suffix}={}", f.format(value));
    }
    for (suffix, p) in
        [("min_time", w.min), ("max_time", w.max), ("first_time", w.first), ("last_time", w.last)]
    {
        let _ = write!(line, ",{field}_{suffix}={}i", p.0);
    }
    let _ = writeln!(line, " {}", w.start);
    out.extend_from_slice(line.as_bytes());
}

/// The columns to select to read back the windows of `field`.
pub fn columns(field: &str) -> String {
    AGGREGATES.iter().map(|a| ident(&format!("{field}_{a}"))).collect::<Vec<_>>().join(",")
}

/// The windows of `field` in an answer holding its aggregate columns (a `SELECT` of
/// [`columns`], or of `*`), per series in order; rows missing an aggregate are skipped.
pub fn decode(series: &[Series], field: &str) -> Vec<Window> {
    let mut out = Vec::new();
    for s in series {
        let Some(at) =
            AGGREGATES.iter().map(|a| s.column(&format!("{field}_{a}"))).collect::<Option<Vec<usize>>>()
        else {
            continue;
        };
        for row in &s.values {
            let cell = |i: usize| row.get(at[i]).unwrap_or(&Cell::Null);
            let (Some(start), Some(count)) = (row.first().and_then(Cell::as_i64), cell(0).as_i64()) else {
                continue;
            };
            let value = |i: usize| cell(i).as_f64();
            let time = |i: usize| cell(i).as_i64();
            let (Some(sum), Some(min), Some(max), Some(first), Some(last)) =
                (value(1), value(3), value(4), value(5), value(6))
            else {
                continue;
            };
            let (Some(tmin), Some(tmax), Some(tfirst), Some(tlast)) = (time(7), time(8), time(9), time(10))
            else {
                continue;
            };
            out.push(Window {
                start,
                count: count.max(0) as u64,
                sum,
                first: (tfirst, first),
                last: (tlast, last),
                min: (tmin, min),
                max: (tmax, max),
            });
        }
    }
    out
}

/// How the job runs.
#[derive(Debug, Clone, Copy)]
pub struct RollupSettings {
    /// Time between cycles.
    pub interval: Duration,
    /// A minute is rolled up once it ended this long ago.
    pub settle: Duration,
    /// Every cycle recomputes this much before the watermark.
    pub resettle: Duration,
    /// Late markers up to this old (by the time the collector accepted the readings) are
    /// looked at, for collectors that deliver them late.
    pub late_lookback: Duration,
    /// Whether this replica computes rollups; if not, it only follows the watermark.
    pub enabled: bool,
}

/// How far the tiers are complete, shared with the request handlers: every window that ends
/// at or before the watermark holds all its readings (late ones up to a cycle later).
#[derive(Debug, Clone, Default)]
pub struct Watermark(Arc<AtomicI64>);

impl Watermark {
    /// The watermark (ns), or 0 before the first cycle.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, ns: i64) {
        self.0.store(ns, Ordering::Release);
    }
}

/// The rollup job.
pub struct Rollups {
    influx: Influx,
    settings: RollupSettings,
    watermark: Watermark,
    late_cursor: i64,
    late_seen: HashSet<(i64, String, String)>,
}

impl Rollups {
    /// A job writing through `influx`, publishing its progress in `watermark`.
    pub fn new(influx: Influx, settings: RollupSettings, watermark: Watermark) -> Rollups {
        Rollups { influx, settings, watermark, late_cursor: 0, late_seen: HashSet::new() }
    }

    /// Runs cycles until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let started = Instant::now();
            let outcome = if self.settings.enabled { self.cycle(&stop).await } else { self.follow().await };
            match outcome {
                Ok(()) => m::rollup_cycle("ok", started.elapsed()),
                Err(e) => {
                    m::rollup_cycle("error", started.elapsed());
                    tracing::warn!(error = %e, "Rollup cycle failed; retrying next cycle.");
                }
            }
            let watermark = self.watermark.get();
            if watermark > 0 {
                m::rollup_lag(Duration::from_nanos((now_nanos() - watermark).max(0) as u64));
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval) => {}
                () = velometry_core::shutdown::stopped(&mut stop) => return,
            }
        }
    }

    /// Reads the persisted state (the watermark and the late-marker cursor).
    async fn load_state(&self) -> Result<Option<(i64, i64)>, InfluxError> {
        let q = format!(
            "SELECT last(\"watermark_ns\"), last(\"late_cursor_ns\") FROM {}",
            ident(STATE_MEASUREMENT)
        );
        let series = self.influx.query(&q).await?;
        let row = series.first().and_then(|s| s.values.first());
        Ok(row.and_then(|r| Some((r.get(1)?.as_i64()?, r.get(2)?.as_i64().unwrap_or(0)))))
    }

    async fn save_state(&self, watermark: i64) -> Result<(), InfluxError> {
        let line = format!(
            "{STATE_MEASUREMENT} watermark_ns={watermark}i,late_cursor_ns={}i {}\n",
            self.late_cursor,
            now_nanos()
        );
        self.influx.write(line.into_bytes()).await
    }

    /// A replica that does not compute rollups reads the watermark the others persist.
    async fn follow(&mut self) -> Result<(), InfluxError> {
        if let Some((watermark, _)) = self.load_state().await? {
            self.watermark.set(watermark);
        }
        Ok(())
    }

    /// One cycle: late markers, then every complete minute since the watermark.
    ///
    /// # Errors
    /// When InfluxDB fails; the next cycle starts again from the persisted watermark.
    pub async fn cycle(&mut self, stop: &watch::Receiver<bool>) -> Result<(), InfluxError> {
        let mut watermark = self.watermark.get();
        if watermark == 0 {
            match self.load_state().await? {
                Some((w, cursor)) => {
                    watermark = w;
                    self.late_cursor = cursor;
                }
                None => watermark = self.earliest().await?,
            }
            self.watermark.set(watermark);
        }
        self.late(watermark).await?;
        let target = floor(now_nanos() - self.settings.settle.as_nanos() as i64, MINUTE);
        let mut from = floor(watermark - self.settings.resettle.as_nanos() as i64, MINUTE);
        while from < target && !*stop.borrow() {
            // A day at a time, so a first run over a year of data makes visible progress; on
            // hour boundaries, so that most steps need not read the minute tier back.
            let to = (floor(from, HOUR) + DAY).min(target);
            let written = self.roll(from, to, None).await?;
            self.watermark.set(self.watermark.get().max(to));
            self.save_state(self.watermark.get()).await?;
            if to - from > HOUR {
                tracing::info!(from = %velometry_core::time::format_rfc3339(from),
                    to = %velometry_core::time::format_rfc3339(to), windows = written, "Rolled up.");
            }
            from = to;
        }
        Ok(())
    }

    /// Where the first cycle starts: the hour of the earliest reading of any measurement, or
    /// now when there is none.
    async fn earliest(&self) -> Result<i64, InfluxError> {
        let statements: Vec<String> = Metric::ALL
            .iter()
            .filter_map(|metric| {
                let field = metric.fields().first()?;
                Some(format!("SELECT first({}) FROM {}", ident(field.name), ident(metric.name())))
            })
            .collect();
        let series = self.influx.query(&statements.join("; ")).await?;
        let earliest =
            series.iter().filter_map(|s| s.values.first()?.first()?.as_i64()).min().unwrap_or_else(now_nanos);
        Ok(floor(earliest, HOUR))
    }

    /// Recomputes the windows named by late markers that lie before the watermark.
    async fn late(&mut self, watermark: i64) -> Result<(), InfluxError> {
        let since = self.late_cursor - self.settings.late_lookback.as_nanos() as i64;
        let q = format!(
            "SELECT \"from_ns\", \"to_ns\", \"measurement\", \"rider\" FROM {} WHERE time > {since}",
            ident(LATE_MEASUREMENT)
        );
        let series = self.influx.query(&q).await?;
        // Per rider and measurement, the ranges to recompute, merged.
        let mut ranges: BTreeMap<(String, String), Vec<(i64, i64)>> = BTreeMap::new();
        let mut newest = self.late_cursor;
        for s in &series {
            for row in &s.values {
                let (Some(time), Some(from), Some(to), Some(Cell::Str(measurement)), Some(Cell::Str(rider))) = (
                    row.first().and_then(Cell::as_i64),
                    row.get(1).and_then(Cell::as_i64),
                    row.get(2).and_then(Cell::as_i64),
                    row.get(3),
                    row.get(4),
                ) else {
                    continue;
                };
                newest = newest.max(time);
                if !self.late_seen.insert((time, rider.clone(), measurement.clone())) || from >= watermark {
                    continue;
                }
                let range = (floor(from, HOUR), (floor(to, HOUR) + HOUR).min(watermark));
                ranges.entry((rider.clone(), measurement.clone())).or_default().push(range);
            }
        }
        for ((rider, measurement), mut spans) in ranges {
            let Some(metric) = Metric::from_name(&measurement) else { continue };
            spans.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::new();
            for (a, b) in spans {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            for (a, b) in merged {
                let mut from = a;
                while from < b {
                    let to = (from + DAY).min(b);
                    self.roll_metric(metric, from, to, Some(&rider)).await?;
                    from = to;
                }
                m::late_range(Duration::from_nanos((b - a).max(0) as u64));
                tracing::info!(%rider, %measurement, from = %velometry_core::time::format_rfc3339(a),
                    to = %velometry_core::time::format_rfc3339(b), "Recomputed rollups for late readings.");
            }
        }
        // Markers older than the look-back are not read again: forget them.
        let forget = newest - self.settings.late_lookback.as_nanos() as i64;
        self.late_seen.retain(|(t, _, _)| *t > forget);
        self.late_cursor = newest;
        Ok(())
    }

    /// Rolls up `[from, to)` (hour-aligned `from`) of every measurement; returns the number
    /// of windows written.
    async fn roll(&self, from: i64, to: i64, rider: Option<&str>) -> Result<usize, InfluxError> {
        let mut written = 0;
        for &metric in Metric::ALL {
            written += self.roll_metric(metric, from, to, rider).await?;
        }
        Ok(written)
    }

    async fn roll_metric(
        &self,
        metric: Metric,
        from: i64,
        to: i64,
        rider: Option<&str>,
    ) -> Result<usize, InfluxError> {
        let fields: Vec<&str> = metric.fields().iter().map(|f| f.name).collect();
        let select = fields.iter().map(|f| ident(f)).collect::<Vec<_>>().join(",");
        let only = rider.map(|r| format!("\"rider\" = {} AND ", literal(r))).unwrap_or_default();
        let q = format!(
            "SELECT {select} FROM {} WHERE {only}time >= {from} AND time < {to} GROUP BY \"rider\"",
            ident(metric.name())
        );
        // Per rider, per field, the points in time order.
        let mut points: BTreeMap<String, Vec<Vec<Point>>> = BTreeMap::new();
        let mut chunks = std::pin::pin!(self.influx.query_chunks(&q));
        while let Some(chunk) = chunks.next().await {
            for s in chunk? {
                let Some(rider) = s.tags.get("rider") else { continue };
                let columns = points.entry(rider.clone()).or_insert_with(|| vec![Vec::new(); fields.len()]);
                for row in &s.values {
                    let Some(t) = row.first().and_then(Cell::as_i64) else { continue };
                    for (i, column) in columns.iter_mut().enumerate() {
                        if let Some(v) = row.get(i + 1).and_then(Cell::as_f64) {
                            column.push((t, v));
                        }
                    }
                }
            }
        }
        // Whole hours only: their windows come straight from the minutes just computed.
        let aligned = from % HOUR == 0 && to % HOUR == 0;
        let (mut minutes, mut hours) = (Vec::new(), Vec::new());
        for (rider, columns) in &points {
            for (field, column) in fields.iter().zip(columns) {
                let ws = windows(column, 0, MINUTE);
                if aligned {
                    hours.push((rider.clone(), *field, regroup(&ws, 0, HOUR)));
                }
                minutes.push((rider.clone(), *field, ws));
            }
        }
        let mut written = self.write(TIERS[0], metric, &minutes).await?;
        if !aligned && !points.is_empty() {
            // The hours this range cuts into hold minutes from before it: merge them from
            // the minute tier, which now holds the whole of each.
            hours =
                self.hours_from_minutes(metric, floor(from, HOUR), floor(to - 1, HOUR) + HOUR, rider).await?;
        }
        written += self.write(TIERS[1], metric, &hours).await?;
        Ok(written)
    }

    /// The hours of `[from, to)` (hour-aligned) merged from the minute tier.
    async fn hours_from_minutes(
        &self,
        metric: Metric,
        from: i64,
        to: i64,
        rider: Option<&str>,
    ) -> Result<Vec<(String, &'static str, Vec<Window>)>, InfluxError> {
        let only = rider.map(|r| format!("\"rider\" = {} AND ", literal(r))).unwrap_or_default();
        let q = format!(
            "SELECT * FROM {} WHERE {only}time >= {from} AND time < {to} GROUP BY \"rider\"",
            ident(&TIERS[0].measurement(metric))
        );
        let mut by_rider: BTreeMap<String, Vec<Series>> = BTreeMap::new();
        let mut chunks = std::pin::pin!(self.influx.query_chunks(&q));
        while let Some(chunk) = chunks.next().await {
            for s in chunk? {
                if let Some(rider) = s.tags.get("rider") {
                    by_rider.entry(rider.clone()).or_default().push(s);
                }
            }
        }
        let mut hours = Vec::new();
        for (rider, series) in by_rider {
            for field in metric.fields() {
                let minutes = decode(&series, field.name);
                if !minutes.is_empty() {
                    hours.push((rider.clone(), field.name, regroup(&minutes, 0, HOUR)));
                }
            }
        }
        Ok(hours)
    }

    /// Writes windows of `tier`; returns how many.
    async fn write(
        &self,
        tier: Tier,
        metric: Metric,
        windows: &[(String, &'static str, Vec<Window>)],
    ) -> Result<usize, InfluxError> {
        let measurement = tier.measurement(metric);
        let mut lines = Vec::new();
        let mut written = 0;
        for (rider, field, ws) in windows {
            for w in ws {
                encode(&measurement, rider, field, w, &mut lines);
            }
            written += ws.len();
        }
        // InfluxDB's guidance: a few thousand lines per write.
        for batch in split_lines(&lines, 4 << 20) {
            self.influx.write(batch.to_vec()).await?;
        }
        m::rollup_windows(tier.name, written);
        Ok(written)
    }
}

/// `lines` in pieces of about `size` bytes, cut at line ends.
fn split_lines(lines: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = lines;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = if rest.len() <= size {
            rest.len()
        } else {
            rest[size..].iter().position(|&b| b == b'\n').map_or(rest.len(), |i| size + i + 1)
        };
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// `t` rounded down to a multiple of `width`.
pub fn floor(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_written_and_read_back_is_the_same_window() {
        let points = [(61_000_000_000, 120.5), (62_000_000_000, 0.1 + 0.2), (90_000_000_000, 250.0)];
        let w = windows(&points, 0, MINUTE)[0];
        let mut lines = Vec::new();
        encode("heart_rate_1m", "alice", "bpm", &w, &mut lines);
        let text = String::from_utf8(lines).expect("utf-8");
        assert!(text.starts_with("heart_rate_1m,rider=alice bpm_count=3i,"), "{text}");
        assert!(text.trim_end().ends_with(" 60000000000"), "{text}");
        // Read back as InfluxDB would answer: the columns in the order `columns` asks.
        let values: Vec<Cell> = std::iter::once(Cell::Int(w.start))
            .chain(AGGREGATES.iter().map(|a| {
                let key = format!("bpm_{a}=");
                let start = text.find(&key).expect("field present") + key.len();
                let raw = text[start..].split([',', ' ']).next().expect("value");
                match raw.strip_suffix('i') {
                    Some(int) => Cell::Int(int.parse().expect("int")),
                    None => Cell::Float(raw.parse().expect("float")),
                }
            }))
            .collect();
        let columns =
            std::iter::once("time".to_owned()).chain(AGGREGATES.iter().map(|a| format!("bpm_{a}"))).collect();
        let series = Series { columns, values: vec![values], ..Series::default() };
        assert_eq!(decode(&series_vec(series), "bpm"), vec![w]);
    }

    fn series_vec(s: Series) -> Vec<Series> {
        vec![s]
    }

    #[test]
    fn lines_are_split_at_line_ends() {
        let lines = b"a 1\nbb 2\nccc 3\n";
        let pieces: Vec<&[u8]> = split_lines(lines, 5).collect();
        assert_eq!(pieces, vec![&b"a 1\nbb 2\n"[..], &b"ccc 3\n"[..]]);
        assert_eq!(split_lines(b"", 5).count(), 0);
    }

    #[test]
    fn the_schema_document_lists_every_aggregate() {
        let doc = include_str!("../../docs/schema.md");
        for aggregate in AGGREGATES {
            assert!(doc.contains(&format!("`F_{aggregate}`")), "docs/schema.md does not list F_{aggregate}");
        }
        assert!(doc.contains(STATE_MEASUREMENT) && doc.contains(LATE_MEASUREMENT));
    }

    #[test]
    fn tiers_are_named_after_their_width() {
        assert_eq!(Tier::named("1h").map(|t| t.width), Some(HOUR));
        assert_eq!(TIERS[0].measurement(Metric::HeartRate), "heart_rate_1m");
        assert_eq!(floor(-1, MINUTE), -MINUTE);
    }
}
