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
    let event_id = json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"});
    // What the event's readings carry in their `event` field (docs/schema.md): 53 bits.
    let event_code = json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_u64});
    let ms_or_null = nullable(epoch_ms.clone());
    let seconds_or_null = nullable(json!({"type": "integer", "minimum": 0}));
    let eta = nullable(object(json!({"p10": epoch_ms, "p50": epoch_ms, "p90": epoch_ms})));
    let index = json!({"type": "integer", "minimum": 0});
    let count = json!({"type": "integer", "minimum": 0});
    schemas.insert(
        "Events".into(),
        object(json!({"events": {"type": "array", "items": object(json!({
            "id": event_id, "code": event_code, "name": {"type": "string"}, "public": {"type": "boolean"}, "length_m": non_negative,
            "start": epoch_ms, "entrants": count, "checkpoints": count
        }))}})),
    );
    let checkpoint = object(json!({
        "index": index, "name": {"type": "string"}, "distance_m": non_negative,
        "lat": {"type": "number", "minimum": -90, "maximum": 90}, "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "cutoff_at": ms_or_null, "cutoff_after_start_s": seconds_or_null
    }));
    schemas.insert(
        "Event".into(),
        object(json!({
            "id": event_id, "code": event_code, "name": {"type": "string"}, "public": {"type": "boolean"}, "length_m": non_negative,
            "checkpoints": {"type": "array", "items": checkpoint},
            "finish_cutoff_at": ms_or_null, "finish_cutoff_after_start_s": seconds_or_null,
            "entrants": {"type": "array", "items": object(json!({"rider": rider_id, "name": {"type": "string"}, "start": epoch_ms}))}
        })),
    );
    schemas.insert(
        "Course".into(),
        object(json!({
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "minItems": 1, "prefixItems": [object(json!({
                "type": {"const": "Feature"},
                "geometry": object(json!({"type": {"const": "LineString"},
                    "coordinates": {"type": "array", "minItems": 2, "maxItems": MAX_POINTS, "items": position}})),
                "properties": object(json!({"kind": {"const": "course"}, "event": event_id, "length_m": non_negative,
                    "distances_m": {"type": "array", "maxItems": MAX_POINTS, "items": non_negative}}))
            }))], "items": object(json!({
                "type": {"const": "Feature"},
                "geometry": object(json!({"type": {"const": "Point"}, "coordinates": position})),
                "properties": object(json!({"kind": {"const": "checkpoint"}, "index": index, "name": {"type": "string"}, "distance_m": non_negative}))
            }))}
        })),
    );
    schemas.insert(
        "Profile".into(),
        object(json!({
            "event": event_id, "length_m": non_negative,
            "points": {"type": "array", "maxItems": MAX_POINTS, "items": {
                "type": "array", "prefixItems": [non_negative, {"type": "number"}], "items": false, "minItems": 2}}
        })),
    );
    let statuses = json!({"enum": ["riding", "stopped", "resting", "sleeping", "no_signal", "finished", "scratched", "not_started"]});
    schemas.insert(
        "Standings".into(),
        object(json!({
            "event": event_id, "name": {"type": "string"}, "length_m": non_negative, "as_of": epoch_ms,
            "standings": {"type": "array", "items": object(json!({
                "rider": rider_id, "name": {"type": "string"},
                "rank": nullable(json!({"type": "integer", "minimum": 1})),
                "status": statuses, "status_since": ms_or_null,
                "distance_m": non_negative, "current_m": non_negative, "to_go_m": non_negative,
                "position": nullable(json!({"type": "array", "prefixItems": [
                    {"type": "number", "minimum": -90, "maximum": 90}, {"type": "number", "minimum": -180, "maximum": 180}
                ], "items": false, "minItems": 2})),
                "gap_m": nullable(non_negative.clone()), "gap_s": nullable(json!({"type": "number"})),
                "off_course": {"type": "boolean"},
                "last_fix": ms_or_null, "last_fix_age_s": nullable(non_negative.clone()),
                "next_checkpoint": nullable(object(json!({
                    "index": index, "name": {"type": "string"}, "distance_m": non_negative, "eta": eta
                }))),
                "eta_finish": eta, "checkpoints_reached": count, "finished": ms_or_null, "start": epoch_ms
            }))}
        })),
    );
    schemas.insert(
        "Flow".into(),
        object(json!({
            "event": event_id, "tier": {"enum": ["raw", "1m", "1h"]}, "bucket_ms": {"type": "integer", "minimum": 1},
            "from": epoch_ms, "to": epoch_ms,
            "riders": {"type": "array", "items": object(json!({"rider": rider_id, "points": {"type": "array", "maxItems": MAX_POINTS, "items": {
                "type": "array", "prefixItems": [epoch_ms, non_negative], "items": false, "minItems": 2}}}))}
        })),
    );
    let arrivals = json!({"type": "array", "items": object(json!({
        "rider": rider_id, "outcome": {"enum": ["arrived", "missed", "cutoff"]}, "time": epoch_ms,
        "late": {"type": "boolean"}, "elapsed_s": {"type": "number"}
    }))});
    schemas.insert(
        "Checkpoints".into(),
        object(json!({
            "event": event_id,
            "checkpoints": {"type": "array", "items": object(json!({
                "index": index, "name": {"type": "string"}, "distance_m": non_negative,
                "cutoff_at": ms_or_null, "cutoff_after_start_s": seconds_or_null,
                "arrivals": arrivals
            }))},
            "finish": object(json!({
                "index": index, "distance_m": non_negative,
                "cutoff_at": ms_or_null, "cutoff_after_start_s": seconds_or_null,
                "arrivals": arrivals
            }))
        })),
    );
    schemas.insert(
        "Stops".into(),
        object(json!({
            "event": event_id, "rider": rider_id,
            "stops": {"type": "array", "items": object(json!({
                "start": epoch_ms, "end": epoch_ms, "duration_s": non_negative,
                "lat": {"type": "number", "minimum": -90, "maximum": 90}, "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "at_m": nullable(non_negative.clone()), "status": {"enum": ["stopped", "resting", "sleeping"]}
            }))}
        })),
    );
    Value::Object(schemas)
}
