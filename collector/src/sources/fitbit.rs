//! Fitbit's Web API: intraday heart rate, sleep logs, SpO2, HRV and activities of one user,
//! fetched with an OAuth 2.0 refresh token (a "Personal" app sees its owner's intraday data):
//!
//! ```toml
//! [[source]]
//! name = "charge6"
//! kind = "fitbit"
//! rider = "alice"
//! every = "15m"
//! client_id = "23ABCD"
//! client_secret = "${FITBIT_CLIENT_SECRET}"
//! refresh_token = "${FITBIT_REFRESH_TOKEN}"   # the first one; rotated ones live in the state
//! days_back = 7                               # how far back the first run reaches
//! resources = ["heart", "sleep", "spo2", "hrv", "activities"]
//! ```
//!
//! **Time zones.** Fitbit writes times in the user's local time without an offset, so every
//! run first reads the profile's `offsetFromUTCMillis` and converts with it. That is the
//! offset of today: samples from before a daylight-saving change are an hour off (the
//! collector has no time-zone database to do better). Daily values (SpO2, HRV) are stored at
//! noon of their local date, which stays that date in UTC for any offset up to ±12 h; today's
//! is only stored once that noon has passed.
//!
//! **Progress.** The state keeps, per resource, the last local date fetched. A run fetches
//! from that date (again: a day's data keeps arriving until the tracker has synced after
//! midnight) up to today; the first run from today − `days_back`. Activities are listed from
//! that date on (`afterDate`), page by page, to the end. Intraday samples not newer
//! than the newest one already stored are dropped, so that fetching today again every run
//! does not rewrite a whole day of points (and announce it as late each time).
//!
//! **Rate limit.** Fitbit allows 150 requests an hour per user. A run makes one request for
//! the profile, one per date and dated resource, at most [`MAX_DATES_PER_RUN`] dates each,
//! and at most [`MAX_ACTIVITY_PAGES`] pages of activities: 1 + 4 × 7 + 3 = 32 while
//! catching up, so four runs an hour (`every = "15m"`) stay within 128. Caught up, a run
//! makes 1 + 4 + 1 = 6 (10 in the first run after midnight, which fetches yesterday a last
//! time), so even `every = "5m"` makes 72 an hour (76 in the hour after midnight); an expired
//! access token adds one retried request every eight hours. A 429 postpones the next run
//! until Fitbit's `Retry-After` (or `Fitbit-Rate-Limit-Reset`).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;
use velometry_core::reading::{Metric, Reading};
use velometry_core::time::{now_nanos, parse_rfc3339, Nanos};

use self::responses::{activities, heart, hrv, sleep, spo2};
use super::oauth::{ClientAuth, OAuth};
use super::Failure;

mod responses;

/// The `source` tag of its readings.
pub const KIND: &str = "fitbit";

/// Dates fetched per run and dated resource (see the module's rate-limit arithmetic).
pub const MAX_DATES_PER_RUN: usize = 7;
/// Pages of the activity list (100 activities each) fetched per run.
pub const MAX_ACTIVITY_PAGES: usize = 3;

const DEFAULT_API_URL: &str = "https://api.fitbit.com";
const DEFAULT_TOKEN_URL: &str = "https://api.fitbit.com/oauth2/token";
const DEFAULT_DAYS_BACK: u32 = 7;
const MAX_DAYS_BACK: u32 = 365;
const KEYS: &str = "client_id, client_secret, refresh_token, api_url, token_url, days_back, resources";
const NANOS_PER_MILLI: i64 = 1_000_000;

/// The state key of the newest intraday heart-rate sample stored (ns).
const HEART_NEWEST: &str = "heart_newest";

/// What a source of this kind fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Heart,
    Sleep,
    Spo2,
    Hrv,
    Activities,
}

impl Resource {
    const ALL: [Resource; 5] =
        [Resource::Heart, Resource::Sleep, Resource::Spo2, Resource::Hrv, Resource::Activities];

    /// Its name in the sources file, and its key in the state.
    fn name(self) -> &'static str {
        match self {
            Resource::Heart => "heart",
            Resource::Sleep => "sleep",
            Resource::Spo2 => "spo2",
            Resource::Hrv => "hrv",
            Resource::Activities => "activities",
        }
    }

    /// The request of one date, for the resources fetched date by date.
    fn path(self, day: NaiveDate) -> String {
        let date = day.format("%Y-%m-%d");
        match self {
            Resource::Heart => format!("/1/user/-/activities/heart/date/{date}/1d/1sec.json"),
            Resource::Sleep => format!("/1.2/user/-/sleep/date/{date}.json"),
            Resource::Spo2 => format!("/1/user/-/spo2/date/{date}.json"),
            Resource::Hrv => format!("/1/user/-/hrv/date/{date}.json"),
            Resource::Activities => activities_path(day),
        }
    }
}

fn activities_path(after: NaiveDate) -> String {
    format!(
        "/1/user/-/activities/list.json?afterDate={}&sort=asc&offset=0&limit=100",
        after.format("%Y-%m-%d")
    )
}

/// A configured Fitbit poller.
pub struct Fitbit {
    http: reqwest::Client,
    oauth: OAuth,
    /// Without a trailing slash.
    api_url: String,
    days_back: u32,
    resources: Vec<Resource>,
}

// By hand: the OAuth client holds the client secret.
impl fmt::Debug for Fitbit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fitbit")
            .field("api_url", &self.api_url)
            .field("days_back", &self.days_back)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

/// Takes `key` from the settings as a `T`, with a message naming the key.
fn take<T: serde::de::DeserializeOwned>(table: &mut toml::Table, key: &str) -> Result<Option<T>, String> {
    table
        .remove(key)
        .map(|v| v.try_into().map_err(|e: toml::de::Error| format!("{key}: {}", e.message())))
        .transpose()
}

fn required_text(table: &mut toml::Table, key: &str) -> Result<String, String> {
    let value: String = take(table, key)?.ok_or_else(|| format!("{key} is missing"))?;
    if value.trim().is_empty() {
        return Err(format!("{key} is empty"));
    }
    Ok(value)
}

fn url(table: &mut toml::Table, key: &str, default: &str) -> Result<String, String> {
    let value: String = take(table, key)?.unwrap_or_else(|| default.to_owned());
    let parsed = reqwest::Url::parse(&value).map_err(|e| format!("{key} {value:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{key} {value:?} is not an http(s) URL"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

impl Fitbit {
    /// Reads the kind's settings.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn from_config(value: toml::Value) -> Result<Self, String> {
        let toml::Value::Table(mut table) = value else {
            return Err("the settings are not a table".into());
        };
        let client_id = required_text(&mut table, "client_id")?;
        let client_secret = required_text(&mut table, "client_secret")?;
        let refresh_token = required_text(&mut table, "refresh_token")?;
        let api_url = url(&mut table, "api_url", DEFAULT_API_URL)?;
        let token_url = url(&mut table, "token_url", DEFAULT_TOKEN_URL)?;
        let days_back: i64 = take(&mut table, "days_back")?.unwrap_or(i64::from(DEFAULT_DAYS_BACK));
        let days_back = u32::try_from(days_back)
            .ok()
            .filter(|d| *d <= MAX_DAYS_BACK)
            .ok_or_else(|| format!("days_back {days_back} is not between 0 and {MAX_DAYS_BACK}"))?;
        let resources = match take::<Vec<String>>(&mut table, "resources")? {
            None => Resource::ALL.to_vec(),
            Some(names) => {
                let mut resources = Vec::new();
                for name in &names {
                    let resource = Resource::ALL.into_iter().find(|r| r.name() == name).ok_or_else(|| {
                        format!("resources: {name:?} is not one of heart, sleep, spo2, hrv, activities")
                    })?;
                    if !resources.contains(&resource) {
                        resources.push(resource);
                    }
                }
                if resources.is_empty() {
                    return Err("resources lists nothing to fetch".into());
                }
                resources
            }
        };
        if let Some(unknown) = table.keys().next() {
            return Err(format!("unknown key `{unknown}` (a fitbit source knows {KEYS})"));
        }
        let http = super::http_client()?;
        let oauth = OAuth::new(
            http.clone(),
            &token_url,
            &client_id,
            &client_secret,
            &refresh_token,
            ClientAuth::Basic,
        );
        Ok(Fitbit { http, oauth, api_url, days_back, resources })
    }

    /// Its OAuth client.
    pub(super) fn oauth(&self) -> &OAuth {
        &self.oauth
    }

    /// One run: the profile's offset, then every resource from where the last run stopped.
    pub(super) async fn run(&self, state: &mut Value) -> Result<Vec<Reading>, Failure> {
        let mut api = Api { fitbit: self, state };
        let profile = api.get("/1/user/-/profile.json").await?;
        let offset_ms = offset_ms(&profile)
            .ok_or_else(|| Failure::BadResponse("no user.offsetFromUTCMillis in the profile".into()))?;
        let now = now_nanos();
        let today = local_date(now, offset_ms).ok_or_else(|| {
            Failure::BadResponse(format!("offsetFromUTCMillis {offset_ms} is not an offset"))
        })?;
        let first = today.checked_sub_days(chrono::Days::new(u64::from(self.days_back))).unwrap_or(today);
        let mut readings = Vec::new();
        for &resource in &self.resources {
            // Never before the first date: a smaller days_back applies at once.
            let from = last_date(api.state, resource).map_or(first, |d| d.clamp(first, today));
            if resource == Resource::Activities {
                self.activities(&mut api, from, today, now, &mut readings).await?;
                continue;
            }
            for date in dates(from, today) {
                let body = api.get(&resource.path(date)).await?;
                let parsed = match resource {
                    Resource::Heart => {
                        let newest = api.state.get(HEART_NEWEST).and_then(Value::as_i64);
                        let samples = heart(&body, date, offset_ms, now, newest)?;
                        if let Some(t) = samples.iter().map(Reading::time).max() {
                            set(api.state, HEART_NEWEST, Value::from(t));
                        }
                        samples
                    }
                    Resource::Sleep => sleep(&body, offset_ms, now)?,
                    Resource::Spo2 => spo2(&body, date, offset_ms, now),
                    Resource::Hrv => hrv(&body, date, offset_ms, now)?,
                    // Listed, not fetched by date: handled above.
                    Resource::Activities => Vec::new(),
                };
                readings.extend(parsed);
                set_last_date(api.state, resource, date);
            }
        }
        Ok(readings)
    }

    /// The activity list from `from`, page after page.
    async fn activities(
        &self,
        api: &mut Api<'_>,
        from: NaiveDate,
        today: NaiveDate,
        now: Nanos,
        readings: &mut Vec<Reading>,
    ) -> Result<(), Failure> {
        let mut next = Some(activities_path(from));
        let mut last = from;
        for _ in 0..MAX_ACTIVITY_PAGES {
            let Some(path) = next.take() else { break };
            let page = activities(&api.get(&path).await?, now)?;
            readings.extend(page.readings);
            last = last.max(page.last_date.unwrap_or(last));
            next = page.next;
        }
        // Read to the end, everything up to today is in; otherwise the rest comes next run.
        set_last_date(api.state, Resource::Activities, if next.is_none() { today } else { last });
        Ok(())
    }
}

/// The requests of one run, with the state that holds the tokens.
struct Api<'a> {
    fitbit: &'a Fitbit,
    state: &'a mut Value,
}

impl Api<'_> {
    /// GETs `path_and_query` of the API as JSON, refreshing the access token once if it is
    /// refused (it may have been revoked or expired early).
    async fn get(&mut self, path_and_query: &str) -> Result<Value, Failure> {
        let url = format!("{}{path_and_query}", self.fitbit.api_url);
        let token = self.fitbit.oauth.access_token(self.state).await?;
        let mut response = self.send(&url, &token).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            let why = error_type(response).await;
            tracing::info!(url = %url, error = %why, "Fitbit refused the access token; refreshing it.");
            let token = self.fitbit.oauth.refresh(self.state).await?;
            response = self.send(&url, &token).await?;
        }
        if let Some(failure) = Failure::of_status(&response) {
            return Err(match failure {
                Failure::RateLimited(after) => {
                    Failure::RateLimited(after.or_else(|| rate_limit_reset(&response)))
                }
                Failure::Auth(status) => {
                    Failure::Auth(format!("{url}: {status} ({})", error_type(response).await))
                }
                other => other,
            });
        }
        response.json().await.map_err(|e| Failure::BadResponse(format!("{url}: not JSON: {e}")))
    }

    async fn send(&self, url: &str, token: &str) -> Result<reqwest::Response, Failure> {
        self.fitbit
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Failure::Network(format!("{url}: {e}")))
    }
}

/// How long Fitbit asks to wait when it sends no `Retry-After`: its own header.
fn rate_limit_reset(response: &reqwest::Response) -> Option<Duration> {
    let seconds =
        response.headers().get("fitbit-rate-limit-reset")?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

/// Fitbit's reason for an error (`{"errors":[{"errorType":"expired_token","message":…}]}`).
async fn error_type(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body.pointer("/errors/0/errorType")
        .and_then(Value::as_str)
        .map_or_else(|| status.to_string(), str::to_owned)
}

/// The user's offset from UTC, ms.
fn offset_ms(profile: &Value) -> Option<i64> {
    number(profile.pointer("/user/offsetFromUTCMillis")?).map(|ms| ms as i64)
}

/// The user's date at `now`.
fn local_date(now: Nanos, offset_ms: i64) -> Option<NaiveDate> {
    let local = now.checked_add(offset_ms.checked_mul(NANOS_PER_MILLI)?)?;
    Some(DateTime::from_timestamp_nanos(local).date_naive())
}

/// A local time of the user, in ns since the epoch.
fn local_to_utc(local: NaiveDateTime, offset_ms: i64) -> Option<Nanos> {
    local.and_utc().timestamp_nanos_opt()?.checked_sub(offset_ms.checked_mul(NANOS_PER_MILLI)?)
}

/// Noon of a local date: where the daily values are stored.
fn noon(date: NaiveDate, offset_ms: i64) -> Option<Nanos> {
    local_to_utc(date.and_time(NaiveTime::from_hms_opt(12, 0, 0)?), offset_ms)
}

/// Fitbit's local times: `2020-02-20T23:21:30.000`.
fn parse_local(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// The dates of one run: `from` to `today`, at most [`MAX_DATES_PER_RUN`].
fn dates(from: NaiveDate, today: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= today).take(MAX_DATES_PER_RUN)
}

fn last_date(state: &Value, resource: Resource) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(state.get(resource.name())?.as_str()?, "%Y-%m-%d").ok()
}

fn set_last_date(state: &mut Value, resource: Resource, date: NaiveDate) {
    set(state, resource.name(), Value::from(date.format("%Y-%m-%d").to_string()));
}

fn set(state: &mut Value, key: &str, value: Value) {
    if !state.is_object() {
        *state = Value::Object(serde_json::Map::new());
    }
    if let Some(object) = state.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

/// A number, or a string holding one (Fitbit writes both).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
