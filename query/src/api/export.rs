//! `GET /v1/riders/{rider}/export.gpx` and `export.csv`: full resolution, streamed.
//!
//! Before the first byte, the handler picks each measurement's main device, counts what the
//! range holds (refusing more than `--max-export-points`), and finds where the data is: from
//! its own first to its last reading, with the empty stretches in between left out
//! ([`stretches`]). The body then reads those windows one at a time (at most six hours each,
//! every measurement of a window in one InfluxQL request), and each window becomes the next
//! piece of the body, so memory stays flat however long the ride, and a decade of range
//! around a 37-minute ride costs a handful of requests, not one per six hours. If InfluxDB
//! fails half-way the body ends without its closing tags: a client sees a truncated
//! download rather than a file that silently lacks data.

pub mod stretches;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;

use super::{main_devices_counted, visible, AppState, Params};
use crate::error::ApiError;
use crate::export::{merge, Column, CsvWriter, GpxWriter, Row};
use crate::influx::{ident, literal, Cell, Influx, InfluxError};
use stretches::{Source, Window};

/// The measurements an export reads, each with a field every reading of it has.
const MEASUREMENTS: [(&str, &str); 6] = [
    ("gps", "lat"),
    ("heart_rate", "bpm"),
    ("cadence", "rpm"),
    ("power", "watts"),
    ("temperature", "celsius"),
    ("distance", "meters"),
];

/// The handler of `export.gpx`.
///
/// # Errors
/// Unknown or invisible rider; a bad range; too many points; InfluxDB failing before the
/// first byte.
pub async fn gpx(
    State(state): State<AppState>,
    Path(rider): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    export(state, rider, params, headers, Format::Gpx).await
}

/// The handler of `export.csv`.
///
/// # Errors
/// Unknown or invisible rider; a bad range; too many points; InfluxDB failing before the
/// first byte.
pub async fn csv(
    State(state): State<AppState>,
    Path(rider): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    export(state, rider, params, headers, Format::Csv).await
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Gpx,
    Csv,
}

enum Writer {
    Gpx(GpxWriter),
    Csv(CsvWriter),
}

async fn export(
    state: AppState,
    rider: String,
    params: Params,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    let registry = state.registry.current();
    let rider = visible(&registry, &headers, &rider)?;
    let range = params.range(Duration::from_secs(24 * 3600))?;
    let id = rider.id.as_str().to_owned();
    let filter =
        format!("\"rider\" = {} AND time >= {} AND time < {}", literal(&id), range.from(), range.to());
    let counted = main_devices_counted(&state.influx, &filter, MEASUREMENTS).await?;
    let points: i64 = counted.values().map(|(_, n)| n).sum();
    if points > state.max_export_points {
        return Err(ApiError::BadRequest(format!(
            "this range holds {points} readings to export, more than the {} an export may hold \
             (--max-export-points); ask for a shorter range",
            state.max_export_points
        )));
    }
    let devices: BTreeMap<&'static str, String> = counted.into_iter().map(|(m, (d, _))| (m, d)).collect();
    let sources: Vec<Source> = MEASUREMENTS
        .iter()
        .filter_map(|&(measurement, field)| {
            Some(Source { measurement, field, device: devices.get(measurement)?.clone() })
        })
        .collect();
    let windows = stretches::windows(&state.influx, &id, &sources, range).await?;
    let (content_type, extension, mut writer, head) = match format {
        Format::Gpx => {
            let mut w = GpxWriter::new();
            let head =
                w.header(&format!("{} {}", rider.name, velometry_core::time::format_rfc3339(range.from())));
            ("application/gpx+xml", "gpx", Writer::Gpx(w), head)
        }
        Format::Csv => ("text/csv; charset=utf-8", "csv", Writer::Csv(CsvWriter::new()), Vec::new()),
    };
    let body =
        body(state.influx.clone(), id.clone(), devices, windows, head, move |rows, last| match &mut writer {
            Writer::Gpx(w) => {
                let mut out = w.rows(rows);
                if last {
                    out.extend(w.footer());
                }
                out
            }
            Writer::Csv(w) => w.rows(rows),
        });
    let file = format!("attachment; filename=\"{id}-{}.{extension}\"", super::millis(range.from()));
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, range.cache_control(rider.public));
    Ok(response)
}

/// The body: `head`, then the encoding of each window's rows (`encode(rows, is_last)`); with
/// no window at all, `head` and the encoding of no rows.
fn body<F>(
    influx: Influx,
    rider: String,
    devices: BTreeMap<&'static str, String>,
    windows: Vec<Window>,
    head: Vec<u8>,
    encode: F,
) -> impl Stream<Item = Result<Bytes, InfluxError>> + Send
where
    F: FnMut(&[Row], bool) -> Vec<u8> + Send + 'static,
{
    struct Cursor<F> {
        influx: Influx,
        rider: String,
        devices: BTreeMap<&'static str, String>,
        head: Vec<u8>,
        windows: std::vec::IntoIter<Window>,
        /// Whether the encoding of the last window was given (the document is complete).
        done: bool,
        encode: F,
    }
    let cursor = Cursor { influx, rider, devices, head, windows: windows.into_iter(), done: false, encode };
    futures::stream::unfold(cursor, move |mut c| async move {
        if c.done {
            return None;
        }
        let Some(w) = c.windows.next() else {
            // No data in the range: the document's start and end only.
            c.done = true;
            let mut out = std::mem::take(&mut c.head);
            out.extend((c.encode)(&[], true));
            return Some((Ok(Bytes::from(out)), c));
        };
        let last = c.windows.len() == 0;
        let item = match window(&c.influx, &c.rider, &c.devices, w).await {
            Ok(rows) => {
                let mut out = std::mem::take(&mut c.head);
                out.extend((c.encode)(&rows, last));
                c.done = last;
                Ok(Bytes::from(out))
            }
            Err(e) => {
                tracing::warn!(rider = %c.rider, error = %e, "Export cut short: InfluxDB failed.");
                c.done = true;
                Err(e)
            }
        };
        Some((item, c))
    })
}

/// The rows of window `w`: every measurement in one request, joined by time.
async fn window(
    influx: &Influx,
    rider: &str,
    devices: &BTreeMap<&'static str, String>,
    w: Window,
) -> Result<Vec<Row>, InfluxError> {
    let mut statements = Vec::new();
    for (measurement, device) in devices {
        let fields: Vec<String> = Column::ALL
            .iter()
            .filter(|c| c.measurement() == *measurement)
            .map(|c| ident(c.field()))
            .collect();
        statements.push(format!(
            "SELECT {} FROM {} WHERE \"rider\" = {} AND \"device\" = {} AND time >= {} AND time < {}",
            fields.join(","),
            ident(measurement),
            literal(rider),
            literal(device),
            w.from,
            w.to
        ));
    }
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    let mut columns: Vec<(Column, Vec<(i64, f64)>)> = Vec::new();
    for s in influx.query(&statements.join("; ")).await? {
        for (i, name) in s.columns.iter().enumerate().skip(1) {
            let Some(column) =
                Column::ALL.into_iter().find(|c| c.measurement() == s.name && c.field() == name)
            else {
                continue;
            };
            let values = s
                .values
                .iter()
                .filter_map(|row| {
                    Some((row.first().and_then(Cell::as_i64)?, row.get(i).and_then(Cell::as_f64)?))
                })
                .collect();
            columns.push((column, values));
        }
    }
    Ok(merge(columns))
}
