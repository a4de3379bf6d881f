//! Strava's API: every new activity as an `activity` summary, and the samples it recorded
//! (its streams) as `gps`, `heart_rate`, `power`, `cadence` and `distance` readings.
//!
//! ```toml
//! [[source]]
//! name = "strava"
//! kind = "strava"
//! rider = "alice"
//! every = "15m"
//! client_id = "12345"
//! client_secret = "${STRAVA_CLIENT_SECRET}"
//! refresh_token = "${STRAVA_REFRESH_TOKEN}"   # the first one; Strava rotates it
//! since = "2026-01-01T00:00:00Z"              # how far back the first run reaches (default: 30 days)
//! ```
//!
//! A run lists the activities that started after the newest one stored
//! (`GET /athlete/activities?after=…`, page by page), then fetches each one's streams, oldest
//! first. The progress kept in the state (`"after"`, Unix seconds) is the start of the newest
//! activity whose streams were stored; until there is one, every run reaches back to `since`.
//! An activity whose streams cannot be fetched is never skipped: the run fails, and the next
//! one asks again from the same point (the activities before it in that run are fetched
//! again too, because a failed run stores nothing). Only an activity without streams (entered
//! by hand, or answered 404) is stored as its summary alone.
//!
//! Strava allows an application 100 reads per 15 minutes and 1,000 per day, and says how many
//! are used in the `X-RateLimit-*` (and `X-ReadRateLimit-*`) headers of every answer. When one
//! window is used up, the run stops early and what it fetched is stored; until the window
//! resets (the next quarter hour, or midnight UTC for the daily one), runs do not ask at all.
//! A 429 fails the run and postpones the next one by its `Retry-After`, or until the next
//! quarter hour.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use velometry_core::reading::{check_time, validate_known, Metric, Reading};
use velometry_core::time::{format_rfc3339, now_nanos, parse_rfc3339, Nanos};

use super::oauth::{ClientAuth, OAuth};
use super::Failure;

/// The `source` tag of its readings.
pub const KIND: &str = "strava";

const API_URL: &str = "https://www.strava.com/api/v3";
const TOKEN_URL: &str = "https://www.strava.com/oauth/token";
const SETTINGS: [&str; 6] = ["client_id", "client_secret", "refresh_token", "api_url", "token_url", "since"];
/// Activities per listing page. A page with fewer is the last.
const PER_PAGE: usize = 100;
const STREAM_KEYS: &str = "time,latlng,heartrate,watts,cadence,altitude,velocity_smooth,distance";
/// How far back the first run reaches without `since`.
const DEFAULT_REACH: Duration = Duration::from_secs(30 * 86_400);
/// A run takes no further activity past this many readings: a run's readings are one log
/// record (at most 256 MiB), and a long 1 Hz ride alone makes ~100,000. The next run
/// continues where this one stopped.
const MAX_READINGS_PER_RUN: usize = 250_000;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A configured Strava poller.
#[derive(Debug)]
pub struct Strava {
    http: reqwest::Client,
    oauth: OAuth,
    api_url: String,
    /// Where the first run starts; `None`: 30 days before it.
    since: Option<Nanos>,
}

/// The progress kept in the state beside `"oauth"`.
#[derive(Debug, Default, Deserialize)]
struct Progress {
    /// Unix seconds: the start of the newest activity whose streams are stored.
    after: Option<i64>,
    /// Unix seconds: when the rate-limit window that stopped the last run resets.
    resume_at: Option<i64>,
}

/// A rate-limit window that Strava says is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Window {
    /// The 15-minute one: it resets at 0, 15, 30 and 45 minutes past the hour.
    Quarter,
    /// The daily one: it resets at midnight UTC.
    Day,
}

impl Window {
    /// The first window Strava reports as used up in an answer's headers, the daily one
    /// first; `None` when there is room or the headers are missing.
    fn spent(headers: &HeaderMap) -> Option<Window> {
        // `X-ReadRateLimit-*` is the limit of the reads alone (what a poller does), where
        // Strava sends it; `X-RateLimit-*` the overall one.
        [("x-ratelimit-limit", "x-ratelimit-usage"), ("x-readratelimit-limit", "x-readratelimit-usage")]
            .into_iter()
            .filter_map(|(limit, usage)| {
                let (quarter_limit, day_limit) = pair(headers.get(limit)?)?;
                let (quarter_used, day_used) = pair(headers.get(usage)?)?;
                if day_used >= day_limit {
                    Some(Window::Day)
                } else if quarter_used >= quarter_limit {
                    Some(Window::Quarter)
                } else {
                    None
                }
            })
            .max()
    }

    /// When the window resets after `now` (Unix seconds).
    fn resets_at(self, now: i64) -> i64 {
        let length = match self {
            Window::Quarter => 15 * 60,
            Window::Day => 86_400,
        };
        (now.div_euclid(length) + 1) * length
    }
}

/// `"used15,usedDay"` → the two numbers.
fn pair(value: &reqwest::header::HeaderValue) -> Option<(u64, u64)> {
    let (a, b) = value.to_str().ok()?.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// One entry of the activity list (Strava's `SummaryActivity`): the fields kept.
#[derive(Debug, Deserialize)]
struct Activity {
    id: u64,
    /// UTC, RFC 3339.
    start_date: String,
    /// Seconds.
    elapsed_time: Option<f64>,
    /// Meters.
    distance: Option<f64>,
    /// Meters.
    total_elevation_gain: Option<f64>,
    /// Only `DetailedActivity` has it; kept should a list ever carry it.
    calories: Option<f64>,
    average_heartrate: Option<f64>,
    max_heartrate: Option<f64>,
    average_watts: Option<f64>,
    /// Entered by hand: no streams to fetch.
    #[serde(default)]
    manual: bool,
}

/// A listed activity with its start parsed.
#[derive(Debug)]
struct Listed {
    activity: Activity,
    start: Nanos,
}

impl Listed {
    /// Reads one list entry.
    fn parse(item: &Value, now: Nanos) -> Result<Listed, String> {
        let activity = Activity::deserialize(item).map_err(|e| e.to_string())?;
        let start = parse_rfc3339(&activity.start_date).map_err(|e| format!("start_date: {e}"))?;
        check_time(start, now).map_err(|e| format!("start_date: {e}"))?;
        Ok(Listed { activity, start })
    }

    fn start_s(&self) -> i64 {
        self.start.div_euclid(NANOS_PER_SECOND)
    }

    /// The `activity` reading. A field out of range (a heart-rate strap's nonsense average)
    /// is dropped alone, so it does not cost the activity its duration and distance.
    fn summary(&self, now: Nanos) -> Option<Reading> {
        let a = &self.activity;
        let fields = [
            ("duration_s", a.elapsed_time),
            ("distance_m", a.distance),
            ("elevation_gain_m", a.total_elevation_gain),
            ("kcal", a.calories),
            ("avg_bpm", a.average_heartrate),
            ("max_bpm", a.max_heartrate),
            ("avg_watts", a.average_watts),
        ];
        let mut kept = Vec::new();
        for (name, value) in fields {
            let Some(value) = value else { continue };
            match validate_known(Metric::Activity, self.start, now, &[(name, value)]) {
                Ok(()) => kept.push((name, value)),
                Err(e) => tracing::warn!(activity = a.id, error = %e, "Activity field refused; skipped."),
            }
        }
        if kept.is_empty() {
            return None;
        }
        Reading::known(Metric::Activity, self.start, now, kept)
            .inspect_err(|e| tracing::warn!(activity = a.id, error = %e, "Activity refused; skipped."))
            .ok()
    }
}

/// An activity's streams by type: the `data` arrays, index `i` of each the same sample.
#[derive(Debug, Default)]
struct Streams(BTreeMap<String, Vec<Value>>);

impl Streams {
    /// Reads the answer of `GET /activities/{id}/streams`: with `key_by_type=true` an object
    /// keyed by stream type (`{"time": {"data": […], …}, …}`); the API reference's example
    /// shows a list of typed streams instead (`[{"type": "distance", "data": […]}]`), so that
    /// is read too.
    fn parse(body: Value) -> Result<Streams, String> {
        fn data(stream: Value, kind: &str) -> Result<Vec<Value>, String> {
            match stream {
                Value::Object(mut fields) => match fields.remove("data") {
                    Some(Value::Array(data)) => Ok(data),
                    _ => Err(format!("the {kind} stream has no data list")),
                },
                _ => Err(format!("the {kind} stream is not an object")),
            }
        }
        let mut streams = BTreeMap::new();
        match body {
            Value::Object(by_type) => {
                for (kind, stream) in by_type {
                    let data = data(stream, &kind)?;
                    streams.insert(kind, data);
                }
            }
            Value::Array(list) => {
                for stream in list {
                    let kind = stream
                        .get("type")
                        .and_then(Value::as_str)
                        .ok_or("a stream without a type")?
                        .to_owned();
                    let data = data(stream, &kind)?;
                    streams.insert(kind, data);
                }
            }
            _ => return Err("the streams are neither an object nor a list".into()),
        }
        Ok(Streams(streams))
    }

    fn number(&self, kind: &str, i: usize) -> Option<f64> {
        self.0.get(kind)?.get(i)?.as_f64()
    }

    fn latlng(&self, i: usize) -> Option<(f64, f64)> {
        match self.0.get("latlng")?.get(i)?.as_array()?.as_slice() {
            [lat, lon] => Some((lat.as_f64()?, lon.as_f64()?)),
            _ => None,
        }
    }

    /// The samples as readings, each at `start` plus its `time` offset (seconds), and how
    /// many were refused (out of range, or without a time). A missing value (`null`, or a
    /// stream the activity does not have) is no sample.
    fn samples(&self, start: Nanos, now: Nanos) -> (Vec<Reading>, Vec<String>) {
        let mut readings = Vec::new();
        let mut refused = Vec::new();
        let len = self.0.get("time").map_or(0, Vec::len);
        for i in 0..len {
            let Some(offset) = self.number("time", i) else {
                refused.push(format!("sample {i} has no time"));
                continue;
            };
            let time = start.saturating_add((offset * 1e9).round() as Nanos);
            let mut candidates: Vec<(Metric, Vec<(&str, f64)>)> = Vec::new();
            if let Some((lat, lon)) = self.latlng(i) {
                let mut fields = vec![("lat", lat), ("lon", lon)];
                fields.extend(self.number("altitude", i).map(|v| ("alt", v)));
                fields.extend(self.number("velocity_smooth", i).map(|v| ("speed", v)));
                candidates.push((Metric::Gps, fields));
            }
            for (kind, metric, field) in [
                ("heartrate", Metric::HeartRate, "bpm"),
                ("watts", Metric::Power, "watts"),
                ("cadence", Metric::Cadence, "rpm"),
                ("distance", Metric::Distance, "meters"),
            ] {
                if let Some(value) = self.number(kind, i) {
                    candidates.push((metric, vec![(field, value)]));
                }
            }
            for (metric, fields) in candidates {
                match Reading::known(metric, time, now, fields) {
                    Ok(reading) => readings.push(reading),
                    Err(e) => refused.push(format!("sample {i}: {e}")),
                }
            }
        }
        (readings, refused)
    }
}

/// Takes one string setting out of the table.
fn setting(table: &mut toml::Table, key: &str) -> Result<Option<String>, String> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) if s.trim().is_empty() => Err(format!("{key} is empty")),
        Some(toml::Value::String(s)) => Ok(Some(s.trim().to_owned())),
        // Strava's settings page shows the client id as a number.
        Some(toml::Value::Integer(n)) if key == "client_id" => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{key} must be a string, not a {}", other.type_str())),
    }
}

fn url(key: &str, value: Option<String>, default: &str) -> Result<String, String> {
    let value = value.unwrap_or_else(|| default.to_owned());
    match reqwest::Url::parse(&value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(value.trim_end_matches('/').to_owned()),
        Ok(_) => Err(format!("{key} {value:?} is not an http(s) URL")),
        Err(e) => Err(format!("{key} {value:?}: {e}")),
    }
}

impl Strava {
    /// Reads the kind's settings.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn from_config(value: toml::Value) -> Result<Self, String> {
        let toml::Value::Table(mut table) = value else {
            return Err("the settings are not a table".into());
        };
        let mut required = |key: &str| setting(&mut table, key)?.ok_or_else(|| format!("{key} is missing"));
        let client_id = required("client_id")?;
        let client_secret = required("client_secret")?;
        let refresh_token = required("refresh_token")?;
        let api_url = url("api_url", setting(&mut table, "api_url")?, API_URL)?;
        let token_url = url("token_url", setting(&mut table, "token_url")?, TOKEN_URL)?;
        let since = setting(&mut table, "since")?
            .map(|s| parse_rfc3339(&s).map_err(|e| format!("since: {e}")))
            .transpose()?;
        if let Some(unknown) = table.keys().next() {
            return Err(format!("unknown field `{unknown}`, expected one of {}", SETTINGS.join(", ")));
        }
        let http = super::http_client()?;
        let oauth = OAuth::new(
            http.clone(),
            &token_url,
            &client_id,
            &client_secret,
            &refresh_token,
            ClientAuth::Form,
        );
        Ok(Strava { http, oauth, api_url, since })
    }

    /// Its OAuth client.
    pub(super) fn oauth(&self) -> &OAuth {
        &self.oauth
    }

    /// One run.
    pub(super) async fn run(&self, state: &mut Value) -> Result<Vec<Reading>, Failure> {
        let now = now_nanos();
        let now_s = now.div_euclid(NANOS_PER_SECOND);
        let progress: Progress = serde_json::from_value(state.clone()).unwrap_or_default();
        if let Some(resume_at) = progress.resume_at.filter(|&at| at > now_s) {
            // Asking now would only be answered 429 and still count against the day.
            return Err(Failure::RateLimited(Some(Duration::from_secs((resume_at - now_s).unsigned_abs()))));
        }
        let after = progress.after.unwrap_or_else(|| {
            let reach = DEFAULT_REACH.as_nanos() as Nanos;
            self.since.unwrap_or(now - reach).div_euclid(NANOS_PER_SECOND)
        });
        let mut spent = None;

        let mut listed = Vec::new();
        for page in 1.. {
            let url =
                format!("{}/athlete/activities?after={after}&page={page}&per_page={PER_PAGE}", self.api_url);
            let response = self.get(state, &url, &mut spent).await?;
            if let Some(failure) = failure(&response) {
                return Err(failure);
            }
            let items: Vec<Value> = json(response).await?;
            for item in &items {
                match Listed::parse(item, now) {
                    Ok(activity) => listed.push(activity),
                    Err(e) => {
                        tracing::warn!(item = %item, error = %e, "Strava activity unreadable; skipped.")
                    }
                }
            }
            if items.len() < PER_PAGE || spent.is_some() {
                // Cut short by the rate limit, the list is still a prefix of what is new:
                // with `after`, Strava lists the oldest first.
                break;
            }
        }
        listed.retain(|a| a.start_s() > after);
        listed.sort_by_key(|a| (a.start, a.activity.id));

        let mut readings = Vec::new();
        let mut newest = None;
        for activity in &listed {
            if spent.is_some() || readings.len() >= MAX_READINGS_PER_RUN {
                break;
            }
            if !activity.activity.manual {
                readings.extend(self.streams(state, activity, now, &mut spent).await?);
            }
            readings.extend(activity.summary(now));
            newest = Some(activity.start_s());
        }

        let left = listed.len() - listed.iter().filter(|a| Some(a.start_s()) <= newest).count();
        if let Some(window) = spent {
            let resume_at = window.resets_at(now_s);
            tracing::info!(
                window = ?window, resume_at = %format_rfc3339(resume_at * NANOS_PER_SECOND), left,
                "Strava's rate limit is used up; the run stops here and keeps what it fetched."
            );
            put(state, "resume_at", Some(resume_at));
        } else {
            put(state, "resume_at", None);
            if left > 0 {
                tracing::info!(left, "Enough readings for one run; the next continues.");
            }
        }
        if let Some(newest) = newest {
            put(state, "after", Some(newest));
        }
        Ok(readings)
    }

    /// The samples of one activity. No streams (`404`: it has none, or was deleted since it
    /// was listed) is no samples, not a failure: asking again would never change that.
    async fn streams(
        &self,
        state: &mut Value,
        activity: &Listed,
        now: Nanos,
        spent: &mut Option<Window>,
    ) -> Result<Vec<Reading>, Failure> {
        let id = activity.activity.id;
        let url = format!("{}/activities/{id}/streams?keys={STREAM_KEYS}&key_by_type=true", self.api_url);
        let response = self.get(state, &url, spent).await?;
        if response.status() == StatusCode::NOT_FOUND {
            tracing::warn!(activity = id, "Strava has no streams for this activity; its summary only.");
            return Ok(Vec::new());
        }
        if let Some(failure) = failure(&response) {
            return Err(failure);
        }
        let streams = Streams::parse(json(response).await?)
            .map_err(|e| Failure::BadResponse(format!("streams of activity {id}: {e}")))?;
        if !streams.0.contains_key("time") && !streams.0.is_empty() {
            tracing::warn!(activity = id, "Strava's streams have no time stream; its summary only.");
        }
        let (samples, refused) = streams.samples(activity.start, now);
        if let Some(first) = refused.first() {
            tracing::warn!(activity = id, refused = refused.len(), first = %first, "Samples refused; skipped.");
        }
        Ok(samples)
    }

    /// A GET with the current access token. A 401 means the token died before its time
    /// (revoked, or a clock off): one refresh, one retry. Notes in `spent` the window the
    /// answer says is used up.
    async fn get(
        &self,
        state: &mut Value,
        url: &str,
        spent: &mut Option<Window>,
    ) -> Result<reqwest::Response, Failure> {
        let token = self.oauth.access_token(state).await?;
        let mut response = self.send(url, &token).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            tracing::info!("Strava refused the access token; refreshing it.");
            let token = self.oauth.refresh(state).await?;
            response = self.send(url, &token).await?;
        }
        *spent = (*spent).max(Window::spent(response.headers()));
        Ok(response)
    }

    async fn send(&self, url: &str, token: &str) -> Result<reqwest::Response, Failure> {
        self.http.get(url).bearer_auth(token).send().await.map_err(|e| Failure::Network(e.to_string()))
    }
}

/// The failure an answer means. A 429 without `Retry-After` waits for its window to reset.
fn failure(response: &reqwest::Response) -> Option<Failure> {
    match Failure::of_status(response)? {
        Failure::RateLimited(None) => {
            let now = now_nanos().div_euclid(NANOS_PER_SECOND);
            let window = Window::spent(response.headers()).unwrap_or(Window::Quarter);
            let wait = (window.resets_at(now) - now).unsigned_abs();
            Some(Failure::RateLimited(Some(Duration::from_secs(wait))))
        }
        other => Some(other),
    }
}

async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, Failure> {
    let body = response.bytes().await.map_err(|e| Failure::Network(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| Failure::BadResponse(format!("not the JSON expected: {e}")))
}

/// Sets (or, with `None`, removes) one progress entry, leaving `"oauth"` as it is.
fn put(state: &mut Value, key: &str, value: Option<i64>) {
    if !state.is_object() {
        *state = Value::Object(serde_json::Map::new());
    }
    if let Some(object) = state.as_object_mut() {
        match value {
            Some(v) => object.insert(key.to_owned(), v.into()),
            None => object.remove(key),
        };
    }
}

#[cfg(test)]
mod tests;
