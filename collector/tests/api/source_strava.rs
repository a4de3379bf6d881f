//! The Strava poller against a local server that answers like Strava: two pages of
//! activities and their streams, a token endpoint that rotates the refresh token at every
//! refresh and refuses the old ones, an access token that expires in the middle of a run,
//! and one 429. What lands in InfluxDB, what a restart remembers, what the metrics say.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::helpers::*;

const CLIENT_ID: &str = "4242";
const CLIENT_SECRET: &str = "strava-client-secret";
const FIRST_REFRESH_TOKEN: &str = "refresh-0";
/// 2018-01-01T00:00:00Z, the sources file's `since`.
const SINCE: i64 = 1_514_764_800;
/// "Happy Friday" (the reference's example), the newest of the first two pages.
const HAPPY_FRIDAY: i64 = 1_525_263_309;
/// Activities on the first page (a full one) before the two documented ones on the second.
const FIRST_PAGE: usize = 100;
/// The activity whose first streams request is answered 429.
const LIMITED: u64 = 1_050;

/// What the fake Strava knows and what it was asked.
#[derive(Default)]
struct Provider {
    /// Oldest first, as Strava lists them with `after`.
    activities: Vec<Value>,
    streams: BTreeMap<u64, Value>,
    /// The one refresh token the token endpoint accepts now.
    refresh_token: String,
    access_tokens: BTreeSet<String>,
    issued: u32,
    /// The refresh tokens presented and accepted, in order.
    refreshed_with: Vec<String>,
    /// Refusals of the token endpoint, with why.
    refused: Vec<String>,
    /// Requests answered 401 for a dead access token.
    unauthorized: u32,
    /// The next listing page 1 answered makes every access token expire.
    expire_after_page_one: bool,
    /// `(after, page)` of every listing answered.
    listed: Vec<(i64, u32)>,
    /// The activity ids whose streams were answered.
    streamed: Vec<u64>,
    limit_streams_of: Option<u64>,
    limited_at: Option<Instant>,
    /// When each API request came.
    requests_at: Vec<Instant>,
    used: u32,
}

#[derive(Clone, Default)]
struct Strava(Arc<Mutex<Provider>>);

impl Strava {
    fn lock(&self) -> MutexGuard<'_, Provider> {
        self.0.lock().expect("lock")
    }
}

impl Provider {
    /// Strava's rate-limit headers, counting this request. The limits are the documented
    /// example's, high enough for the test's few hundred requests.
    fn rate_headers(&mut self) -> [(&'static str, String); 2] {
        self.used += 1;
        self.requests_at.push(Instant::now());
        [
            ("x-ratelimit-limit", "600,30000".to_owned()),
            ("x-ratelimit-usage", format!("{},{}", self.used, self.used)),
        ]
    }

    /// The 401 Strava answers to a dead token, or `None` for a live one.
    fn refuse(&mut self, headers: &HeaderMap) -> Option<Response> {
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        if token.is_some_and(|t| self.access_tokens.contains(t)) {
            return None;
        }
        self.unauthorized += 1;
        let body = json!({ "message": "Authorization Error",
                           "errors": [{ "resource": "Athlete", "field": "access_token", "code": "invalid" }] });
        Some((StatusCode::UNAUTHORIZED, self.rate_headers(), Json(body)).into_response())
    }
}

async fn token(State(strava): State<Strava>, Form(form): Form<BTreeMap<String, String>>) -> Response {
    let mut p = strava.lock();
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        p.refused.push(format!("client credentials {form:?}"));
        let body = json!({ "message": "Bad Request",
                           "errors": [{ "resource": "Application", "field": "client_id", "code": "invalid" }] });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let presented = field("refresh_token").unwrap_or_default().to_owned();
    if field("grant_type") != Some("refresh_token") || presented != p.refresh_token {
        let why = format!("refresh token {presented:?} (current {:?})", p.refresh_token);
        p.refused.push(why);
        let body = json!({ "message": "Bad Request",
                           "errors": [{ "resource": "RefreshToken", "field": "refresh_token", "code": "invalid" }] });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    // Rotated: the one just used stops working.
    p.issued += 1;
    p.refreshed_with.push(presented);
    p.refresh_token = format!("refresh-{}", p.issued);
    let access = format!("access-{}", p.issued);
    p.access_tokens.insert(access.clone());
    let expires_at = chrono::Utc::now().timestamp() + 21_600;
    Json(json!({ "token_type": "Bearer", "access_token": access, "expires_at": expires_at,
                 "expires_in": 21_600, "refresh_token": p.refresh_token }))
    .into_response()
}

async fn activities(
    State(strava): State<Strava>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut p = strava.lock();
    if let Some(refused) = p.refuse(&headers) {
        return refused;
    }
    let number = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(after), Some(page), Some(per_page)) = (number("after"), number("page"), number("per_page"))
    else {
        return (StatusCode::BAD_REQUEST, format!("after, page and per_page are required: {q:?}"))
            .into_response();
    };
    p.listed.push((after, page as u32));
    if page == 1 && std::mem::take(&mut p.expire_after_page_one) {
        p.access_tokens.clear();
    }
    let newer: Vec<Value> = p
        .activities
        .iter()
        .filter(|a| start_of(a) > after)
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .cloned()
        .collect();
    (p.rate_headers(), Json(newer)).into_response()
}

async fn streams(
    State(strava): State<Strava>,
    Path(id): Path<u64>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut p = strava.lock();
    if let Some(refused) = p.refuse(&headers) {
        return refused;
    }
    let keys: BTreeSet<&str> = q.get("keys").map(|k| k.split(',').collect()).unwrap_or_default();
    let wanted =
        ["time", "latlng", "heartrate", "watts", "cadence", "altitude", "velocity_smooth", "distance"];
    if q.get("key_by_type").map(String::as_str) != Some("true") || !wanted.iter().all(|k| keys.contains(k)) {
        return (StatusCode::BAD_REQUEST, format!("keys and key_by_type=true expected: {q:?}"))
            .into_response();
    }
    let rate = p.rate_headers();
    if p.limit_streams_of == Some(id) {
        p.limit_streams_of = None;
        p.limited_at = Some(Instant::now());
        let body = json!({ "message": "Rate Limit Exceeded",
                           "errors": [{ "resource": "Application", "field": "rate limit", "code": "exceeded" }] });
        let mut response = (StatusCode::TOO_MANY_REQUESTS, rate, Json(body)).into_response();
        response.headers_mut().insert("retry-after", "2".parse().expect("header"));
        return response;
    }
    match p.streams.get(&id).cloned() {
        Some(body) => {
            p.streamed.push(id);
            (rate, Json(body)).into_response()
        }
        None => (StatusCode::NOT_FOUND, rate, Json(json!({ "message": "Record Not Found" }))).into_response(),
    }
}

fn start_of(activity: &Value) -> i64 {
    let text = activity["start_date"].as_str().expect("start_date");
    velometry_core::time::parse_rfc3339(text).expect("RFC 3339") / 1_000_000_000
}

fn rfc3339(unix: i64) -> String {
    velometry_core::time::format_rfc3339(unix * 1_000_000_000).replace(".000", "")
}

/// The API reference's example list for `getLoggedInAthleteActivities`, oldest first (as
/// Strava lists with `after`), verbatim: `upload_id` is wider than 64 bits.
fn documented() -> Vec<Value> {
    let mut list: Vec<Value> = serde_json::from_str(
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
    .expect("the documented example is JSON");
    list.reverse();
    list
}

/// Like the documented Bondcliff, `id` starting at `start` (Unix seconds).
fn activity(id: u64, start: i64, name: &str) -> Value {
    let mut a = documented()[0].clone();
    a["id"] = json!(id);
    a["name"] = json!(name);
    a["start_date"] = json!(rfc3339(start));
    a
}

/// Streams keyed by type, three samples ten seconds apart, along the documented example's
/// first points.
fn three_samples(seed: f64) -> Value {
    let stream = |data: Value| json!({ "data": data, "series_type": "distance", "original_size": 3, "resolution": "high" });
    json!({
        "time": stream(json!([0, 10, 20])),
        "latlng": stream(json!([[38.603734, -122.864112], [38.608798, -122.867714], [38.604691, -122.88178]])),
        "altitude": stream(json!([100.0 + seed, 101.5 + seed, 103.0 + seed])),
        "velocity_smooth": stream(json!([5.5, 6.0, 6.5])),
        "heartrate": stream(json!([120, 125, 130])),
        "watts": stream(json!([180, 190, 200])),
        "cadence": stream(json!([85, 86, 87])),
        "distance": stream(json!([0.0, 55.0, 115.0]))
    })
}

#[tokio::test]
async fn strava_activities_and_streams_land_with_rotated_tokens_a_401_a_429_and_a_restart() {
    let strava = Strava::default();
    {
        let mut p = strava.lock();
        // A full first page of rides in April 2018, then the two documented ones.
        for k in 0..FIRST_PAGE as u64 {
            let id = 1_000 + k;
            p.activities.push(activity(id, 1_522_540_800 + k as i64 * 3 * 3600, &format!("Ride {k}")));
            p.streams.insert(id, three_samples(k as f64));
        }
        for a in documented() {
            p.streams.insert(a["id"].as_u64().expect("id"), three_samples(0.0));
            p.activities.push(a);
        }
        p.refresh_token = FIRST_REFRESH_TOKEN.into();
        p.expire_after_page_one = true;
        p.limit_streams_of = Some(LIMITED);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v3/athlete/activities", get(activities))
        .route("/api/v3/activities/{id}/streams", get(streams))
        .with_state(strava.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sources = format!(
        r#"
[[source]]
name = "strava"
kind = "strava"
rider = "alice"
every = "1s"
client_id = "{CLIENT_ID}"
client_secret = "${{VELOMETRY_TEST_STRAVA_SECRET}}"
refresh_token = "${{VELOMETRY_TEST_STRAVA_REFRESH}}"
api_url = "{base}/api/v3"
token_url = "{base}/oauth/token"
since = "2018-01-01T00:00:00Z"
"#
    );
    // Secrets come from the environment, never from the file.
    std::env::set_var("VELOMETRY_TEST_STRAVA_SECRET", CLIENT_SECRET);
    std::env::set_var("VELOMETRY_TEST_STRAVA_REFRESH", FIRST_REFRESH_TOKEN);
    let mut env = Env::with_sources(&sources).await;

    // Every activity once, and three GPS samples of each, at start_date + time, in UTC.
    let where_ = "WHERE \"rider\" = 'alice' AND \"device\" = 'strava' AND \"source\" = 'strava'";
    let all = FIRST_PAGE + 2;
    env.wait_rows(&format!("SELECT \"duration_s\" FROM \"activity\" {where_}"), all).await;
    env.wait_rows(&format!("SELECT \"lat\" FROM \"gps\" {where_}"), 3 * all).await;
    let rows = env
        .wait_rows(
            &format!(
                "SELECT \"lat\", \"lon\", \"alt\", \"speed\" FROM \"gps\" {where_} AND time >= {}s AND time < {}s",
                HAPPY_FRIDAY,
                HAPPY_FRIDAY + 60
            ),
            3,
        )
        .await;
    let times: Vec<i64> = rows.iter().map(|r| r["time"].as_i64().expect("ns")).collect();
    let s = 1_000_000_000;
    assert_eq!(times, [HAPPY_FRIDAY * s, (HAPPY_FRIDAY + 10) * s, (HAPPY_FRIDAY + 20) * s]);
    assert_eq!(rows[1]["lat"], 38.608798);
    assert_eq!(rows[1]["lon"], -122.867714);
    assert_eq!(rows[2]["alt"], 103.0);
    assert_eq!(rows[0]["speed"], 5.5);
    let summary = env
        .wait_rows(
            &format!(
                "SELECT \"duration_s\", \"distance_m\", \"elevation_gain_m\", \"avg_bpm\", \"max_bpm\", \"avg_watts\", \"kcal\" \
                 FROM \"activity\" {where_} AND time = {HAPPY_FRIDAY}s"
            ),
            1,
        )
        .await;
    assert_eq!(summary[0]["duration_s"], 4500.0);
    assert_eq!(summary[0]["distance_m"], 24931.4);
    assert_eq!(summary[0]["elevation_gain_m"], 0.0);
    assert_eq!(summary[0]["avg_bpm"], 140.3);
    assert_eq!(summary[0]["max_bpm"], 178.0);
    assert_eq!(summary[0]["avg_watts"], 175.3);
    assert_eq!(summary[0]["kcal"], Value::Null, "a summary activity has no calories");
    for measurement in ["heart_rate", "power", "cadence", "distance"] {
        let field = match measurement {
            "heart_rate" => "bpm",
            "power" => "watts",
            "cadence" => "rpm",
            _ => "meters",
        };
        let count = env.influx.count(DB, measurement, field).await.expect("count");
        assert_eq!(count, 3 * all as u64, "{measurement}");
    }

    // The first run listed both pages from `since`, refreshed with the first refresh token,
    // met the expired access token on page 2 and refreshed again with the rotated one; the
    // 429 failed it, and the run after Retry-After did it all again.
    let (limited_at, next, refreshed, unauthorized) = {
        let p = strava.lock();
        assert_eq!(p.listed[..2], [(SINCE, 1), (SINCE, 2)], "{:?}", p.listed);
        assert!(p.refused.is_empty(), "the token endpoint refused {:?}", p.refused);
        let limited_at = p.limited_at.expect("a 429 was answered");
        let next = p.requests_at.iter().copied().find(|t| *t > limited_at).expect("a later request");
        (limited_at, next, p.refreshed_with.clone(), p.unauthorized)
    };
    assert_eq!(refreshed[..2], [FIRST_REFRESH_TOKEN, "refresh-1"], "each refresh with the newest token");
    assert!(unauthorized >= 1, "the expired access token was answered 401");
    assert!(
        next - limited_at >= Duration::from_millis(1_900),
        "the request after a 429 came {:?} later, not after Retry-After: 2",
        next - limited_at
    );
    let text = env.collector.metrics().await;
    assert!(
        metric(&text, "collector_source_failures_total{source=\"strava\",reason=\"rate_limited\"}") >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "collector_source_failures_total{source=\"strava\",reason=\"auth\"}"),
        0.0,
        "{text}"
    );
    assert!(
        metric(&text, "collector_source_readings_total{source=\"strava\"}") >= (16 * all) as f64,
        "{text}"
    );

    // Later runs ask only after the newest activity stored.
    let advanced =
        eventually(|| async { strava.lock().listed.iter().any(|&(after, _)| after == HAPPY_FRIDAY) }).await;
    assert!(advanced, "{:?}\n{}", strava.lock().listed, env.collector.logs());

    // Restarted, with every access token dead and a new ride: the collector refreshes with
    // the rotated refresh token it saved (the one in the sources file is long refused) and
    // asks only for what is newer than Happy Friday. Stopped first, so that what the server
    // records next is the restarted process's alone.
    env.collector.kill().await;
    let ride_start = chrono::Utc::now().timestamp() - 2 * 3600;
    let (listed_before, streamed_before, refreshed_before, last_issued) = {
        let mut p = strava.lock();
        p.access_tokens.clear();
        p.activities.push(activity(9_001, ride_start, "Morning Ride"));
        p.streams.insert(9_001, three_samples(50.0));
        (p.listed.len(), p.streamed.len(), p.refreshed_with.len(), p.refresh_token.clone())
    };
    env.collector.restart().await;
    env.wait_rows(&format!("SELECT \"duration_s\" FROM \"activity\" {where_}"), all + 1).await;
    let rows = env
        .wait_rows(
            &format!(
                "SELECT \"alt\" FROM \"gps\" {where_} AND time >= {ride_start}s AND time < {}s",
                ride_start + 60
            ),
            3,
        )
        .await;
    assert_eq!(rows[0]["time"].as_i64(), Some(ride_start * s));
    assert_eq!(rows[0]["alt"], 150.0);
    {
        let p = strava.lock();
        let listed_after = &p.listed[listed_before..];
        assert_eq!(listed_after.first(), Some(&(HAPPY_FRIDAY, 1)), "{listed_after:?}");
        assert!(listed_after.iter().all(|&(after, _)| after >= HAPPY_FRIDAY), "{listed_after:?}");
        assert_eq!(p.streamed[streamed_before..], [9_001], "no old activity fetched again");
        assert!(p.refused.is_empty(), "the token endpoint refused {:?}", p.refused);
        assert_eq!(
            p.refreshed_with[refreshed_before..],
            [last_issued],
            "after the restart, one refresh, with the rotated token saved before it"
        );
    }
    // The run is counted once all of its requests are done, which may be after its
    // readings are already stored.
    let counted = eventually(|| async {
        metric(&env.collector.metrics().await, "collector_source_runs_total{source=\"strava\"}") >= 1.0
    })
    .await;
    let text = env.collector.metrics().await;
    assert!(counted, "the run after the restart is never counted: {text}");
    assert!(metric(&text, "collector_source_readings_total{source=\"strava\"}") >= 16.0, "{text}");
    assert!(
        metric(&text, "collector_source_last_success_timestamp_seconds{source=\"strava\"}") > 1.7e9,
        "{text}"
    );
    assert_eq!(
        metric(&text, "collector_source_failures_total{source=\"strava\",reason=\"auth\"}"),
        0.0,
        "{text}"
    );
    for (measurement, field, expected) in [("activity", "duration_s", all + 1), ("gps", "lat", 3 * (all + 1))]
    {
        let count = env.influx.count(DB, measurement, field).await.expect("count");
        assert_eq!(count, expected as u64, "each {measurement} point once");
    }
}
