//! The OsmAnd / Traccar Client protocol at `GET|POST /v1/osmand` (also GPSLogger's custom
//! URL). One fix per request, as query or form parameters, or Traccar Client's JSON. The
//! device's token is its `id` (or `deviceid` / `device_id`).
//!
//! Speed is in knots, as Traccar expects, unless `speed_unit=mps|kmh` says otherwise (the
//! JSON variant is in m/s). A `heartRate` or `hr` attribute becomes a heart_rate reading;
//! `cadence`, `power` and `temperature` attributes become readings of their own. A fix
//! that can never be stored is answered 200 and dead-lettered, and one stamped ahead of the
//! collector's clock is kept at the collector's time ([`super::device`]).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use velometry_core::reading::Metric;
use velometry_core::time::{parse_rfc3339, Nanos};

use super::device::Fixes;
use super::{media_type, read_body};
use crate::error::ApiError;
use crate::state::AppState;

const PROTOCOL: &str = "osmand";
const KNOT_MPS: f64 = 0.514_444;
/// The parameters that carry the token: never written to a dead letter.
const TOKEN_KEYS: [&str; 3] = ["id", "deviceid", "device_id"];

/// `GET|POST /v1/osmand`: answers 200 with an empty body.
///
/// # Errors
/// 401 for a missing or unknown `id`, 400 naming the parameter at fault when the request is
/// not an OsmAnd fix at all, 503 when nothing can be made durable.
pub async fn osmand(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(mut params): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = read_body(&headers, body, state.limits).await?;
    let (token, fixes) = match media_type(&headers).as_deref() {
        Some("application/json") if !body.is_empty() => {
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
            from_json(&value)
        }
        None | Some("application/x-www-form-urlencoded" | "text/plain") => {
            if !body.is_empty() {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                    .map_err(|e| ApiError::BadRequest(format!("body is not a URL-encoded form: {e}")))?;
                params.extend(form);
            }
            from_params(&params)
        }
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {other:?} is not OsmAnd: send query parameters, a URL-encoded form, or Traccar JSON"
            )))
        }
    };
    let identity = state.auth.device(token.as_deref())?;
    let fixes = fixes.map_err(ApiError::BadRequest)?;
    state.ingest.commit_fixes(PROTOCOL, &identity, fixes).await?;
    Ok(StatusCode::OK)
}

/// The token, and the fix or why the request is not one.
pub type Parsed = (Option<String>, Result<Fixes, String>);

/// A fix sent as query or form parameters (OsmAnd, Traccar Client, GPSLogger).
pub fn from_params(params: &[(String, String)]) -> Parsed {
    let get =
        |keys: &[&str]| keys.iter().find_map(|k| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.trim()));
    let token = get(&TOKEN_KEYS).map(str::to_owned);
    let fixes = (|| {
        let number = |keys: &[&str]| -> Result<Option<f64>, String> {
            match get(keys) {
                None | Some("") => Ok(None),
                Some(v) => {
                    v.parse::<f64>().map(Some).map_err(|_| format!("{} {v:?} is not a number", keys[0]))
                }
            }
        };
        let (lat, lon) = match (number(&["lat"])?, number(&["lon"])?, get(&["location"])) {
            (Some(lat), Some(lon), _) => (lat, lon),
            (_, _, Some(location)) => {
                let (a, b) = location.split_once(',').ok_or("location must be \"lat,lon\"")?;
                let parse = |s: &str| {
                    s.trim().parse::<f64>().map_err(|_| format!("location {location:?} is not \"lat,lon\""))
                };
                (parse(a)?, parse(b)?)
            }
            _ => return Err("lat and lon (or location=lat,lon) are required".to_owned()),
        };
        let device_time = match get(&["timestamp"]) {
            None | Some("") => None,
            Some(t) => Some(parse_timestamp(t)?),
        };
        let to_mps = match get(&["speed_unit"]).unwrap_or("knots") {
            "knots" | "kn" => KNOT_MPS,
            "mps" | "m/s" => 1.0,
            "kmh" | "km/h" => 1.0 / 3.6,
            other => return Err(format!("speed_unit {other:?} is not one of knots, mps, kmh")),
        };
        let gps = gps_fields(
            lat,
            lon,
            number(&["altitude", "alt"])?,
            number(&["speed"])?.map(|s| s * to_mps),
            number(&["bearing", "heading"])?,
            number(&["accuracy"])?,
        );
        let attributes = [
            (Metric::HeartRate, "bpm", number(&["heartRate", "hr", "heartrate"])?),
            (Metric::Cadence, "rpm", number(&["cadence"])?),
            (Metric::Power, "watts", number(&["power"])?),
            (Metric::Temperature, "celsius", number(&["temperature", "temp"])?),
        ];
        let message = Value::Object(
            params
                .iter()
                .filter(|(k, _)| !TOKEN_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        );
        let mut fixes = Fixes::default();
        let time = fixes.time(device_time);
        fixes.add(Metric::Gps, time, gps, &message);
        for (metric, field, value) in attributes {
            if let Some(v) = value {
                fixes.add(metric, time, [(field, v)], &message);
            }
        }
        Ok(fixes)
    })();
    (token, fixes)
}

/// A fix sent as Traccar Client's JSON.
pub fn from_json(value: &Value) -> Parsed {
    let token = value.get("device_id").and_then(Value::as_str).map(str::to_owned);
    let fixes = (|| {
        let location = value.get("location").ok_or("missing \"location\"")?;
        let coords = location.get("coords").ok_or("missing \"location.coords\"")?;
        let number = |key: &str| coords.get(key).and_then(Value::as_f64);
        let lat = number("latitude").ok_or("missing location.coords.latitude")?;
        let lon = number("longitude").ok_or("missing location.coords.longitude")?;
        let device_time = match location.get("timestamp") {
            Some(Value::String(s)) => Some(parse_timestamp(s)?),
            Some(Value::Number(n)) => Some(parse_timestamp(&n.to_string())?),
            _ => None,
        };
        let gps =
            gps_fields(lat, lon, number("altitude"), number("speed"), number("heading"), number("accuracy"));
        let hr = location
            .get("extras")
            .and_then(|x| x.get("heartRate").or_else(|| x.get("hr")))
            .and_then(Value::as_f64);
        let mut message = value.clone();
        if let Some(object) = message.as_object_mut() {
            object.remove("device_id");
        }
        let mut fixes = Fixes::default();
        let time = fixes.time(device_time);
        fixes.add(Metric::Gps, time, gps, &message);
        if let Some(bpm) = hr {
            fixes.add(Metric::HeartRate, time, [("bpm", bpm)], &message);
        }
        Ok(fixes)
    })();
    (token, fixes)
}

/// GPS fields, leaving out what phones report as negative when unknown (speed, heading and
/// accuracy of -1).
fn gps_fields(
    lat: f64,
    lon: f64,
    alt: Option<f64>,
    speed: Option<f64>,
    heading: Option<f64>,
    accuracy: Option<f64>,
) -> Vec<(&'static str, f64)> {
    let known = |v: Option<f64>| v.filter(|v| *v >= 0.0);
    [
        ("lat", Some(lat)),
        ("lon", Some(lon)),
        ("alt", alt),
        ("speed", known(speed)),
        ("heading", known(heading)),
        ("accuracy", known(accuracy)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect()
}

/// Epoch seconds, epoch milliseconds, ISO 8601, or `yyyy-MM-dd HH:mm:ss`.
fn parse_timestamp(value: &str) -> Result<Nanos, String> {
    if let Ok(n) = value.parse::<f64>() {
        // Epoch milliseconds are beyond 10^11; seconds will not be before the year 5138.
        let ns = if n.abs() >= 1e11 { n * 1e6 } else { n * 1e9 };
        return if ns.is_finite() && ns.abs() < i64::MAX as f64 {
            Ok(ns as i64)
        } else {
            Err(format!("timestamp {value:?} is out of range"))
        };
    }
    parse_rfc3339(value).map_err(|_| {
        format!("timestamp {value:?} is not epoch seconds or milliseconds, ISO 8601, or yyyy-MM-dd HH:mm:ss")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Nanos = 1_764_237_600_000_000_000;

    fn params(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).expect("query")
    }

    #[test]
    fn reads_a_traccar_fix_with_speed_in_knots_and_a_heart_rate() {
        let (token, fixes) =
            from_params(&params("id=tok&lat=45.1&lon=7.6&timestamp=1764237600&speed=10&heartRate=142"));
        let readings = fixes.expect("valid").readings;
        assert_eq!(token.as_deref(), Some("tok"));
        assert_eq!(readings[0].time(), NOW);
        assert!((readings[0].float("speed").expect("speed") - 5.14444).abs() < 1e-9);
        assert_eq!(readings[1].float("bpm"), Some(142.0));
    }

    #[test]
    fn reads_location_and_every_timestamp_form() {
        for ts in ["1764237600", "1764237600000", "2025-11-27T10:00:00Z", "2025-11-27 10:00:00"] {
            let q = format!(
                "id=t&location=45.1,7.6&timestamp={}&speed=3.6&speed_unit=kmh",
                ts.replace(' ', "%20")
            );
            let readings = from_params(&params(&q)).1.expect("valid").readings;
            assert_eq!(readings[0].time(), NOW, "{ts}");
            assert!((readings[0].float("speed").expect("speed") - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn reads_traccar_json_in_metres_per_second() {
        let body = serde_json::json!({"device_id":"tok","location":{"timestamp":"2025-11-27T10:00:00Z",
            "coords":{"latitude":45.1,"longitude":7.6,"speed":-1,"heading":90,"accuracy":5,"altitude":250},
            "battery":{"level":0.8},"extras":{}}});
        let (token, fixes) = from_json(&body);
        let gps = &fixes.expect("valid").readings[0];
        assert_eq!(token.as_deref(), Some("tok"));
        assert_eq!(gps.float("speed"), None, "-1 means unknown");
        assert_eq!(gps.float("alt"), Some(250.0));
    }

    #[test]
    fn says_what_is_missing() {
        let err = from_params(&params("id=t&lat=45")).1.unwrap_err();
        assert_eq!(err, "lat and lon (or location=lat,lon) are required");
    }

    #[test]
    fn a_fix_that_can_never_be_stored_is_a_dead_letter_without_the_token() {
        let fixes = from_params(&params("id=secret&lat=NaN&lon=1&heartRate=300&timestamp=1764237600"))
            .1
            .expect("well-formed");
        assert!(fixes.readings.is_empty());
        let reasons: Vec<&str> = fixes.dead.iter().map(|d| d.reason.label()).collect();
        assert_eq!(reasons, ["not_finite", "out_of_range"]);
        assert_eq!(fixes.dead[0].error, "gps: field \"lat\" is not a finite number");
        assert_eq!(fixes.dead[0].message["heartRate"], "300");
        assert!(fixes.dead[0].message.get("id").is_none(), "the token stays out");
    }
}
