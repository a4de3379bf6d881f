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

use super::oauth::{ClientAuth, OAuth};
use super::Failure;

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

/// Builds a reading, or logs why the item was skipped.
fn reading(
    metric: Metric,
    time: Option<Nanos>,
    now: Nanos,
    fields: &[(&str, f64)],
    item: &Value,
) -> Option<Reading> {
    let Some(time) = time else {
        tracing::warn!(metric = %metric, item = %item, "Fitbit item without a readable time; skipped.");
        return None;
    };
    Reading::known(metric, time, now, fields.iter().copied())
        .map_err(
            |e| tracing::warn!(metric = %metric, item = %item, error = %e, "Fitbit item refused; skipped."),
        )
        .ok()
}

/// Intraday heart rate of one local date, the samples newer than `newest`.
fn heart(
    body: &Value,
    date: NaiveDate,
    offset_ms: i64,
    now: Nanos,
    newest: Option<Nanos>,
) -> Result<Vec<Reading>, Failure> {
    let dataset = body.pointer("/activities-heart-intraday/dataset").and_then(Value::as_array).ok_or_else(|| {
        Failure::BadResponse(
            "no activities-heart-intraday.dataset in the answer: intraday data needs a \"Personal\" app (or Fitbit's approval)".into(),
        )
    })?;
    Ok(dataset
        .iter()
        .filter_map(|sample| {
            let time = sample
                .get("time")
                .and_then(Value::as_str)
                .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M:%S").ok())
                .and_then(|t| local_to_utc(date.and_time(t), offset_ms));
            if time.zip(newest).is_some_and(|(t, newest)| t <= newest) {
                return None;
            }
            let bpm = sample.get("value").and_then(number)?;
            reading(Metric::HeartRate, time, now, &[("bpm", bpm)], sample)
        })
        .collect())
}

/// One reading per sleep log, at its start.
fn sleep(body: &Value, offset_ms: i64, now: Nanos) -> Result<Vec<Reading>, Failure> {
    let logs = body
        .get("sleep")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::BadResponse("no sleep list in the sleep answer".into()))?;
    Ok(logs
        .iter()
        .filter_map(|log| {
            let time = log
                .get("startTime")
                .and_then(Value::as_str)
                .and_then(parse_local)
                .and_then(|t| local_to_utc(t, offset_ms));
            let mut fields = Vec::new();
            if let Some(ms) = log.get("duration").and_then(number) {
                fields.push(("duration_s", ms / 1000.0));
            }
            if let Some(efficiency) = log.get("efficiency").and_then(number) {
                fields.push(("efficiency", efficiency));
            }
            let minutes =
                |level: &str| log.pointer(&format!("/levels/summary/{level}/minutes")).and_then(number);
            // "stages" logs have deep, light, rem and wake; "classic" ones asleep, restless and awake.
            for (field, levels) in [
                ("deep_s", &["deep"][..]),
                ("light_s", &["light"]),
                ("rem_s", &["rem"]),
                ("awake_s", &["wake", "awake"]),
            ] {
                if let Some(m) = levels.iter().find_map(|l| minutes(l)) {
                    fields.push((field, m * 60.0));
                }
            }
            reading(Metric::Sleep, time, now, &fields, log)
        })
        .collect())
}

/// The date's value, or none when it is not in yet: noon of today is still ahead, and will
/// be fetched again.
fn daily(
    metric: Metric,
    time: Option<Nanos>,
    now: Nanos,
    fields: &[(&str, f64)],
    item: &Value,
) -> Vec<Reading> {
    if time.is_some_and(|t| t > now) {
        tracing::debug!(metric = %metric, "Today's value waits for noon.");
        return Vec::new();
    }
    reading(metric, time, now, fields, item).into_iter().collect()
}

/// The date of a daily value: its own `dateTime`, or the date asked for.
fn date_of(item: &Value, asked: NaiveDate) -> NaiveDate {
    item.get("dateTime")
        .and_then(Value::as_str)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(asked)
}

/// SpO2 of one night (`{}` when there is none), at noon of the date.
fn spo2(body: &Value, date: NaiveDate, offset_ms: i64, now: Nanos) -> Vec<Reading> {
    let Some(avg) = body.pointer("/value/avg").and_then(number) else {
        return Vec::new();
    };
    daily(Metric::Spo2, noon(date_of(body, date), offset_ms), now, &[("percent", avg)], body)
}

/// HRV of one night, at noon of the date.
fn hrv(body: &Value, date: NaiveDate, offset_ms: i64, now: Nanos) -> Result<Vec<Reading>, Failure> {
    let days = body
        .get("hrv")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::BadResponse("no hrv list in the HRV answer".into()))?;
    let Some((day, rmssd)) =
        days.first().and_then(|d| Some((d, d.pointer("/value/dailyRmssd").and_then(number)?)))
    else {
        return Ok(Vec::new());
    };
    Ok(daily(Metric::Hrv, noon(date_of(day, date), offset_ms), now, &[("rmssd_ms", rmssd)], day))
}

/// One page of the activity list.
#[derive(Debug)]
struct ActivityPage {
    readings: Vec<Reading>,
    /// The request of the next page (path and query), if there is one.
    next: Option<String>,
    /// The local date of the last activity on the page.
    last_date: Option<NaiveDate>,
}

/// Metres in a `distanceUnit`.
fn metres_per(unit: &str) -> Option<f64> {
    match unit {
        "Kilometer" | "Kilometers" | "km" => Some(1000.0),
        "Mile" | "Miles" | "mi" => Some(1609.344),
        "Meter" | "Meters" | "m" => Some(1.0),
        _ => None,
    }
}

fn activities(body: &Value, now: Nanos) -> Result<ActivityPage, Failure> {
    let items = body
        .get("activities")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::BadResponse("no activities list in the activity list answer".into()))?;
    let mut readings = Vec::new();
    let mut last_date = None;
    for item in items {
        let start = item.get("startTime").and_then(Value::as_str).unwrap_or_default();
        // The local date is the start's own: "2019-01-03T12:08:23.000-08:00".
        last_date = start.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).or(last_date);
        let time = DateTime::parse_from_rfc3339(start).ok().and_then(|t| t.timestamp_nanos_opt());
        let value = |key: &str| item.get(key).and_then(number);
        let mut fields = Vec::new();
        if let Some(ms) = value("duration") {
            fields.push(("duration_s", ms / 1000.0));
        }
        if let Some(distance) = value("distance") {
            // Without an Accept-Language header Fitbit answers in metric units.
            let unit = item.get("distanceUnit").and_then(Value::as_str).unwrap_or("Kilometer");
            match metres_per(unit) {
                Some(m) => fields.push(("distance_m", distance * m)),
                None => tracing::warn!(unit, "Fitbit distance in an unknown unit; left out."),
            }
        }
        if let Some(kcal) = value("calories") {
            fields.push(("kcal", kcal));
        }
        if let Some(metres) = value("elevationGain") {
            fields.push(("elevation_gain_m", metres));
        }
        // 0 means "no heart rate", not a heart that stopped.
        if let Some(bpm) = value("averageHeartRate").filter(|b| *b > 0.0) {
            fields.push(("avg_bpm", bpm));
        }
        if let Some(steps) = value("steps") {
            fields.push(("steps", steps));
        }
        readings.extend(reading(
            Metric::Activity,
            time.or_else(|| parse_rfc3339(start).ok()),
            now,
            &fields,
            item,
        ));
    }
    let next = body
        .pointer("/pagination/next")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(|n| {
            // Only the path and query: the token goes to the configured API, whatever host
            // the link names.
            reqwest::Url::parse(n)
                .map(|u| u.query().map_or_else(|| u.path().to_owned(), |q| format!("{}?{q}", u.path())))
                .map_err(|e| Failure::BadResponse(format!("pagination.next {n:?}: {e}")))
        })
        .transpose()?;
    Ok(ActivityPage { readings, next, last_date })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MINUTE: Nanos = 60_000_000_000;
    /// Los Angeles in summer, as in Fitbit's profile example.
    const LA: i64 = -25_200_000;

    fn ns(rfc3339: &str) -> Nanos {
        parse_rfc3339(rfc3339).expect("time")
    }

    fn date(d: &str) -> NaiveDate {
        NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date")
    }

    fn settings(extra: &str) -> Result<Fitbit, String> {
        let text = format!("client_id = \"23ABCD\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n{extra}");
        Fitbit::from_config(toml::from_str::<toml::Value>(&text).expect("toml"))
    }

    #[test]
    fn settings_default_and_say_which_key_to_fix() {
        let fitbit = settings("").expect("valid");
        assert_eq!(fitbit.api_url, "https://api.fitbit.com");
        assert_eq!(fitbit.days_back, 7);
        assert_eq!(fitbit.resources, Resource::ALL.to_vec());
        let fitbit =
            settings("api_url = \"http://127.0.0.1:9/\"\nresources = [\"sleep\", \"hrv\", \"sleep\"]")
                .expect("valid");
        assert_eq!(fitbit.api_url, "http://127.0.0.1:9");
        assert_eq!(fitbit.resources, vec![Resource::Sleep, Resource::Hrv]);
        assert!(!format!("{fitbit:?}").contains("client_secret"), "{fitbit:?}");

        let missing = Fitbit::from_config(toml::from_str("client_id = \"a\"").expect("toml"));
        assert_eq!(missing.expect_err("no secret"), "client_secret is missing");
        let cases = [
            ("days_back = \"7\"", "days_back: invalid type"),
            ("days_back = -1", "days_back -1 is not between 0 and 365"),
            ("resources = [\"steps\"]", "resources: \"steps\" is not one of"),
            ("resources = []", "resources lists nothing"),
            ("token_url = \"not a url\"", "token_url \"not a url\""),
            ("api_url = \"ftp://x\"", "api_url \"ftp://x\" is not an http(s) URL"),
            ("colour = 1", "unknown key `colour`"),
        ];
        for (extra, message) in cases {
            let error = settings(extra).expect_err(extra);
            assert!(error.contains(message), "{extra}: {error:?} does not say {message:?}");
        }
        let empty = Fitbit::from_config(
            toml::from_str("client_id = \" \"\nclient_secret = \"s\"\nrefresh_token = \"r\"").expect("toml"),
        );
        assert_eq!(empty.expect_err("blank id"), "client_id is empty");
    }

    #[test]
    fn intraday_times_are_local_and_only_newer_samples_are_kept() {
        // Fitbit's example (2019-01-01, one-minute detail) for a user in Los Angeles.
        let body = json!({
            "activities-heart": [{"dateTime": "2019-01-01", "value": {"customHeartRateZones": [], "heartRateZones": [], "restingHeartRate": 76}}],
            "activities-heart-intraday": {
                "dataset": [{"time": "00:00:00", "value": 78}, {"time": "00:01:00", "value": 77}, {"time": "00:02:00", "value": 76}],
                "datasetInterval": 1,
                "datasetType": "minute"
            }
        });
        let now = ns("2019-01-02T00:00:00Z");
        let samples = heart(&body, date("2019-01-01"), LA, now, None).expect("parses");
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].time(), ns("2019-01-01T07:00:00Z"), "midnight in LA is 07:00 UTC");
        assert_eq!(samples[0].float("bpm"), Some(78.0));
        assert_eq!(samples[2].time(), ns("2019-01-01T07:02:00Z"));

        let newer =
            heart(&body, date("2019-01-01"), LA, now, Some(ns("2019-01-01T07:01:00Z"))).expect("parses");
        assert_eq!(newer.iter().map(|r| r.float("bpm")).collect::<Vec<_>>(), vec![Some(76.0)]);

        let summary_only = json!({"activities-heart": []});
        let error = heart(&summary_only, date("2019-01-01"), LA, now, None).expect_err("no intraday");
        assert!(error.to_string().contains("Personal"), "{error}");
    }

    #[test]
    fn sleep_logs_carry_their_stages() {
        // Fitbit's example of a "stages" log, and a "classic" one.
        let body = json!({
            "sleep": [{
                "dateOfSleep": "2020-02-21",
                "duration": 27_720_000,
                "efficiency": 96,
                "endTime": "2020-02-21T07:03:30.000",
                "infoCode": 0,
                "isMainSleep": true,
                "levels": {
                    "data": [{"dateTime": "2020-02-20T23:21:30.000", "level": "wake", "seconds": 630}],
                    "shortData": [],
                    "summary": {
                        "deep": {"count": 5, "minutes": 104, "thirtyDayAvgMinutes": 69},
                        "light": {"count": 32, "minutes": 205, "thirtyDayAvgMinutes": 202},
                        "rem": {"count": 11, "minutes": 75, "thirtyDayAvgMinutes": 87},
                        "wake": {"count": 30, "minutes": 78, "thirtyDayAvgMinutes": 55}
                    }
                },
                "logId": 26_013_218_219_u64,
                "logType": "auto_detected",
                "minutesAsleep": 384,
                "minutesAwake": 78,
                "startTime": "2020-02-20T23:21:30.000",
                "timeInBed": 462,
                "type": "stages"
            }, {
                "duration": 3_600_000,
                "efficiency": 90,
                "levels": {"summary": {"asleep": {"count": 0, "minutes": 50}, "awake": {"count": 1, "minutes": 4}, "restless": {"count": 2, "minutes": 6}}},
                "startTime": "2020-02-21T14:00:00.000",
                "type": "classic"
            }],
            "summary": {"stages": {"deep": 104, "light": 205, "rem": 75, "wake": 78}, "totalMinutesAsleep": 384, "totalSleepRecords": 2, "totalTimeInBed": 522}
        });
        let logs = sleep(&body, 3_600_000, ns("2020-02-22T00:00:00Z")).expect("parses");
        assert_eq!(logs.len(), 2);
        let night = &logs[0];
        assert_eq!(night.time(), ns("2020-02-20T22:21:30Z"), "23:21:30 at UTC+1");
        assert_eq!(night.float("duration_s"), Some(27_720.0));
        assert_eq!(night.float("efficiency"), Some(96.0));
        assert_eq!(night.float("deep_s"), Some(104.0 * 60.0));
        assert_eq!(night.float("light_s"), Some(205.0 * 60.0));
        assert_eq!(night.float("rem_s"), Some(75.0 * 60.0));
        assert_eq!(night.float("awake_s"), Some(78.0 * 60.0));
        let nap = &logs[1];
        assert_eq!(nap.float("awake_s"), Some(240.0));
        assert_eq!(nap.float("deep_s"), None, "a classic log has no stages");
        assert!(sleep(&json!({"summary": {}}), 0, 0).is_err());
    }

    #[test]
    fn daily_values_sit_at_local_noon_once_it_has_passed() {
        let spo2_body = json!({"dateTime": "2021-10-04", "value": {"avg": 97.5, "min": 94.0, "max": 100.0}});
        let hrv_body = json!({"hrv": [{"value": {"dailyRmssd": 34.938, "deepRmssd": 31.567}, "dateTime": "2021-10-04"}]});
        let noon_la = ns("2021-10-04T19:00:00Z");

        let after = noon_la + MINUTE;
        let o2 = spo2(&spo2_body, date("2021-10-04"), LA, after);
        assert_eq!(o2.len(), 1);
        assert_eq!(o2[0].time(), noon_la);
        assert_eq!(o2[0].float("percent"), Some(97.5));
        let h = hrv(&hrv_body, date("2021-10-04"), LA, after).expect("parses");
        assert_eq!((h[0].time(), h[0].float("rmssd_ms")), (noon_la, Some(34.938)));

        let morning = noon_la - 3 * 60 * MINUTE;
        assert!(spo2(&spo2_body, date("2021-10-04"), LA, morning).is_empty(), "noon is ahead");
        assert!(hrv(&hrv_body, date("2021-10-04"), LA, morning).expect("parses").is_empty());
        assert!(spo2(&json!({}), date("2021-10-04"), LA, after).is_empty(), "a night without SpO2");
        assert!(hrv(&json!({"hrv": []}), date("2021-10-04"), LA, after).expect("parses").is_empty());
        assert!(hrv(&json!({"errors": []}), date("2021-10-04"), LA, after).is_err());
    }

    #[test]
    fn activities_are_converted_and_paginated_on_the_configured_host() {
        let body = json!({
            "activities": [{
                "activeDuration": 1_536_000,
                "activityName": "Walk",
                "activityTypeId": 90013,
                "averageHeartRate": 79,
                "calories": 204,
                "distance": 1.343,
                "distanceUnit": "Kilometer",
                "duration": 1_536_000,
                "elevationGain": 0,
                "logId": 19_018_673_358_u64,
                "logType": "auto_detected",
                "startTime": "2019-01-03T12:08:23.000-08:00",
                "steps": 1799
            }, {
                "activityName": "Bike",
                "averageHeartRate": 0,
                "distance": 10,
                "distanceUnit": "Mile",
                "duration": 3_600_000,
                "startTime": "2019-01-04T09:00:00.000-08:00"
            }, {
                "activityName": "Broken",
                "duration": 60_000,
                "startTime": "yesterday"
            }],
            "pagination": {
                "afterDate": "2019-01-01",
                "limit": 3,
                "next": "https://api.fitbit.com/1/user/-/activities/list.json?offset=3&limit=3&sort=asc&afterDate=2019-01-01",
                "offset": 0,
                "previous": "",
                "sort": "asc"
            }
        });
        let page = activities(&body, ns("2019-02-01T00:00:00Z")).expect("parses");
        assert_eq!(page.readings.len(), 2, "the one without a time is skipped");
        let walk = &page.readings[0];
        assert_eq!(walk.time(), ns("2019-01-03T20:08:23Z"));
        assert_eq!(walk.float("duration_s"), Some(1536.0));
        assert!((walk.float("distance_m").expect("distance") - 1343.0).abs() < 1e-6);
        assert_eq!(walk.float("kcal"), Some(204.0));
        assert_eq!(walk.float("elevation_gain_m"), Some(0.0));
        assert_eq!(walk.float("avg_bpm"), Some(79.0));
        assert_eq!(walk.float("steps"), Some(1799.0));
        let ride = &page.readings[1];
        assert!((ride.float("distance_m").expect("distance") - 16_093.44).abs() < 1e-6);
        assert_eq!(ride.float("avg_bpm"), None, "0 is no heart rate");
        assert_eq!(page.last_date, Some(date("2019-01-04")));
        assert_eq!(
            page.next.as_deref(),
            Some("/1/user/-/activities/list.json?offset=3&limit=3&sort=asc&afterDate=2019-01-01")
        );

        let last = json!({"activities": [], "pagination": {"next": "", "previous": "x"}});
        let page = activities(&last, 0).expect("parses");
        assert!(page.next.is_none() && page.readings.is_empty() && page.last_date.is_none());
    }

    #[test]
    fn a_run_covers_at_most_a_week_of_dates_up_to_the_users_today() {
        let run: Vec<_> = dates(date("2024-02-25"), date("2024-03-20")).collect();
        assert_eq!(run.len(), MAX_DATES_PER_RUN);
        assert_eq!((run[0], run[6]), (date("2024-02-25"), date("2024-03-02")), "through a leap day");
        assert_eq!(dates(date("2024-03-20"), date("2024-03-20")).count(), 1, "today again");
        assert_eq!(dates(date("2024-03-21"), date("2024-03-20")).count(), 0);

        // 02:00 UTC is still yesterday in Los Angeles and already today in Tokyo.
        let at = ns("2024-03-20T02:00:00Z");
        assert_eq!(local_date(at, LA), Some(date("2024-03-19")));
        assert_eq!(local_date(at, 9 * 3_600_000), Some(date("2024-03-20")));
        assert_eq!(offset_ms(&json!({"user": {"offsetFromUTCMillis": -25_200_000}})), Some(LA));

        let mut state = json!({"oauth": {"refresh_token": "r"}});
        set_last_date(&mut state, Resource::Sleep, date("2024-03-20"));
        assert_eq!(last_date(&state, Resource::Sleep), Some(date("2024-03-20")));
        assert_eq!(last_date(&state, Resource::Heart), None);
        assert_eq!(state["oauth"]["refresh_token"], "r", "the tokens stay");
    }

    #[test]
    fn rate_limits_wait_for_fitbits_own_header_too() {
        let answer = |headers: &[(&str, &str)]| {
            let mut builder = axum::http::Response::builder().status(429);
            for (k, v) in headers {
                builder = builder.header(*k, *v);
            }
            reqwest::Response::from(builder.body(Vec::<u8>::new()).expect("response"))
        };
        let reset = answer(&[("Fitbit-Rate-Limit-Reset", "1200")]);
        assert!(matches!(Failure::of_status(&reset), Some(Failure::RateLimited(None))));
        assert_eq!(rate_limit_reset(&reset), Some(Duration::from_secs(1200)));
        assert_eq!(rate_limit_reset(&answer(&[("Retry-After", "30")])), None);
    }
}
