//! The schemas of the answers (`components.schemas` of the OpenAPI document), one per answer
//! type, as strict as the answers are: every property the service writes is required, no
//! other is allowed, and numbers carry the bounds their values have.

use serde_json::{json, Map, Value};

use crate::api::{EARLIEST, LATEST, MAX_POINTS};

/// `{"type": [t, "null"]}` for an optional value.
fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// An object with exactly `properties`, all required.
fn object(properties: Value) -> Value {
    let required: Vec<String> =
        properties.as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    json!({"type": "object", "required": required, "properties": properties, "additionalProperties": false})
}

/// The schemas, given the metric names and the names of all their fields.
pub fn components(metrics: &[&str], fields: &[&str]) -> Value {
    let (earliest, latest) = (EARLIEST / 1_000_000, LATEST / 1_000_000);
    let epoch_ms = json!({"type": "integer", "minimum": earliest, "maximum": latest});
    let rfc3339 = json!({"type": "string", "format": "date-time"});
    let rider_id = json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"});
    let non_negative = json!({"type": "number", "minimum": 0});
    let mut schemas = Map::new();
    schemas.insert("Error".into(), object(json!({"error": {"type": "string", "minLength": 1}})));
    schemas.insert(
        "Riders".into(),
        json!({"type": "array", "items": object(json!({
            "id": rider_id, "name": {"type": "string"}, "public": {"type": "boolean"},
            "first": nullable(rfc3339.clone()), "last": nullable(rfc3339.clone())
        }))}),
    );
    schemas.insert(
        "Series".into(),
        object(json!({
            "rider": rider_id, "metric": {"enum": metrics}, "field": {"enum": fields},
            "method": {"enum": ["m4", "lttb", "mean"]}, "tier": {"enum": ["raw", "1m", "1h"]},
            "bucket_ms": {"type": "integer", "minimum": 1},
            "from": epoch_ms, "to": epoch_ms,
            "points": {"type": "array", "maxItems": MAX_POINTS, "items": {
                "type": "array", "prefixItems": [epoch_ms, {"type": "number"}], "items": false, "minItems": 2}}
        })),
    );
    let position = json!({"type": "array", "items": false, "minItems": 2, "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180}, {"type": "number", "minimum": -90, "maximum": 90}]});
    schemas.insert(
        "Track".into(),
        object(json!({
            "type": {"const": "Feature"},
            "geometry": nullable(object(json!({
                "type": {"const": "LineString"},
                "coordinates": {"type": "array", "minItems": 2, "maxItems": MAX_POINTS, "items": position}
            }))),
            "properties": object(json!({
                "rider": rider_id,
                "times": {"type": "array", "maxItems": MAX_POINTS, "items": epoch_ms},
                "coordTimes": {"type": "array", "maxItems": MAX_POINTS, "items": rfc3339}
            }))
        })),
    );
    schemas.insert(
        "Latest".into(),
        object(json!({
            "rider": rider_id,
            "metrics": {"type": "object", "propertyNames": {"enum": metrics}, "additionalProperties": object(json!({
                "time": rfc3339, "device": nullable(json!({"type": "string"})),
                "fields": {"type": "object", "propertyNames": {"enum": fields}, "additionalProperties": {"type": "number"}}
            }))}
        })),
    );
    let zone = object(json!({
        "zone": {"type": "integer", "minimum": 1, "maximum": 5}, "min_bpm": non_negative,
        "max_bpm": nullable(non_negative.clone()), "seconds": non_negative
    }));
    schemas.insert(
        "Summary".into(),
        object(json!({
            "rider": rider_id, "from": epoch_ms, "to": epoch_ms,
            "devices": {"type": "object", "additionalProperties": {"type": "string"}},
            "distance_m": non_negative, "moving_time_s": non_negative,
            "elevation_gain_m": nullable(non_negative.clone()), "elevation_loss_m": nullable(non_negative.clone()),
            "avg_speed_mps": nullable(non_negative.clone()), "max_speed_mps": nullable(non_negative.clone()),
            "heart_rate": nullable(object(json!({
                "avg_bpm": non_negative, "max_bpm": non_negative, "samples": {"type": "integer", "minimum": 1},
                "zones": nullable(json!({"type": "array", "minItems": 5, "maxItems": 5, "items": zone}))
            }))),
            "power": nullable(object(json!({
                "avg_watts": non_negative, "max_watts": non_negative, "work_kj": non_negative,
                "samples": {"type": "integer", "minimum": 1}
            })))
        })),
    );
    Value::Object(schemas)
}
