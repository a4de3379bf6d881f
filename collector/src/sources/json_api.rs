//! The generic JSON poller: any HTTP API that answers JSON, mapped to a metric's fields by
//! JSON pointers, without new code. Blood-pressure cuffs, ECG summaries, diet logs:
//!
//! ```toml
//! [[source]]
//! name = "cuff"
//! kind = "json"
//! rider = "alice"
//! every = "15m"
//! url = "https://bp.example/v1/measurements?since={since}"
//! headers = { Authorization = "Bearer ${CUFF_TOKEN}" }
//! items = "/measurements"          # where the list is; "" for the whole answer
//! metric = "blood_pressure"
//! time = "/taken_at"               # where each item's time is
//! time_format = "rfc3339"          # or "unix", "unix_ms", or a strftime pattern (UTC)
//! fields = { systolic = "/sys", diastolic = "/dia", pulse = "/pulse" }
//! ```
//!
//! `{since}` in the URL becomes the time of the newest item already stored (RFC 3339, or
//! epoch seconds with `since_format = "unix"`), so each run asks only for what is new;
//! items not newer than that are skipped whatever the API answers.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use velometry_core::reading::{Metric, Reading};
use velometry_core::time::{format_rfc3339, now_nanos, Nanos};

use super::Failure;

/// The `source` tag of its readings.
pub const KIND: &str = "json_api";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    items: String,
    metric: String,
    time: String,
    #[serde(default = "rfc3339")]
    time_format: String,
    #[serde(default = "rfc3339")]
    since_format: String,
    fields: BTreeMap<String, String>,
}

fn rfc3339() -> String {
    "rfc3339".into()
}

/// How an item's time is written.
#[derive(Debug, Clone, PartialEq)]
enum TimeFormat {
    Rfc3339,
    Unix,
    UnixMs,
    Pattern(String),
}

/// A configured JSON poller.
#[derive(Debug)]
pub struct JsonApi {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    items: String,
    metric: Metric,
    time: String,
    time_format: TimeFormat,
    since_unix: bool,
    fields: Vec<(&'static str, String)>,
}

#[derive(Debug, Default, serde::Serialize, Deserialize)]
struct State {
    /// The time of the newest item stored, ns.
    since: Option<Nanos>,
}

fn pointer(key: &str, p: &str) -> Result<String, String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(p.to_owned())
    } else {
        Err(format!("{key} {p:?} is not a JSON pointer (it starts with /, e.g. \"/readings\")"))
    }
}

impl JsonApi {
    /// Reads the kind's settings.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn from_config(value: toml::Value) -> Result<JsonApi, String> {
        let c: Config = value.try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
        let metric = Metric::from_name(&c.metric)
            .ok_or_else(|| format!("metric {:?} is not a known metric", c.metric))?;
        let mut fields = Vec::new();
        for (name, p) in &c.fields {
            let spec = metric.field(name).ok_or_else(|| format!("{metric} has no field {name:?}"))?;
            fields.push((spec.name, pointer(&format!("fields.{name}"), p)?));
        }
        if fields.is_empty() {
            return Err("fields maps no field".into());
        }
        let time_format = match c.time_format.as_str() {
            "rfc3339" => TimeFormat::Rfc3339,
            "unix" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            pattern if pattern.contains('%') => TimeFormat::Pattern(pattern.to_owned()),
            other => {
                return Err(format!(
                    "time_format {other:?} is not rfc3339, unix, unix_ms or a strftime pattern"
                ))
            }
        };
        let since_unix = match c.since_format.as_str() {
            "rfc3339" => false,
            "unix" => true,
            other => return Err(format!("since_format {other:?} is not rfc3339 or unix")),
        };
        reqwest::Url::parse(&c.url.replace("{since}", "x")).map_err(|e| format!("url {:?}: {e}", c.url))?;
        let http = super::http_client()?;
        Ok(JsonApi {
            http,
            url: c.url,
            headers: c.headers.into_iter().collect(),
            items: pointer("items", &c.items)?,
            metric,
            time: pointer("time", &c.time)?,
            time_format,
            since_unix,
            fields,
        })
    }

    /// One run.
    pub(super) async fn run(&self, saved: &mut Value) -> Result<Vec<Reading>, Failure> {
        let mut state: State = serde_json::from_value(saved.clone()).unwrap_or_default();
        let since = state.since.map_or_else(String::new, |t| {
            if self.since_unix {
                (t / 1_000_000_000).to_string()
            } else {
                format_rfc3339(t)
            }
        });
        let url = self.url.replace("{since}", &since);
        let mut request = self.http.get(&url);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(|e| Failure::Network(e.to_string()))?;
        if let Some(failure) = Failure::of_status(&response) {
            return Err(failure);
        }
        let body: Value =
            response.json().await.map_err(|e| Failure::BadResponse(format!("not JSON: {e}")))?;
        let items = match body.pointer(&self.items) {
            Some(Value::Array(items)) => items.clone(),
            Some(item @ Value::Object(_)) => vec![item.clone()],
            _ => return Err(Failure::BadResponse(format!("no list at {:?} in the answer", self.items))),
        };
        let now = now_nanos();
        let mut readings = Vec::new();
        for item in &items {
            let Some(time) = item.pointer(&self.time).and_then(|t| self.parse_time(t)) else {
                tracing::warn!(item = %item, pointer = %self.time, "Item without a readable time; skipped.");
                continue;
            };
            if state.since.is_some_and(|since| time <= since) {
                continue;
            }
            let fields: Vec<(&str, f64)> =
                self.fields.iter().filter_map(|(name, p)| Some((*name, number(item.pointer(p)?)?))).collect();
            match Reading::known(self.metric, time, now, fields) {
                Ok(reading) => readings.push(reading),
                Err(e) => tracing::warn!(item = %item, error = %e, "Item refused; skipped."),
            }
        }
        if let Some(newest) = readings.iter().map(Reading::time).max() {
            state.since = Some(state.since.map_or(newest, |s| s.max(newest)));
        }
        *saved = serde_json::to_value(state).unwrap_or(Value::Null);
        Ok(readings)
    }

    fn parse_time(&self, value: &Value) -> Option<Nanos> {
        match (&self.time_format, value) {
            (TimeFormat::Rfc3339, Value::String(s)) => velometry_core::time::parse_rfc3339(s).ok(),
            (TimeFormat::Unix, v) => number(v).map(|s| (s * 1e9) as Nanos),
            (TimeFormat::UnixMs, v) => number(v).and_then(velometry_core::time::millis_to_nanos),
            (TimeFormat::Pattern(p), Value::String(s)) => chrono::NaiveDateTime::parse_from_str(s, p)
                .ok()
                .and_then(|t| t.and_utc().timestamp_nanos_opt()),
            _ => None,
        }
    }
}

/// A number, or a string holding one (APIs write both).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poller(extra: &str) -> Result<JsonApi, String> {
        let text = format!(
            "url = \"http://127.0.0.1:9/x?since={{since}}\"\nmetric = \"blood_pressure\"\ntime = \"/t\"\n{extra}"
        );
        JsonApi::from_config(toml::from_str::<toml::Value>(&text).expect("toml"))
    }

    #[test]
    fn settings_are_checked_with_messages_that_say_what_to_fix() {
        assert!(poller("fields = { systolic = \"/s\", diastolic = \"/d\" }").is_ok());
        let cases = [
            ("fields = { sys = \"/s\" }", "blood_pressure has no field \"sys\""),
            ("fields = { systolic = \"s\" }", "is not a JSON pointer"),
            ("fields = {}", "fields maps no field"),
            ("fields = { systolic = \"/s\" }\ntime_format = \"iso\"", "time_format \"iso\""),
            ("fields = { systolic = \"/s\" }\ncolour = 1", "unknown field `colour`"),
        ];
        for (extra, message) in cases {
            let error = poller(extra).expect_err(extra);
            assert!(error.contains(message), "{extra}: {error:?} does not say {message:?}");
        }
    }

    #[test]
    fn times_in_every_format() {
        let p = |f: &str| {
            let mut api = poller("fields = { systolic = \"/s\" }").expect("valid");
            api.time_format = match f {
                "rfc3339" => TimeFormat::Rfc3339,
                "unix" => TimeFormat::Unix,
                "unix_ms" => TimeFormat::UnixMs,
                pattern => TimeFormat::Pattern(pattern.into()),
            };
            api
        };
        let t = 1_795_773_600_000_000_000;
        assert_eq!(p("rfc3339").parse_time(&serde_json::json!("2026-11-27T10:00:00Z")), Some(t));
        assert_eq!(p("unix").parse_time(&serde_json::json!(1_795_773_600)), Some(t));
        assert_eq!(p("unix").parse_time(&serde_json::json!("1795773600")), Some(t));
        assert_eq!(p("unix_ms").parse_time(&serde_json::json!(1_795_773_600_000_i64)), Some(t));
        assert_eq!(p("%Y-%m-%d %H:%M:%S").parse_time(&serde_json::json!("2026-11-27 10:00:00")), Some(t));
        assert_eq!(p("rfc3339").parse_time(&serde_json::json!(12)), None);
    }
}
