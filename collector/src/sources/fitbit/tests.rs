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
    let fitbit = settings("api_url = \"http://127.0.0.1:9/\"\nresources = [\"sleep\", \"hrv\", \"sleep\"]")
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

    let newer = heart(&body, date("2019-01-01"), LA, now, Some(ns("2019-01-01T07:01:00Z"))).expect("parses");
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
    let hrv_body =
        json!({"hrv": [{"value": {"dailyRmssd": 34.938, "deepRmssd": 31.567}, "dateTime": "2021-10-04"}]});
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
