//! InfluxDB as the query service speaks to it: InfluxQL over `/query` (the one query API that
//! InfluxDB 1.x, 2.x and 3.x all answer) and line protocol to `/write` for the rollup tiers.
//!
//! Answers are decoded straight into [`Series`] of [`Cell`]s, without a generic JSON tree in
//! between: a year of hourly rollups is tens of thousands of rows. Long reads go through
//! [`Influx::query_chunks`], which hands InfluxDB's chunked answer over one chunk at a time so
//! that a three-week export never sits in memory at once. Reads that many requests repeat go
//! through [`Influx::read_shared`] and [`Influx::query_shared`], which share one answer among
//! identical statements for a moment (see [`shared`]).

pub mod shared;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use velometry_core::influx::{error_chain, InfluxAuth};

/// What went wrong talking to InfluxDB.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// No answer: connection refused, timeout.
    #[error("InfluxDB did not answer: {0}")]
    Network(String),
    /// InfluxDB answered with an error (a bad statement, a missing database, auth).
    #[error("InfluxDB answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// InfluxDB's message.
        message: String,
    },
    /// An answer that is not the JSON InfluxDB gives.
    #[error("cannot read InfluxDB's answer: {0}")]
    Decode(String),
}

/// One value of an answer row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value in this column at this time.
    Null,
    /// An integer (times are integers with `epoch=ns`).
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
}

impl Cell {
    /// The value as a float, when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Cell::Float(v) => Some(v),
            Cell::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Cell::Int(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cell, D::Error> {
        struct CellVisitor;
        impl Visitor<'_> for CellVisitor {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, string, boolean or null")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Cell, E> {
                i64::try_from(v).map(Cell::Int).or(Ok(Cell::Float(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Cell, E> {
                Ok(Cell::Bool(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell::Str(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Cell, E> {
                Ok(Cell::Null)
            }
        }
        d.deserialize_any(CellVisitor)
    }
}

/// One series of an answer: a measurement and a tag set, with rows of cells.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Series {
    /// The measurement.
    #[serde(default)]
    pub name: String,
    /// The `GROUP BY` tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Column names; the first is `time`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    #[serde(default)]
    pub values: Vec<Vec<Cell>>,
}

impl Series {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<StatementResult>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    error: Option<String>,
}

/// An InfluxDB server and database.
#[derive(Debug, Clone)]
pub struct Influx {
    http: reqwest::Client,
    url: String,
    db: String,
    auth: InfluxAuth,
    shared: Arc<shared::Shared<Vec<Series>>>,
}

impl Influx {
    /// A client of database `db` on the server at `url`, asking for gzipped answers when
    /// `gzip` is set.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(url: &str, db: &str, auth: InfluxAuth, gzip: bool) -> Result<Influx, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .gzip(gzip)
            .build()?;
        Ok(Influx {
            http,
            url: url.trim_end_matches('/').to_owned(),
            db: db.to_owned(),
            auth,
            shared: Arc::new(shared::Shared::new(Duration::ZERO)),
        })
    }

    /// The same client, sharing the answers of identical reads for `ttl` (zero: never).
    #[must_use]
    pub fn sharing_reads(mut self, ttl: Duration) -> Influx {
        self.shared = Arc::new(shared::Shared::new(ttl));
        self
    }

    /// The database.
    pub fn db(&self) -> &str {
        &self.db
    }

    fn request(&self, q: &str, chunked: bool) -> reqwest::RequestBuilder {
        let mut params = vec![("db", self.db.as_str()), ("q", q), ("epoch", "ns")];
        if chunked {
            params.extend([("chunked", "true"), ("chunk_size", "10000")]);
        }
        self.auth.apply(self.http.get(format!("{}/query", self.url)).query(&params))
    }

    /// Runs one statement and returns its series.
    ///
    /// # Errors
    /// No answer, an error answer, or an undecodable one.
    pub async fn query(&self, q: &str) -> Result<Vec<Series>, InfluxError> {
        let started = std::time::Instant::now();
        let answer = async {
            let response = self
                .request(q, false)
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .map_err(|e| InfluxError::Network(error_chain(&e)))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| InfluxError::Network(error_chain(&e)))?;
            decode(status.as_u16(), &body)
        }
        .await;
        crate::metrics::influx_query(answer.is_ok(), started.elapsed());
        answer
    }

    /// Like [`Influx::query`], sharing the answer with identical statements asked within the
    /// read time to live.
    ///
    /// # Errors
    /// As [`Influx::query`].
    pub async fn query_shared(&self, q: &str) -> Result<Arc<Vec<Series>>, InfluxError> {
        let (answer, was_shared) = self.shared.get(q, || self.query(q)).await?;
        crate::metrics::shared_read(was_shared);
        Ok(answer)
    }

    /// One statement's whole answer, read in chunks, series split across chunks joined
    /// again; shared with identical statements asked within the read time to live.
    ///
    /// # Errors
    /// As [`Influx::query_chunks`].
    pub async fn read_shared(&self, q: &str) -> Result<Arc<Vec<Series>>, InfluxError> {
        let read = || async {
            let mut out: Vec<Series> = Vec::new();
            let mut chunks = std::pin::pin!(self.query_chunks(q));
            while let Some(chunk) = chunks.next().await {
                for s in chunk? {
                    match out.last_mut() {
                        Some(last) if last.name == s.name && last.tags == s.tags => {
                            last.values.extend(s.values)
                        }
                        _ => out.push(s),
                    }
                }
            }
            Ok(out)
        };
        let (answer, was_shared) = self.shared.get(q, read).await?;
        crate::metrics::shared_read(was_shared);
        Ok(answer)
    }

    /// Runs one statement and yields its answer chunk by chunk (at most 10,000 rows each), in
    /// order.
    pub fn query_chunks(&self, q: &str) -> impl Stream<Item = Result<Vec<Series>, InfluxError>> + Send {
        let request = self.request(q, true);
        futures::stream::once(async move {
            let started = std::time::Instant::now();
            let response = request.send().await.map_err(|e| InfluxError::Network(error_chain(&e)));
            // Counted once the answer starts: what follows streams at the reader's pace.
            let ok = response.as_ref().is_ok_and(|r| r.status().is_success());
            crate::metrics::influx_query(ok, started.elapsed());
            let response = response?;
            let status = response.status().as_u16();
            if status != 200 {
                let body = response.bytes().await.map_err(|e| InfluxError::Network(error_chain(&e)))?;
                return Err(decode(status, &body).err().unwrap_or_else(|| InfluxError::Refused {
                    status,
                    message: String::from_utf8_lossy(&body).into_owned(),
                }));
            }
            Ok(response.bytes_stream())
        })
        .map(|opened| match opened {
            Ok(bytes) => {
                Lines { bytes: bytes.boxed(), buffer: BytesMut::new(), scanned: 0, done: false }.boxed()
            }
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
    }

    /// Writes line protocol (nanosecond timestamps).
    ///
    /// # Errors
    /// No answer or a refusal.
    pub async fn write(&self, lines: Vec<u8>) -> Result<(), InfluxError> {
        let request = self
            .http
            .post(format!("{}/write", self.url))
            .query(&[("db", self.db.as_str()), ("precision", "ns")])
            .timeout(Duration::from_secs(60))
            .body(lines);
        let response =
            self.auth.apply(request).send().await.map_err(|e| InfluxError::Network(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = response.text().await.unwrap_or_default();
        Err(InfluxError::Refused { status: status.as_u16(), message })
    }
}

/// Newline-delimited JSON answers out of a byte stream.
struct Lines {
    bytes: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: BytesMut,
    /// How much of `buffer` is known to hold no newline.
    scanned: usize,
    done: bool,
}

impl Stream for Lines {
    type Item = Result<Vec<Series>, InfluxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buffer[self.scanned..]) {
                let end = self.scanned + end;
                self.scanned = 0;
                let line = self.buffer.split_to(end + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Poll::Ready(Some(decode(200, &line)));
            }
            if self.done {
                if self.buffer.iter().all(u8::is_ascii_whitespace) {
                    return Poll::Ready(None);
                }
                let rest = std::mem::take(&mut self.buffer);
                return Poll::Ready(Some(decode(200, &rest)));
            }
            match self.bytes.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.scanned = self.buffer.len();
                    self.buffer.extend_from_slice(chunk.chunk());
                }
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    self.buffer.clear();
                    return Poll::Ready(Some(Err(InfluxError::Network(error_chain(&e)))));
                }
                Poll::Ready(None) => self.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn decode(status: u16, body: &[u8]) -> Result<Vec<Series>, InfluxError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        if status == 200 {
            InfluxError::Decode(e.to_string())
        } else {
            InfluxError::Refused { status, message: String::from_utf8_lossy(body).trim().to_owned() }
        }
    })?;
    if let Some(message) = answer.error {
        return Err(InfluxError::Refused { status, message });
    }
    let mut series = Vec::new();
    for result in answer.results {
        if let Some(message) = result.error {
            return Err(InfluxError::Refused { status, message });
        }
        series.extend(result.series);
    }
    if status != 200 {
        return Err(InfluxError::Refused {
            status,
            message: String::from_utf8_lossy(body).trim().to_owned(),
        });
    }
    Ok(series)
}

/// `name` as an InfluxQL identifier, quoted.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `value` as an InfluxQL string literal, quoted.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_into_series_of_cells() {
        let body = br#"{"results":[{"statement_id":0,"series":[{"name":"heart_rate","tags":{"rider":"alice"},
            "columns":["time","bpm","note"],"values":[[1700000000000000000,120.5,null],[1700000001000000000,121,"x"]]}]}]}"#;
        let series = decode(200, body).expect("decodes");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].tags["rider"], "alice");
        assert_eq!(series[0].column("bpm"), Some(1));
        assert_eq!(
            series[0].values[0],
            vec![Cell::Int(1_700_000_000_000_000_000), Cell::Float(120.5), Cell::Null]
        );
        assert_eq!(series[0].values[1][1].as_f64(), Some(121.0));
        assert_eq!(series[0].values[1][2], Cell::Str("x".into()));
    }

    #[test]
    fn errors_in_the_answer_are_errors() {
        let statement = decode(200, br#"{"results":[{"statement_id":0,"error":"database not found: x"}]}"#);
        assert!(
            matches!(statement, Err(InfluxError::Refused { message, .. }) if message.contains("not found"))
        );
        let whole = decode(400, br#"{"error":"error parsing query: found EOF"}"#);
        assert!(matches!(whole, Err(InfluxError::Refused { status: 400, .. })));
        assert!(matches!(decode(200, b"<html>"), Err(InfluxError::Decode(_))));
        assert!(decode(200, br#"{"results":[{"statement_id":0}]}"#).expect("empty").is_empty());
    }

    #[test]
    fn identifiers_and_literals_cannot_break_out_of_their_quotes() {
        assert_eq!(ident(r#"a"b\"#), r#""a\"b\\""#);
        assert_eq!(literal(r"it's\"), r"'it\'s\\'");
    }
}
