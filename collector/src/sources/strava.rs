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
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-11-27T10:00:00Z.
    const NOW: Nanos = 1_795_773_600_000_000_000;
    /// "Happy Friday"'s start_date, 2018-05-02T12:15:09Z.
    const HAPPY_FRIDAY: Nanos = 1_525_263_309_000_000_000;

    fn config(extra: &str) -> Result<Strava, String> {
        let text = format!("client_id = \"4242\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n{extra}");
        Strava::from_config(toml::from_str::<toml::Value>(&text).expect("toml"))
    }

    /// The two activities of the API reference's example for `getLoggedInAthleteActivities`.
    fn documented_activities() -> Value {
        serde_json::from_str(
            r#"[ {
  "resource_state" : 2, "athlete" : { "id" : 134815, "resource_state" : 1 },
  "name" : "Happy Friday", "distance" : 24931.4, "moving_time" : 4500, "elapsed_time" : 4500,
  "total_elevation_gain" : 0, "type" : "Ride", "sport_type" : "MountainBikeRide", "workout_type" : null,
  "id" : 154504250376823, "external_id" : "garmin_push_12345678987654321", "upload_id" : 987654321234567891234,
  "start_date" : "2018-05-02T12:15:09Z", "start_date_local" : "2018-05-02T05:15:09Z",
  "timezone" : "(GMT-08:00) America/Los_Angeles", "utc_offset" : -25200, "start_latlng" : null, "end_latlng" : null,
  "location_city" : null, "location_state" : null, "location_country" : "United States",
  "achievement_count" : 0, "kudos_count" : 3, "comment_count" : 1, "athlete_count" : 1, "photo_count" : 0,
  "map" : { "id" : "a12345678987654321", "summary_polyline" : null, "resource_state" : 2 },
  "trainer" : true, "commute" : false, "manual" : false, "private" : false, "flagged" : false,
  "gear_id" : "b12345678987654321", "from_accepted_tag" : false, "average_speed" : 5.54, "max_speed" : 11,
  "average_cadence" : 67.1, "average_watts" : 175.3, "weighted_average_watts" : 210, "kilojoules" : 788.7,
  "device_watts" : true, "has_heartrate" : true, "average_heartrate" : 140.3, "max_heartrate" : 178,
  "max_watts" : 406, "pr_count" : 0, "total_photo_count" : 1, "has_kudoed" : false, "suffer_score" : 82
}, {
  "resource_state" : 2, "athlete" : { "id" : 167560, "resource_state" : 1 },
  "name" : "Bondcliff", "distance" : 23676.5, "moving_time" : 5400, "elapsed_time" : 5400,
  "total_elevation_gain" : 0, "type" : "Ride", "sport_type" : "MountainBikeRide", "workout_type" : null,
  "id" : 1234567809, "external_id" : "garmin_push_12345678987654321", "upload_id" : 1234567819,
  "start_date" : "2018-04-30T12:35:51Z", "start_date_local" : "2018-04-30T05:35:51Z",
  "timezone" : "(GMT-08:00) America/Los_Angeles", "utc_offset" : -25200, "start_latlng" : null, "end_latlng" : null,
  "location_city" : null, "location_state" : null, "location_country" : "United States",
  "achievement_count" : 0, "kudos_count" : 4, "comment_count" : 0, "athlete_count" : 1, "photo_count" : 0,
  "map" : { "id" : "a12345689", "summary_polyline" : null, "resource_state" : 2 },
  "trainer" : true, "commute" : false, "manual" : false, "private" : false, "flagged" : false,
  "gear_id" : "b12345678912343", "from_accepted_tag" : false, "average_speed" : 4.385, "max_speed" : 8.8,
  "average_cadence" : 69.8, "average_watts" : 200, "weighted_average_watts" : 214, "kilojoules" : 1080,
  "device_watts" : true, "has_heartrate" : true, "average_heartrate" : 152.4, "max_heartrate" : 183,
  "max_watts" : 403, "pr_count" : 0, "total_photo_count" : 1, "has_kudoed" : false, "suffer_score" : 162
} ]"#,
        )
        .expect("the documented example is JSON")
    }

    #[test]
    fn settings_are_checked_with_messages_that_name_the_key() {
        let strava = config("").expect("valid");
        assert_eq!(strava.api_url, API_URL);
        assert_eq!(strava.since, None);
        let with_number = Strava::from_config(
            toml::from_str("client_id = 4242\nclient_secret = \"s\"\nrefresh_token = \"r\"").expect("toml"),
        );
        assert!(with_number.is_ok(), "Strava shows the client id as a number: {with_number:?}");
        let cases = [
            ("client_secret = \"s\"\nrefresh_token = \"r\"", "client_id is missing"),
            ("client_id = \"1\"\nclient_secret = \"\"\nrefresh_token = \"r\"", "client_secret is empty"),
            ("client_id = \"1\"\nclient_secret = \"s\"\nrefresh_token = 7", "refresh_token must be a string"),
            ("client_id = \"1\"\nclient_secret = \"s\"", "refresh_token is missing"),
        ];
        for (text, message) in cases {
            let error = Strava::from_config(toml::from_str(text).expect("toml")).expect_err(text);
            assert!(error.contains(message), "{text}: {error:?} does not say {message:?}");
        }
        let cases = [
            ("since = \"last month\"", "since: invalid time \"last month\""),
            ("api_url = \"strava\"", "api_url \"strava\""),
            ("token_url = \"ftp://strava.example/token\"", "token_url \"ftp://strava.example/token\" is not"),
            ("colour = 1", "unknown field `colour`"),
        ];
        for (extra, message) in cases {
            let error = config(extra).expect_err(extra);
            assert!(error.contains(message), "{extra}: {error:?} does not say {message:?}");
        }
        let local = config("api_url = \"http://127.0.0.1:9/api/v3/\"\nsince = \"2018-01-01T00:00:00Z\"")
            .expect("valid");
        assert_eq!(local.api_url, "http://127.0.0.1:9/api/v3", "no double slash in the paths");
        assert_eq!(local.since, Some(1_514_764_800_000_000_000));
    }

    #[test]
    fn the_documented_activity_list_becomes_activity_readings() {
        let body = documented_activities();
        let listed: Vec<Listed> = body
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| Listed::parse(item, NOW).expect("readable"))
            .collect();
        assert_eq!(listed[0].activity.id, 154_504_250_376_823);
        assert_eq!(listed[0].start, HAPPY_FRIDAY, "start_date is UTC");
        assert_eq!(listed[0].start_s(), 1_525_263_309);
        let summary = listed[0].summary(NOW).expect("a reading");
        assert_eq!(summary.metric(), Some(Metric::Activity));
        assert_eq!(summary.time(), HAPPY_FRIDAY);
        assert_eq!(summary.float("duration_s"), Some(4500.0));
        assert_eq!(summary.float("distance_m"), Some(24931.4));
        assert_eq!(summary.float("elevation_gain_m"), Some(0.0));
        assert_eq!(summary.float("avg_bpm"), Some(140.3));
        assert_eq!(summary.float("max_bpm"), Some(178.0));
        assert_eq!(summary.float("avg_watts"), Some(175.3));
        assert_eq!(summary.float("kcal"), None, "a summary has no calories");
        assert_eq!(listed[1].summary(NOW).and_then(|r| r.float("avg_watts")), Some(200.0));

        let mut detailed = body[0].clone();
        detailed["calories"] = json!(870.2);
        detailed["average_heartrate"] = json!(4);
        let summary = Listed::parse(&detailed, NOW).expect("readable").summary(NOW).expect("a reading");
        assert_eq!(summary.float("kcal"), Some(870.2));
        assert_eq!(summary.float("avg_bpm"), None, "the field out of range goes alone");
        assert_eq!(summary.float("duration_s"), Some(4500.0));

        let mut undated = body[0].clone();
        undated["start_date"] = json!("yesterday");
        assert!(Listed::parse(&undated, NOW).is_err_and(|e| e.contains("start_date")));
        let mut ahead = body[0].clone();
        ahead["start_date"] = json!("2026-11-28T10:00:00Z");
        assert!(Listed::parse(&ahead, NOW).is_err_and(|e| e.contains("future")));
    }

    #[test]
    fn streams_keyed_by_type_become_samples_at_start_plus_time() {
        let body = json!({
            "time": { "data": [0, 10, 20], "series_type": "distance", "original_size": 3, "resolution": "high" },
            "latlng": { "data": [[38.603734, -122.864112], [38.608798, -122.867714], [38.604691, -122.88178]],
                        "series_type": "distance", "original_size": 3, "resolution": "high" },
            "altitude": { "data": [101.5, 102.0, 102.4], "series_type": "distance", "original_size": 3, "resolution": "high" },
            "velocity_smooth": { "data": [5.5, 6.1, 0.0], "series_type": "distance", "original_size": 3, "resolution": "high" },
            "heartrate": { "data": [131, 0, 140], "series_type": "distance", "original_size": 3, "resolution": "high" },
            "watts": { "data": [212, null, 198], "series_type": "distance", "original_size": 3, "resolution": "high" },
            "cadence": { "data": [88, 90, 91], "series_type": "distance", "original_size": 3, "resolution": "high" },
            "distance": { "data": [2.9, 5.8, 8.5], "series_type": "distance", "original_size": 3, "resolution": "high" }
        });
        let streams = Streams::parse(body).expect("readable");
        let (samples, refused) = streams.samples(HAPPY_FRIDAY, NOW);
        let of = |metric: Metric| samples.iter().filter(|r| r.metric() == Some(metric)).collect::<Vec<_>>();
        let gps = of(Metric::Gps);
        assert_eq!(
            gps.iter().map(|r| r.time()).collect::<Vec<_>>(),
            [HAPPY_FRIDAY, HAPPY_FRIDAY + 10_000_000_000, HAPPY_FRIDAY + 20_000_000_000]
        );
        assert_eq!(gps[1].float("lat"), Some(38.608798));
        assert_eq!(gps[1].float("lon"), Some(-122.867714));
        assert_eq!(gps[1].float("alt"), Some(102.0));
        assert_eq!(gps[1].float("speed"), Some(6.1));
        assert_eq!(of(Metric::HeartRate).len(), 2, "a strap's 0 is refused");
        assert_eq!(of(Metric::Power).len(), 2, "null is no sample");
        assert_eq!(of(Metric::Power)[1].time(), HAPPY_FRIDAY + 20_000_000_000);
        assert_eq!(of(Metric::Cadence)[2].float("rpm"), Some(91.0));
        assert_eq!(of(Metric::Distance)[0].float("meters"), Some(2.9));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("bpm 0 is out of range"), "{refused:?}");
    }

    #[test]
    fn the_reference_example_list_of_typed_streams_is_read_too() {
        // The API reference's example, plus the time stream asked for beside it.
        let body = json!([ {
            "type" : "distance",
            "data" : [ 2.9, 5.8, 8.5, 11.7, 15, 19, 23.2, 28, 32.8, 38.1, 43.8, 49.5 ],
            "series_type" : "distance", "original_size" : 12, "resolution" : "high"
        }, {
            "type" : "time", "data" : [ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ],
            "series_type" : "distance", "original_size" : 12, "resolution" : "high"
        } ]);
        let (samples, refused) = Streams::parse(body).expect("readable").samples(HAPPY_FRIDAY, NOW);
        assert!(refused.is_empty());
        assert_eq!(samples.len(), 12);
        assert!(samples.iter().all(|r| r.metric() == Some(Metric::Distance)));
        assert_eq!(samples[11].float("meters"), Some(49.5));
        assert_eq!(samples[11].time(), HAPPY_FRIDAY + 11_000_000_000);

        assert!(Streams::parse(json!({ "time": [0, 1] })).is_err_and(|e| e.contains("time stream")));
        assert!(Streams::parse(json!("no")).is_err());
        let (samples, _) = Streams::parse(json!({})).expect("no streams").samples(HAPPY_FRIDAY, NOW);
        assert!(samples.is_empty());
    }

    #[test]
    fn rate_limit_headers_say_which_window_is_used_up() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, reqwest::header::HeaderValue::from_static(v));
            }
            map
        };
        // The documented examples: a successful answer and a rate-limited one.
        let ok = headers(&[("X-Ratelimit-Limit", "600,30000"), ("X-Ratelimit-Usage", "314,27536")]);
        assert_eq!(Window::spent(&ok), None);
        let limited = headers(&[("X-Ratelimit-Limit", "600,30000"), ("X-Ratelimit-Usage", "692,29300")]);
        assert_eq!(Window::spent(&limited), Some(Window::Quarter));
        let last = headers(&[("x-ratelimit-limit", "100,1000"), ("x-ratelimit-usage", "100,412")]);
        assert_eq!(Window::spent(&last), Some(Window::Quarter), "the 100th request used the last one");
        let day = headers(&[("x-ratelimit-limit", "100,1000"), ("x-ratelimit-usage", "3,1000")]);
        assert_eq!(Window::spent(&day), Some(Window::Day));
        let reads = headers(&[
            ("x-ratelimit-limit", "200,2000"),
            ("x-ratelimit-usage", "100,500"),
            ("x-readratelimit-limit", "100,1000"),
            ("x-readratelimit-usage", "100,500"),
        ]);
        assert_eq!(Window::spent(&reads), Some(Window::Quarter), "the read limit counts");
        assert_eq!(Window::spent(&headers(&[("x-ratelimit-usage", "100,1000")])), None);
        let garbled = headers(&[("x-ratelimit-limit", "100"), ("x-ratelimit-usage", "a,b")]);
        assert_eq!(Window::spent(&garbled), None);

        let now = NOW / NANOS_PER_SECOND + 7 * 60 + 3; // 10:07:03
        assert_eq!(Window::Quarter.resets_at(now), NOW / NANOS_PER_SECOND + 15 * 60);
        assert_eq!(Window::Day.resets_at(now), 1_795_824_000, "midnight UTC");
    }

    /// A Strava that lists the documented activities and a third, oldest first, and counts
    /// each request against a 15-minute window that has room for three more.
    async fn budget_server() -> String {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let used = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(97));
        let limited = move || {
            let n = used.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            [("x-ratelimit-limit", "100,1000".to_owned()), ("x-ratelimit-usage", format!("{n},{n}"))]
        };
        let (list, streams) = (limited.clone(), limited);
        let mut activities = documented_activities();
        let list_of = activities.as_array_mut().expect("a list");
        list_of.reverse();
        let mut later = list_of[1].clone();
        later["id"] = json!(3);
        later["start_date"] = json!("2018-05-03T08:00:00Z");
        list_of.push(later);
        let app = axum::Router::new()
            .route(
                "/oauth/token",
                post(|| async {
                    axum::Json(json!({ "token_type": "Bearer", "access_token": "a", "refresh_token": "r2",
                                       "expires_at": 4_102_444_800_i64, "expires_in": 21600 }))
                }),
            )
            .route("/athlete/activities", get(move || async move { (list(), axum::Json(activities)) }))
            .route(
                "/activities/{id}/streams",
                get(move || async move {
                    (
                        streams(),
                        axum::Json(
                            json!({ "time": { "data": [0, 1] }, "heartrate": { "data": [120, 121] } }),
                        ),
                    )
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[tokio::test]
    async fn a_used_up_window_stops_the_run_early_and_keeps_what_was_fetched() {
        let base = budget_server().await;
        let strava = config(&format!(
            "api_url = \"{base}\"\ntoken_url = \"{base}/oauth/token\"\nsince = \"2018-01-01T00:00:00Z\""
        ))
        .expect("valid");
        let mut state = Value::Null;

        // 98 used after the list, 99 after Bondcliff's streams: room for one more, Happy
        // Friday's, which uses the window up. Both are kept; the third waits.
        let readings = strava.run(&mut state).await.expect("a run");
        assert_eq!(readings.iter().filter(|r| r.metric() == Some(Metric::Activity)).count(), 2);
        assert_eq!(readings.iter().filter(|r| r.metric() == Some(Metric::HeartRate)).count(), 4);
        assert_eq!(state["after"], 1_525_263_309, "the newest stored, Happy Friday");
        assert_eq!(state["oauth"]["refresh_token"], "r2", "the rotated token is in the state");
        let resume_at = state["resume_at"].as_i64().expect("a resume time");
        assert_eq!(resume_at % 900, 0, "at a quarter hour");

        // Until then, no request at all.
        match strava.run(&mut state).await {
            Err(Failure::RateLimited(Some(wait))) => assert!(wait <= Duration::from_secs(900), "{wait:?}"),
            other => panic!("expected to wait for the window: {other:?}"),
        }
    }
}
