//! Asking the sink's database what it holds: `SHOW FIELD KEYS`, in InfluxQL, which InfluxDB
//! 1.x, 2.x (through its v1 API and a DBRP mapping) and 3.x all answer, and the version in
//! `/ping`'s `X-Influxdb-Version`, which says whether the sink takes unsigned integers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use velometry_core::influx::{error_chain, InfluxAuth};
use velometry_core::lineproto::parse::FieldType;

use super::{FieldTypes, TypeSet};
use crate::metrics as m;
use crate::wal::Wal;

/// Whether a server of `version` (`1.6.7~rc0`, `v2.7.4`, `3.0.1`) has unsigned integers:
/// InfluxDB 2 and later do, 1.x does not.
pub fn takes_unsigned(version: &str) -> bool {
    let digits: String = version.trim_start_matches('v').chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u32>().is_ok_and(|major| major >= 2)
}

/// Asks one database.
pub struct Learner {
    http: reqwest::Client,
    url: String,
    db: String,
    auth: InfluxAuth,
    /// Whether "database not found" means an empty database (the v1 sink creates it, so
    /// a missing one holds nothing) or that this server cannot be asked (InfluxDB 2
    /// without a DBRP mapping for the v2 sink's bucket).
    missing_is_empty: bool,
}

/// The fields of each measurement and their types.
pub type Answer = HashMap<String, HashMap<String, TypeSet>>;

impl Learner {
    /// A learner asking database `db` of the server at `url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(
        url: &str,
        db: &str,
        auth: InfluxAuth,
        missing_is_empty: bool,
    ) -> Result<Learner, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Learner {
            http,
            url: url.trim_end_matches('/').to_owned(),
            db: db.to_owned(),
            auth,
            missing_is_empty,
        })
    }

    /// The server's version, if it says.
    pub async fn version(&self) -> Option<String> {
        let response = self.auth.apply(self.http.get(format!("{}/ping", self.url))).send().await.ok()?;
        let version = response.headers().get("x-influxdb-version")?.to_str().ok()?;
        Some(version.to_owned())
    }

    /// Every field of every measurement and its types (several where shards disagree).
    ///
    /// # Errors
    /// What went wrong, when the server cannot be asked or does not answer InfluxQL.
    pub async fn field_keys(&self) -> Result<Answer, String> {
        let request = self
            .http
            .post(format!("{}/query", self.url))
            .form(&[("db", self.db.as_str()), ("q", "SHOW FIELD KEYS")]);
        let response = self.auth.apply(request).send().await.map_err(|e| error_chain(&e))?;
        let status = response.status();
        let body: serde_json::Value =
            response.json().await.map_err(|e| format!("HTTP {status}, not InfluxQL's JSON: {e}"))?;
        let error = body.pointer("/results/0/error").or_else(|| body.get("error")).and_then(|e| e.as_str());
        match error {
            Some(e) if self.missing_is_empty && e.starts_with("database not found") => {
                return Ok(Answer::new())
            }
            Some(e) => return Err(format!("HTTP {status}: {e}")),
            None if !status.is_success() => return Err(format!("HTTP {status}")),
            None => {}
        }
        let mut answer = Answer::new();
        let series = body.pointer("/results/0/series").and_then(|s| s.as_array()).into_iter().flatten();
        for s in series {
            let Some(name) = s.get("name").and_then(|n| n.as_str()) else { continue };
            let fields = answer.entry(name.to_owned()).or_default();
            for row in s.get("values").and_then(|v| v.as_array()).into_iter().flatten() {
                let key = row.get(0).and_then(|k| k.as_str());
                let t = row.get(1).and_then(|t| t.as_str()).and_then(FieldType::from_name);
                if let (Some(key), Some(t)) = (key, t) {
                    let types = fields.entry(key.to_owned()).or_default();
                    *types = types.with(t);
                }
            }
        }
        Ok(answer)
    }
}

/// Asks the database once and makes its answer the truth.
///
/// # Errors
/// When the database cannot be asked; nothing changes then.
pub async fn refresh(types: &FieldTypes, learner: &Learner, wal: &Wal) -> Result<(), String> {
    // Read before asking: what was stored then is in the answer.
    let stored = wal.flushed_lsn();
    let version = learner.version().await;
    let answer = learner.field_keys().await;
    m::field_type_refresh(answer.is_ok());
    types.refreshed(answer?, stored, version);
    Ok(())
}

/// Refreshes every `every` until `stop` turns true. Failures are logged once until the
/// next success: the types learned from lines hold meanwhile.
pub async fn run(
    types: Arc<FieldTypes>,
    learner: Learner,
    wal: Wal,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match refresh(&types, &learner, &wal).await {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "Cannot ask InfluxDB for its field types; checking against what is known.");
            }
            Err(error) => tracing::debug!(%error, "Cannot ask InfluxDB for its field types."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::takes_unsigned;

    #[test]
    fn unsigned_integers_from_influxdb_2_on() {
        assert!(!takes_unsigned("1.6.7~rc0"));
        assert!(!takes_unsigned("1.8.10"));
        assert!(takes_unsigned("v2.7.4"));
        assert!(takes_unsigned("3.0.1"));
        assert!(!takes_unsigned("velometry"));
    }
}
