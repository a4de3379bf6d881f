//! InfluxDB through its v1 write API (`POST /write`), which 1.x answers natively and 2.x and
//! 3.x answer through their v1-compatible endpoint.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use reqwest::StatusCode;

use velometry_core::influx::{error_chain, InfluxAuth};

use super::SinkError;

/// Writes line protocol to `/write?db=…&precision=ns`.
pub struct InfluxV1 {
    http: reqwest::Client,
    url: String,
    db: String,
    auth: InfluxAuth,
    gzip: bool,
}

impl InfluxV1 {
    /// A sink writing to database `db` of the server at `url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(url: &str, db: &str, auth: InfluxAuth, gzip: bool) -> Result<InfluxV1, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(InfluxV1 { http, url: url.trim_end_matches('/').to_owned(), db: db.to_owned(), auth, gzip })
    }

    /// Creates the database if it is missing (InfluxDB 1.x). Servers that cannot (2.x and
    /// 3.x map databases to buckets; a user without admin rights) are reported, not fatal,
    /// and only when the database is not there already.
    pub async fn create_database(&self) {
        let created = self.statement(&format!("CREATE DATABASE \"{}\"", self.db.replace('"', "\\\""))).await;
        let error = match created {
            Ok(_) => {
                tracing::info!(db = %self.db, url = %self.url, "InfluxDB database ready.");
                return;
            }
            Err(e) => e,
        };
        if self.database_exists().await {
            // The production manifests give the collector every right on its database and
            // none to create databases: nothing to report.
            tracing::info!(
                db = %self.db,
                url = %self.url,
                "InfluxDB database ready (it exists; the collector may not create databases, and need not)."
            );
            return;
        }
        tracing::warn!(
            db = %self.db,
            url = %self.url,
            error = %error,
            "Cannot create the InfluxDB database; readings stay in the WAL until it exists. \
             Create it (or the DBRP mapping on InfluxDB 2.x), or give the collector a user with admin rights."
        );
    }

    /// Whether `SHOW DATABASES` lists the database (for a user without admin rights, among
    /// the databases it has rights on).
    async fn database_exists(&self) -> bool {
        let Ok(answer) = self.statement("SHOW DATABASES").await else {
            return false;
        };
        answer.pointer("/results/0/series/0/values").and_then(serde_json::Value::as_array).is_some_and(
            |rows| rows.iter().any(|row| row.get(0).and_then(serde_json::Value::as_str) == Some(&self.db)),
        )
    }

    /// Runs one InfluxQL statement; its JSON answer, or what went wrong.
    async fn statement(&self, q: &str) -> Result<serde_json::Value, String> {
        let request = self.http.post(format!("{}/query", self.url)).form(&[("q", q)]);
        match self.auth.apply(request).send().await {
            Ok(r) if r.status().is_success() => {
                let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                match body.pointer("/results/0/error").and_then(|e| e.as_str()) {
                    None => Ok(body),
                    Some(e) => Err(e.to_owned()),
                }
            }
            Ok(r) => Err(format!("HTTP {}: {}", r.status(), r.text().await.unwrap_or_default())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes a batch of lines.
    ///
    /// # Errors
    /// [`SinkError::Rejected`] for 400 and 413 (invalid lines; a smaller batch is tried),
    /// [`SinkError::Retry`] for everything that may pass later.
    pub async fn write(&self, body: Bytes) -> Result<(), SinkError> {
        let mut request = self
            .http
            .post(format!("{}/write", self.url))
            .query(&[("db", self.db.as_str()), ("precision", "ns")]);
        request = if self.gzip {
            let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
            encoder
                .write_all(&body)
                .and_then(|()| encoder.finish())
                .map(|gz| request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(gz))
                .map_err(|e| SinkError::Retry { kind: "encode", message: e.to_string() })?
        } else {
            request.body(body)
        };
        let response = self
            .auth
            .apply(request)
            .send()
            .await
            .map_err(|e| SinkError::Retry { kind: "network", message: error_chain(&e) })?;
        classify(response.status(), || async { response.text().await.unwrap_or_default() }).await
    }
}

/// Maps an InfluxDB write answer to the sink's outcome. Shared by the v1 and v2 sinks.
pub(super) async fn classify<F, Fut>(status: StatusCode, text: F) -> Result<(), SinkError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    if status.is_success() {
        return Ok(());
    }
    let text = text().await;
    let message = format!("HTTP {status}: {}", text.trim());
    Err(match status.as_u16() {
        400 | 413 | 422 => SinkError::Rejected(message),
        401 | 403 => SinkError::Retry { kind: "auth", message },
        404 if text.contains("database not found") => SinkError::Retry { kind: "missing_database", message },
        _ => SinkError::Retry { kind: "server", message },
    })
}
