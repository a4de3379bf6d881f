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
    let local =
        config("api_url = \"http://127.0.0.1:9/api/v3/\"\nsince = \"2018-01-01T00:00:00Z\"").expect("valid");
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
    assert_eq!(summary.metric(), Metric::Activity);
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
    let of = |metric: Metric| samples.iter().filter(|r| r.metric() == metric).collect::<Vec<_>>();
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
    assert!(samples.iter().all(|r| r.metric() == Metric::Distance));
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
                    axum::Json(json!({ "time": { "data": [0, 1] }, "heartrate": { "data": [120, 121] } })),
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
    assert_eq!(readings.iter().filter(|r| r.metric() == Metric::Activity).count(), 2);
    assert_eq!(readings.iter().filter(|r| r.metric() == Metric::HeartRate).count(), 4);
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
