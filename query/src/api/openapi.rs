//! `GET /openapi.json`: the API described as OpenAPI 3.1, for client generators and for
//! people. Every path of the router is in it; the integration tests call each one.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use velometry_core::reading::Metric;

/// The handler.
pub async fn document() -> Response {
    Json(spec()).into_response()
}

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": location, "required": location == "path", "description": description, "schema": schema })
}

/// The OpenAPI document.
pub fn spec() -> Value {
    let rider = param(
        "rider",
        "path",
        "The rider's id from the riders file.",
        json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}),
    );
    let time =
        json!({"type": "string", "description": "RFC 3339 (2026-11-27T10:00:00Z) or epoch milliseconds"});
    let from =
        param("from", "query", "Start of the range, inclusive. Default: 24 hours before `to`.", time.clone());
    let to = param("to", "query", "End of the range, exclusive. Default: now.", time);
    let budget = |default: u32, min: u32| {
        param(
            "max_points",
            "query",
            "Most points in the answer.",
            json!({"type": "integer", "minimum": min, "maximum": 10000, "default": default}),
        )
    };
    let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let error = json!({"description": "What to fix, as {\"error\": \"…\"}", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let errors = json!({
        "400": error, "401": error, "403": error, "404": error,
        "503": {"description": "InfluxDB is unavailable; retry after the Retry-After header."}
    });
    let ok = |description: &str, schema: Value| {
        let mut responses = errors.clone();
        responses["200"] =
            json!({"description": description, "content": {"application/json": {"schema": schema}}});
        responses
    };
    let get = |summary: &str, parameters: Vec<Value>, responses: Value| json!({"get": {"summary": summary, "parameters": parameters, "responses": responses, "security": [{}, {"viewer": []}]}});
    let mut export_responses = errors.clone();
    export_responses["200"] = json!({"description": "The file, streamed.", "content": {
        "application/gpx+xml": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "velometry query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "History of riders' readings at any zoom: series downsampled to a point budget from rollup tiers, tracks, summaries and exports. Public riders are readable by anyone; private riders need a viewer token (Authorization: Bearer …). Times in answers are epoch milliseconds unless named otherwise."
        },
        "components": {
            "securitySchemes": {"viewer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Series": {"type": "object", "properties": {
                    "rider": {"type": "string"}, "metric": {"type": "string"}, "field": {"type": "string"},
                    "method": {"enum": ["m4", "lttb", "mean"]}, "tier": {"enum": ["raw", "1m", "1h"]},
                    "bucket_ms": {"type": "integer"}, "from": {"type": "integer"}, "to": {"type": "integer"},
                    "points": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]}}}}
            }
        },
        "paths": {
            "/v1/riders": get("The riders the caller may see, with the time span of their data.", vec![],
                ok("Riders.", json!({"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "public": {"type": "boolean"},
                    "first": {"type": ["string", "null"]}, "last": {"type": ["string", "null"]}}}}))),
            "/v1/riders/{rider}/series/{metric}": get(
                "One field of a metric over a range, at most max_points points. m4 (default) keeps each bucket's first, last, minimum and maximum, so a chart is pixel-identical to one of the raw data; lttb keeps the shape with fewer points; mean gives one mean per bucket. Answered from the coarsest rollup tier that gives what the raw data would.",
                vec![rider.clone(),
                    param("metric", "path", "The measurement.", json!({"enum": metrics})),
                    param("field", "query", "The field; default: the metric's first field (docs/schema.md).", json!({"type": "string"})),
                    from.clone(), to.clone(), budget(1000, 10),
                    param("method", "query", "How to reduce.", json!({"enum": ["m4", "lttb", "mean"], "default": "m4"})),
                    param("tier", "query", "Read from this tier instead of the one chosen.", json!({"enum": ["auto", "raw", "1m", "1h"], "default": "auto"}))],
                ok("The points.", json!({"$ref": "#/components/schemas/Series"}))),
            "/v1/riders/{rider}/track": get(
                "The route as a GeoJSON Feature: a LineString simplified to at most max_points vertices (endpoints kept), with the time of each vertex in properties.times (epoch ms) and properties.coordTimes (RFC 3339).",
                vec![rider.clone(), from.clone(), to.clone(), budget(1000, 2)],
                ok("A GeoJSON Feature.", json!({"type": "object"}))),
            "/v1/riders/{rider}/latest": get("The latest reading of every metric.", vec![rider.clone()],
                ok("Per metric, the time, device and fields of its latest reading.", json!({"type": "object"}))),
            "/v1/riders/{rider}/summary": get(
                "Distance, moving time, elevation gain and loss (3 m hysteresis), average and maximum speed, heart rate with time in zones (from the rider's max_hr), power and work.",
                vec![rider.clone(), from.clone(), to.clone()],
                ok("The summary.", json!({"type": "object"}))),
            "/v1/riders/{rider}/export.gpx": {"get": {"summary": "GPX 1.1 at full resolution with heart rate, cadence and temperature in Garmin's TrackPointExtension and power, streamed.",
                "parameters": [rider.clone(), from.clone(), to.clone()], "responses": export_responses.clone()}},
            "/v1/riders/{rider}/export.csv": {"get": {"summary": "CSV at full resolution (time, lat, lon, alt, speed, heart_rate, cadence, power, temperature, distance), streamed.",
                "parameters": [rider, from, to], "responses": export_responses}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/healthz": {"get": {"summary": "The process is alive.", "responses": {"200": {"description": "ok"}}}}
        }
    })
}
