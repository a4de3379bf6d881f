//! What the service reads from InfluxDB over InfluxQL (`/query`, which 1.x, 2.x and 3.x
//! answer): entrants' fixes, organisers' status changes, the collector's late markers, and
//! how far the derived readings already stored go.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use velometry_core::event::status::Status as EventStatus;
use velometry_core::event::withdrawn;
use velometry_core::ids::RiderId;
use velometry_core::influx::{error_chain, InfluxAuth};
use velometry_core::time::Nanos;

use super::derived::Stored;
use crate::engine::Input;
use crate::fix::Fix;

/// Rows read per query when paging through a rider's history.
const PAGE: usize = 10_000;

/// Why InfluxDB gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Not reachable, or it answered with an error status.
    #[error("InfluxDB: {0}")]
    Request(String),
    /// It answered a query with an error.
    #[error("InfluxDB refused {query:?}: {error}")]
    Query {
        /// The query.
        query: String,
        /// What InfluxDB said.
        error: String,
    },
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Statement>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(default)]
    series: Vec<Series>,
    error: Option<String>,
}

/// One series of an answer: its tags (with `GROUP BY`) and rows, time first.
#[derive(Debug, Deserialize)]
pub struct Series {
    #[serde(default)]
    name: String,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

/// A reader of InfluxDB.
#[derive(Debug, Clone)]
pub struct History {
    http: reqwest::Client,
    url: String,
    db: String,
    auth: InfluxAuth,
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn float(row: &[Value], i: usize) -> Option<f64> {
    row.get(i).and_then(Value::as_f64)
}

fn nanos(row: &[Value]) -> Option<Nanos> {
    row.first().and_then(Value::as_i64)
}

/// The fix of a row `time, lat, lon, speed, heading`.
fn fix(row: &[Value]) -> Option<Fix> {
    Fix::new(nanos(row)?, float(row, 1)?, float(row, 2)?, float(row, 3), float(row, 4)).ok()
}

impl History {
    /// A reader of database `db` at `url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(url: &str, db: &str, auth: InfluxAuth) -> Result<History, HistoryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| HistoryError::Request(error_chain(&e)))?;
        Ok(History { http, url: url.trim_end_matches('/').to_owned(), db: db.to_owned(), auth })
    }

    /// The series a query answers (none for a measurement or database not there yet).
    ///
    /// # Errors
    /// When InfluxDB cannot be reached or refuses the query.
    pub async fn query(&self, q: &str) -> Result<Vec<Series>, HistoryError> {
        let request = self.http.get(format!("{}/query", self.url)).query(&[
            ("db", self.db.as_str()),
            ("q", q),
            ("epoch", "ns"),
        ]);
        let response =
            self.auth.apply(request).send().await.map_err(|e| HistoryError::Request(error_chain(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| HistoryError::Request(error_chain(&e)))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            HistoryError::Request(format!(
                "{status}: {e}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ))
        })?;
        let refused = |error: String| HistoryError::Query { query: q.to_owned(), error };
        if let Some(error) = answer.error {
            return Err(refused(error));
        }
        let mut series = Vec::new();
        for statement in answer.results {
            match statement.error {
                Some(e) if e.contains("database not found") => {}
                Some(e) => return Err(refused(e)),
                None => series.extend(statement.series),
            }
        }
        Ok(series)
    }

    /// A rider's fixes after `after` (exclusive) up to `until` (inclusive), in time order,
    /// read a page at a time.
    ///
    /// # Errors
    /// See [`History::query`].
    pub async fn fixes(&self, rider: &RiderId, after: Nanos, until: Nanos) -> Result<Vec<Fix>, HistoryError> {
        let mut out: Vec<Fix> = Vec::new();
        let mut from = after;
        loop {
            let q = format!(
                "SELECT \"lat\", \"lon\", \"speed\", \"heading\" FROM \"gps\" WHERE \"rider\" = {} \
                 AND time > {from} AND time <= {until} ORDER BY time ASC LIMIT {PAGE}",
                quote(rider.as_str())
            );
            let rows: Vec<Vec<Value>> = self.query(&q).await?.into_iter().flat_map(|s| s.values).collect();
            let n = rows.len();
            let last = rows.last().and_then(|r| nanos(r));
            out.extend(rows.iter().filter_map(|r| fix(r)));
            match last {
                Some(t) if n == PAGE => from = t,
                _ => return Ok(out),
            }
        }
    }

    /// Every entrant's fixes after `after`, by rider (one query for all of them).
    ///
    /// # Errors
    /// See [`History::query`].
    pub async fn recent_fixes(
        &self,
        riders: &[RiderId],
        after: Nanos,
    ) -> Result<HashMap<RiderId, Vec<Fix>>, HistoryError> {
        let mut out: HashMap<RiderId, Vec<Fix>> = HashMap::new();
        if riders.is_empty() {
            return Ok(out);
        }
        // Rider ids are [a-z0-9_-]: nothing in them needs escaping in a regular expression.
        let names: Vec<&str> = riders.iter().map(RiderId::as_str).collect();
        let q = format!(
            "SELECT \"lat\", \"lon\", \"speed\", \"heading\" FROM \"gps\" WHERE \"rider\" =~ /^({})$/ \
             AND time > {after} GROUP BY \"rider\"",
            names.join("|")
        );
        for series in self.query(&q).await? {
            let Some(rider) = series.tags.get("rider").and_then(|r| RiderId::parse(r).ok()) else { continue };
            out.entry(rider).or_default().extend(series.values.iter().filter_map(|r| fix(r)));
        }
        for fixes in out.values_mut() {
            fixes.sort_by_key(|f| f.time);
        }
        Ok(out)
    }

    /// Organisers' status changes of the event coded `code`, by rider: `(time, input)`.
    ///
    /// # Errors
    /// See [`History::query`].
    pub async fn statuses(&self, code: f64) -> Result<HashMap<RiderId, Vec<Input>>, HistoryError> {
        let q = format!(
            "SELECT \"event\", \"state\" FROM \"event_status\" WHERE \"event\" = {code} GROUP BY \"rider\""
        );
        let mut out: HashMap<RiderId, Vec<Input>> = HashMap::new();
        for series in self.query(&q).await? {
            let Some(rider) = series.tags.get("rider").and_then(|r| RiderId::parse(r).ok()) else { continue };
            for row in &series.values {
                let (Some(time), Some(state)) = (nanos(row), float(row, 2)) else { continue };
                let input = match EventStatus::from_code(state) {
                    Some(EventStatus::Scratched) => Input::Scratched { time },
                    Some(EventStatus::Racing) => Input::Reinstated { time },
                    None => continue,
                };
                out.entry(rider.clone()).or_default().push(input);
            }
        }
        Ok(out)
    }

    /// The collector's late markers for `gps` written after `after`: `(marker time, rider,
    /// the earliest late reading)`.
    ///
    /// # Errors
    /// See [`History::query`].
    pub async fn late_fixes(&self, after: Nanos) -> Result<Vec<(Nanos, RiderId, Nanos)>, HistoryError> {
        let q = format!(
            "SELECT \"from_ns\", \"rider\" FROM \"velometry_late\" WHERE \"measurement\" = 'gps' AND time > {after}"
        );
        let mut out = Vec::new();
        for series in self.query(&q).await? {
            for row in &series.values {
                let (Some(time), Some(from)) = (nanos(row), row.get(1).and_then(Value::as_i64)) else {
                    continue;
                };
                let Some(rider) = row.get(2).and_then(Value::as_str).and_then(|r| RiderId::parse(r).ok())
                else {
                    continue;
                };
                out.push((time, rider, from));
            }
        }
        Ok(out)
    }

    /// The derived points an event gives (checkpoint outcomes, status changes, stops, leaving
    /// and rejoining the course) stored for a rider in the event coded `code` after `after`,
    /// withdrawn ones left out.
    ///
    /// # Errors
    /// See [`History::query`].
    pub async fn derived_after(
        &self,
        rider: &RiderId,
        code: f64,
        after: Nanos,
    ) -> Result<Vec<Stored>, HistoryError> {
        let q = withdrawn::MARKS
            .iter()
            .map(|(metric, field, mark)| {
                format!(
                    "SELECT * FROM \"{metric}\" WHERE \"rider\" = {} AND \"event\" = {code} \
                     AND \"{field}\" <> {mark} AND time > {after}",
                    quote(rider.as_str())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut out = Vec::new();
        for series in self.query(&q).await? {
            let Some(&(metric, _, _)) = withdrawn::MARKS.iter().find(|(m, _, _)| *m == series.name) else {
                continue;
            };
            for row in &series.values {
                let Some(time) = nanos(row) else { continue };
                let fields = series
                    .columns
                    .iter()
                    .zip(row)
                    .skip(1)
                    .filter(|(name, _)| *name != "event")
                    .filter_map(|(name, value)| Some((name.clone(), Value::from(value.as_f64()?))))
                    .collect();
                out.push(Stored { metric, time, fields });
            }
        }
        Ok(out)
    }

    /// The time of the last `course_progress` stored for a rider in the event coded `code`.
    ///
    /// # Errors
    /// See [`History::query`].
    pub async fn last_progress(&self, rider: &RiderId, code: f64) -> Result<Option<Nanos>, HistoryError> {
        let q = format!(
            "SELECT last(\"progress_m\") FROM \"course_progress\" WHERE \"rider\" = {} AND \"event\" = {code}",
            quote(rider.as_str())
        );
        Ok(self.query(&q).await?.iter().flat_map(|s| s.values.iter()).find_map(|r| nanos(r)))
    }
}
