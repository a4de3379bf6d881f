//! The Fitbit poller against a local server that answers like Fitbit's Web API (the
//! documented example answers, moved to yesterday and today) and like its token endpoint
//! (HTTP Basic client auth, refresh tokens rotated at every refresh, access tokens that
//! expire mid-run): what lands in InfluxDB, which refresh tokens were used, what a restart
//! remembers, and what the metrics count.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone};
use serde_json::{json, Value};

use crate::helpers::*;

const CLIENT_ID: &str = "23ABCD";
const CLIENT_SECRET: &str = "fitbit-test-secret";
const FIRST_REFRESH_TOKEN: &str = "refresh-0";
/// Requests an access token answers before it "expires" (Fitbit's last eight hours; this
/// makes the poller refresh in the middle of its runs).
const USES_PER_ACCESS_TOKEN: u32 = 4;

/// The provider's side: tokens, and what it was asked.
#[derive(Default)]
struct Provider {
    /// The one refresh token that works; every refresh replaces it.
    refresh_token: String,
    /// The one access token that works, if any.
    access_token: Option<String>,
    uses_left: u32,
    /// Whether access tokens expire after [`USES_PER_ACCESS_TOKEN`] requests.
    expiring: bool,
    issued: u32,
    /// The refresh tokens presented, accepted or not.
    refreshes: Vec<String>,
    invalid_grants: usize,
    bad_clients: usize,
    expired_answers: usize,
    /// API requests (path and query), in order.
    requests: Vec<String>,
    /// Whether the first SpO2 request has been answered 429.
    limited: bool,
    /// A sample that today's intraday heart rate gains later in the test.
    later_sample: bool,
}

#[derive(Clone)]
struct FakeFitbit {
    provider: Arc<Mutex<Provider>>,
    base: String,
    offset_ms: i64,
    yesterday: NaiveDate,
    today: NaiveDate,
}

fn fitbit_error(status: StatusCode, error_type: &str, message: String) -> Response {
    (status, Json(json!({ "errors": [{ "errorType": error_type, "message": message }], "success": false })))
        .into_response()
}

async fn token(
    State(fake): State<FakeFitbit>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let mut p = fake.provider.lock().expect("lock");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        p.bad_clients += 1;
        return fitbit_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid authorization header.".into(),
        );
    }
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    p.refreshes.push(presented.clone());
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") || presented != p.refresh_token {
        p.invalid_grants += 1;
        return fitbit_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            format!("Refresh token invalid: {presented}. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."),
        );
    }
    p.issued += 1;
    let (access, refresh) = (format!("access-{}", p.issued), format!("refresh-{}", p.issued));
    p.refresh_token = refresh.clone();
    p.access_token = Some(access.clone());
    p.uses_left = USES_PER_ACCESS_TOKEN;
    Json(json!({
        "access_token": access,
        "expires_in": 28800,
        "refresh_token": refresh,
        "scope": "heartrate sleep oxygen_saturation respiratory_rate activity profile",
        "token_type": "Bearer",
        "user_id": "GGNJL9"
    }))
    .into_response()
}

/// Every API request: the bearer token first, then the answer of its path.
async fn api(State(fake): State<FakeFitbit>, uri: Uri, headers: HeaderMap) -> Response {
    let path_and_query = uri.path_and_query().map(ToString::to_string).unwrap_or_default();
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let (limit, later_sample) = {
        let mut p = fake.provider.lock().expect("lock");
        p.requests.push(path_and_query.clone());
        if p.expiring && p.uses_left == 0 {
            p.access_token = None;
        }
        if p.access_token.as_deref() != Some(presented.as_str()) {
            p.expired_answers += 1;
            return fitbit_error(
                StatusCode::UNAUTHORIZED,
                "expired_token",
                format!("Access token expired: {presented}. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."),
            );
        }
        p.uses_left = p.uses_left.saturating_sub(1);
        let limit = uri.path().starts_with("/1/user/-/spo2/") && !p.limited;
        p.limited |= limit;
        (limit, p.later_sample)
    };
    if limit {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1"), ("fitbit-rate-limit-remaining", "0")])
            .into_response();
    }
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let date = |s: &str| NaiveDate::parse_from_str(s.trim_end_matches(".json"), "%Y-%m-%d").ok();
    let body = match segments.as_slice() {
        ["1", "user", "-", "profile.json"] => fake.profile(),
        ["1", "user", "-", "activities", "heart", "date", d, "1d", "1sec.json"] => {
            fake.heart(date(d), later_sample)
        }
        ["1.2", "user", "-", "sleep", "date", d] => fake.sleep(date(d)),
        ["1", "user", "-", "spo2", "date", d] => fake.spo2(date(d)),
        ["1", "user", "-", "hrv", "date", d] => fake.hrv(date(d)),
        ["1", "user", "-", "activities", "list.json"] => fake.activities(uri.query().unwrap_or_default()),
        _ => {
            return fitbit_error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{path_and_query} is not answered"),
            )
        }
    };
    Json(body).into_response()
}

impl FakeFitbit {
    fn local(&self, date: NaiveDate, h: u32, m: u32, s: u32) -> String {
        date.and_hms_opt(h, m, s).expect("time").format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
    }

    fn with_offset(&self, date: NaiveDate, h: u32, m: u32, s: u32) -> String {
        let zone = FixedOffset::east_opt((self.offset_ms / 1000) as i32).expect("offset");
        let local = date.and_hms_opt(h, m, s).expect("time");
        zone.from_local_datetime(&local)
            .single()
            .expect("local")
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    /// Fitbit's profile example, trimmed.
    fn profile(&self) -> Value {
        json!({ "user": {
            "age": 30,
            "avatar": "https://static0.fitbit.com/images/profile/defaultProfile_100.png",
            "dateOfBirth": "1995-01-01",
            "displayName": "Alice",
            "distanceUnit": "METRIC",
            "encodedId": "GGNJL9",
            "firstName": "Alice",
            "fullName": "Alice",
            "gender": "FEMALE",
            "locale": "en_US",
            "memberSince": "2019-01-01",
            "offsetFromUTCMillis": self.offset_ms,
            "startDayOfWeek": "MONDAY",
            "weightUnit": "METRIC"
        }})
    }

    /// Fitbit's intraday example (78, 77, 76 bpm from midnight) for yesterday, other
    /// values for today.
    fn heart(&self, date: Option<NaiveDate>, later_sample: bool) -> Value {
        let mut dataset = if date == Some(self.yesterday) {
            vec![
                json!({"time": "00:00:00", "value": 78}),
                json!({"time": "00:01:00", "value": 77}),
                json!({"time": "00:02:00", "value": 76}),
            ]
        } else if date == Some(self.today) {
            vec![
                json!({"time": "00:00:00", "value": 61}),
                json!({"time": "00:01:00", "value": 62}),
                json!({"time": "00:02:00", "value": 63}),
            ]
        } else {
            Vec::new()
        };
        if later_sample && date == Some(self.today) {
            dataset.push(json!({"time": "00:03:00", "value": 64}));
        }
        json!({
            "activities-heart": [{
                "dateTime": date.map(|d| d.to_string()),
                "value": {
                    "customHeartRateZones": [],
                    "heartRateZones": [
                        {"caloriesOut": 2877.06579, "max": 97, "min": 30, "minutes": 1299, "name": "Out of Range"},
                        {"caloriesOut": 36.84372, "max": 136, "min": 97, "minutes": 10, "name": "Fat Burn"},
                        {"caloriesOut": 0, "max": 165, "min": 136, "minutes": 0, "name": "Cardio"},
                        {"caloriesOut": 0, "max": 220, "min": 165, "minutes": 0, "name": "Peak"}
                    ],
                    "restingHeartRate": 76
                }
            }],
            "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "second"}
        })
    }

    /// Fitbit's sleep example: the night that ended today.
    fn sleep(&self, date: Option<NaiveDate>) -> Value {
        if date != Some(self.today) {
            return json!({"sleep": [], "summary": {"totalMinutesAsleep": 0, "totalSleepRecords": 0, "totalTimeInBed": 0}});
        }
        json!({
            "sleep": [{
                "dateOfSleep": self.today.to_string(),
                "duration": 27_720_000,
                "efficiency": 96,
                "endTime": self.local(self.today, 7, 3, 30),
                "infoCode": 0,
                "isMainSleep": true,
                "levels": {
                    "data": [
                        {"dateTime": self.local(self.yesterday, 23, 21, 30), "level": "wake", "seconds": 630},
                        {"dateTime": self.local(self.yesterday, 23, 32, 0), "level": "light", "seconds": 30},
                        {"dateTime": self.local(self.yesterday, 23, 32, 30), "level": "deep", "seconds": 870}
                    ],
                    "shortData": [{"dateTime": self.local(self.today, 0, 10, 30), "level": "wake", "seconds": 30}],
                    "summary": {
                        "deep": {"count": 5, "minutes": 104, "thirtyDayAvgMinutes": 69},
                        "light": {"count": 32, "minutes": 205, "thirtyDayAvgMinutes": 202},
                        "rem": {"count": 11, "minutes": 75, "thirtyDayAvgMinutes": 87},
                        "wake": {"count": 30, "minutes": 78, "thirtyDayAvgMinutes": 55}
                    }
                },
                "logId": 26_013_218_219_u64,
                "logType": "auto_detected",
                "minutesAfterWakeup": 0,
                "minutesAsleep": 384,
                "minutesAwake": 78,
                "minutesToFallAsleep": 0,
                "startTime": self.local(self.yesterday, 23, 21, 30),
                "timeInBed": 462,
                "type": "stages"
            }],
            "summary": {
                "stages": {"deep": 104, "light": 205, "rem": 75, "wake": 78},
                "totalMinutesAsleep": 384,
                "totalSleepRecords": 1,
                "totalTimeInBed": 462
            }
        })
    }

    /// Fitbit's SpO2 example for today; nothing for other nights.
    fn spo2(&self, date: Option<NaiveDate>) -> Value {
        if date != Some(self.today) {
            return json!({});
        }
        json!({"dateTime": self.today.to_string(), "value": {"avg": 97.5, "min": 94.0, "max": 100.0}})
    }

    /// Fitbit's HRV example for today.
    fn hrv(&self, date: Option<NaiveDate>) -> Value {
        if date != Some(self.today) {
            return json!({"hrv": []});
        }
        json!({"hrv": [{"value": {"dailyRmssd": 34.938, "deepRmssd": 31.567}, "dateTime": self.today.to_string()}]})
    }

    /// A walk yesterday and a ride today, one per page.
    fn activities(&self, query: &str) -> Value {
        let q: BTreeMap<String, String> = serde_urlencoded::from_str(query).expect("query");
        let after = q
            .get("afterDate")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .expect("afterDate");
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let all = [
            (
                self.yesterday,
                json!({
                    "activeDuration": 1_536_000,
                    "activityLevel": [
                        {"minutes": 1, "name": "sedentary"},
                        {"minutes": 14, "name": "lightly"},
                        {"minutes": 5, "name": "fairly"},
                        {"minutes": 6, "name": "very"}
                    ],
                    "activityName": "Walk",
                    "activityTypeId": 90013,
                    "averageHeartRate": 79,
                    "calories": 204,
                    "distance": 1.343,
                    "distanceUnit": "Kilometer",
                    "duration": 1_536_000,
                    "elevationGain": 0,
                    "hasActiveZoneMinutes": true,
                    "lastModified": "2019-01-04T19:31:15.000Z",
                    "logId": 19_018_673_358_u64,
                    "logType": "auto_detected",
                    "manualValuesSpecified": {"calories": false, "distance": false, "steps": false},
                    "originalDuration": 1_536_000,
                    "originalStartTime": self.with_offset(self.yesterday, 12, 8, 23),
                    "startTime": self.with_offset(self.yesterday, 12, 8, 23),
                    "steps": 1799
                }),
            ),
            (
                self.today,
                json!({
                    "activeDuration": 3_540_000,
                    "activityName": "Bike",
                    "activityTypeId": 90001,
                    "averageHeartRate": 131,
                    "calories": 612,
                    "distance": 24.5,
                    "distanceUnit": "Kilometer",
                    "duration": 3_600_000,
                    "elevationGain": 182.88,
                    "logId": 19_018_673_359_u64,
                    "logType": "tracker",
                    "originalStartTime": self.with_offset(self.today, 8, 15, 0),
                    "startTime": self.with_offset(self.today, 8, 15, 0)
                }),
            ),
        ];
        let listed: Vec<&Value> = all.iter().filter(|(d, _)| *d >= after).map(|(_, a)| a).collect();
        let next = if offset + 1 < listed.len() {
            format!(
                "{}/1/user/-/activities/list.json?offset={}&limit=1&sort=asc&afterDate={after}",
                self.base,
                offset + 1
            )
        } else {
            String::new()
        };
        json!({
            "activities": listed.get(offset).into_iter().collect::<Vec<_>>(),
            "pagination": {"afterDate": after.to_string(), "limit": 1, "next": next, "offset": offset, "previous": "", "sort": "asc"}
        })
    }
}

/// An offset that puts the user at about 15:00, whatever the time of the test: no day
/// boundary passes while it runs, and noon (SpO2, HRV) has passed.
fn afternoon_offset_ms() -> i64 {
    let now = chrono::Utc::now();
    let since_midnight = now.time().signed_duration_since(NaiveTime::MIN).num_minutes();
    let minutes = 15 * 60 - since_midnight;
    (minutes as f64 / 15.0).round() as i64 * 15 * 60_000
}

fn local_ns(date: NaiveDate, h: u32, m: u32, s: u32, offset_ms: i64) -> i64 {
    date.and_hms_opt(h, m, s).expect("time").and_utc().timestamp_nanos_opt().expect("ns")
        - offset_ms * 1_000_000
}

#[tokio::test]
async fn fitbit_is_polled_with_rotated_tokens_and_resumes_after_a_restart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let offset_ms = afternoon_offset_ms();
    let today = (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms)).date_naive();
    let yesterday = today.pred_opt().expect("yesterday");
    let fake = FakeFitbit {
        provider: Arc::new(Mutex::new(Provider {
            refresh_token: FIRST_REFRESH_TOKEN.into(),
            expiring: true,
            ..Provider::default()
        })),
        base: base.clone(),
        offset_ms,
        yesterday,
        today,
    };
    let app = Router::new().route("/oauth2/token", post(token)).fallback(api).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sources = format!(
        r#"
[[source]]
name = "charge6"
kind = "fitbit"
rider = "alice"
every = "1s"
client_id = "{CLIENT_ID}"
client_secret = "${{VELOMETRY_TEST_FITBIT_SECRET}}"
refresh_token = "${{VELOMETRY_TEST_FITBIT_REFRESH_TOKEN}}"
api_url = "{base}"
token_url = "{base}/oauth2/token"
days_back = 1
"#
    );
    std::env::set_var("VELOMETRY_TEST_FITBIT_SECRET", CLIENT_SECRET);
    std::env::set_var("VELOMETRY_TEST_FITBIT_REFRESH_TOKEN", FIRST_REFRESH_TOKEN);
    let mut env = Env::with_sources(&sources).await;

    // Everything lands, tagged with the source's name and kind, at UTC times.
    let tags = "\"rider\" = 'alice' AND \"device\" = 'charge6' AND \"source\" = 'fitbit'";
    let heart_q = format!("SELECT \"bpm\" FROM \"heart_rate\" WHERE {tags}");
    let heart = env.wait_rows(&heart_q, 6).await;
    let bpm: Vec<f64> = heart.iter().filter_map(|r| r["bpm"].as_f64()).collect();
    assert_eq!(bpm, [78.0, 77.0, 76.0, 61.0, 62.0, 63.0]);
    assert_eq!(heart[0]["time"].as_i64(), Some(local_ns(yesterday, 0, 0, 0, offset_ms)), "local midnight");
    assert_eq!(heart[5]["time"].as_i64(), Some(local_ns(today, 0, 2, 0, offset_ms)));

    let sleep = env.wait_rows(&format!("SELECT * FROM \"sleep\" WHERE {tags}"), 1).await;
    assert_eq!(sleep[0]["time"].as_i64(), Some(local_ns(yesterday, 23, 21, 30, offset_ms)));
    assert_eq!(sleep[0]["duration_s"], 27_720.0);
    assert_eq!(sleep[0]["efficiency"], 96.0);
    let stages: Vec<f64> =
        ["deep_s", "light_s", "rem_s", "awake_s"].iter().filter_map(|f| sleep[0][*f].as_f64()).collect();
    assert_eq!(stages, [104.0 * 60.0, 205.0 * 60.0, 75.0 * 60.0, 78.0 * 60.0], "levels.summary minutes");
    let spo2 = env.wait_rows(&format!("SELECT \"percent\" FROM \"spo2\" WHERE {tags}"), 1).await;
    assert_eq!(spo2[0]["time"].as_i64(), Some(local_ns(today, 12, 0, 0, offset_ms)), "local noon");
    assert_eq!(spo2[0]["percent"], 97.5);
    let hrv = env.wait_rows(&format!("SELECT \"rmssd_ms\" FROM \"hrv\" WHERE {tags}"), 1).await;
    assert_eq!(hrv[0]["rmssd_ms"], 34.938);
    let rides = env.wait_rows(&format!("SELECT * FROM \"activity\" WHERE {tags}"), 2).await;
    assert_eq!(rides[0]["time"].as_i64(), Some(local_ns(yesterday, 12, 8, 23, offset_ms)));
    assert_eq!(rides[0]["steps"], 1799.0);
    assert_eq!(rides[0]["avg_bpm"], 79.0);
    assert!((rides[0]["distance_m"].as_f64().expect("distance") - 1343.0).abs() < 1e-6);
    assert_eq!(rides[1]["distance_m"], 24_500.0, "the second page");
    assert_eq!(rides[1]["duration_s"], 3600.0);
    assert_eq!(rides[1]["elevation_gain_m"], 182.88);
    assert_eq!(rides[1]["kcal"], 612.0);

    // Access tokens expired mid-run; every refresh used the token the last one returned,
    // even the one inside the run that the 429 failed.
    {
        let p = fake.provider.lock().expect("lock");
        assert!(p.limited && p.expired_answers >= 1, "a 429 and an expired token were answered");
        assert!(p.refreshes.len() >= 2, "{:?}", p.refreshes);
        assert_eq!(p.refreshes[..2], ["refresh-0", "refresh-1"], "the second refresh used the rotated token");
        assert_eq!((p.invalid_grants, p.bad_clients), (0, 0), "refreshes: {:?}", p.refreshes);
        let first_run: Vec<_> = p.requests.iter().take(4).cloned().collect();
        assert!(
            first_run[1].contains(&yesterday.to_string()),
            "days_back = 1 starts yesterday: {first_run:?}"
        );
    }
    let text = env.collector.metrics().await;
    assert_eq!(
        metric(&text, "collector_source_failures_total{source=\"charge6\",reason=\"rate_limited\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "collector_source_failures_total{source=\"charge6\",reason=\"auth\"}"),
        0.0,
        "{text}"
    );
    assert!(metric(&text, "collector_source_runs_total{source=\"charge6\"}") >= 1.0, "{text}");
    assert!(metric(&text, "collector_source_readings_total{source=\"charge6\"}") >= 11.0, "{text}");

    // Stop rotating, wait until the state holds the provider's current refresh token, then
    // restart: killed between a refresh and its save, a real poller would lose the token.
    fake.provider.lock().expect("lock").expiring = false;
    let state_file = env.collector.wal_dir().join("sources").join("charge6.json");
    let saved = eventually(|| async {
        let current = fake.provider.lock().expect("lock").refresh_token.clone();
        std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|s| s["oauth"]["refresh_token"] == current.as_str())
    })
    .await;
    assert!(saved, "the state never held the current refresh token");
    let (latest, refreshes_before, requests_before) = {
        let p = fake.provider.lock().expect("lock");
        (p.refresh_token.clone(), p.refreshes.len(), p.requests.len())
    };
    env.collector.restart().await;
    {
        // The saved access token stops working: the restarted poller must refresh.
        let mut p = fake.provider.lock().expect("lock");
        p.access_token = None;
        p.later_sample = true;
    }

    // It continues with the rotated token and from today: only today's new sample is new.
    env.wait_rows(&heart_q, 7).await;
    let (refreshes, invalid_grants, after) = {
        let p = fake.provider.lock().expect("lock");
        (p.refreshes.clone(), p.invalid_grants, p.requests[requests_before..].to_vec())
    };
    assert!(refreshes.len() > refreshes_before, "no refresh after the restart");
    assert_eq!(refreshes[refreshes_before], latest, "the saved rotated token, not the first one");
    assert_eq!(invalid_grants, 0, "refreshes: {refreshes:?}");
    assert!(after.iter().any(|r| r.contains(&today.to_string())), "{after:?}");
    assert!(
        after.iter().all(|r| !r.contains(&yesterday.to_string())),
        "old dates fetched again after the restart: {after:?}"
    );
    // The run is counted once all of its requests are done, which may be after today's
    // heart rate is already stored.
    let counted = eventually(|| async {
        metric(&env.collector.metrics().await, "collector_source_runs_total{source=\"charge6\"}") >= 1.0
    })
    .await;
    let text = env.collector.metrics().await;
    assert!(counted, "the run after the restart is never counted: {text}");
    assert_eq!(
        metric(&text, "collector_source_failures_total{source=\"charge6\",reason=\"auth\"}"),
        0.0,
        "{text}"
    );
    for (measurement, field, n) in [
        ("heart_rate", "bpm", 7),
        ("sleep", "duration_s", 1),
        ("spo2", "percent", 1),
        ("hrv", "rmssd_ms", 1),
        ("activity", "duration_s", 2),
    ] {
        let count = env.influx.count(DB, measurement, field).await.expect("count");
        assert_eq!(count, n, "{measurement}: each reading once, however often it was fetched");
    }
}
