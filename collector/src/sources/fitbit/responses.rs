//! Fitbit's answers into readings: heart rate, sleep, SpO2, HRV and activities.

use super::*;

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
pub(super) fn heart(
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
pub(super) fn sleep(body: &Value, offset_ms: i64, now: Nanos) -> Result<Vec<Reading>, Failure> {
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
pub(super) fn spo2(body: &Value, date: NaiveDate, offset_ms: i64, now: Nanos) -> Vec<Reading> {
    let Some(avg) = body.pointer("/value/avg").and_then(number) else {
        return Vec::new();
    };
    daily(Metric::Spo2, noon(date_of(body, date), offset_ms), now, &[("percent", avg)], body)
}

/// HRV of one night, at noon of the date.
pub(super) fn hrv(
    body: &Value,
    date: NaiveDate,
    offset_ms: i64,
    now: Nanos,
) -> Result<Vec<Reading>, Failure> {
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
pub(super) struct ActivityPage {
    pub(super) readings: Vec<Reading>,
    /// The request of the next page (path and query), if there is one.
    pub(super) next: Option<String>,
    /// The local date of the last activity on the page.
    pub(super) last_date: Option<NaiveDate>,
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

pub(super) fn activities(body: &Value, now: Nanos) -> Result<ActivityPage, Failure> {
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
