//! `GET /openapi.json`: the API described as OpenAPI 3.1, for client generators and for
//! people. Every path of the router is in it, every parameter with the constraints the
//! service enforces (patterns, bounds, enums), and every answer with its schema
//! ([`schemas`]); the integration tests validate the real service's answers against it and
//! check each documented constraint against what the service refuses.

pub mod schemas;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use velometry_core::reading::Metric;

use super::{EARLIEST, LATEST, MAX_POINTS};

/// The handler.
pub async fn document() -> Response {
    Json(spec()).into_response()
}

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": location, "required": location == "path", "description": description, "schema": schema })
}

/// RFC 3339 as the service reads it, with years 1970 to 2199 (and for `to`, 2200-01-01T00:00:00
/// itself): with an offset (`Z` or `±hh:mm`; `t` or a space may stand for the `T`), or
/// without one, meaning UTC (`T` or a space). The bounds are instants, which a pattern cannot
/// compare across offsets: the parameters' descriptions give them.
fn rfc3339(end: bool) -> String {
    let clock = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?";
    let offset = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    let date = "(?:19[7-9][0-9]|2[01][0-9]{2})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])";
    let last = if end {
        "|2200-01-01(?:[Tt ]00:00:00(?:\\.0+)?(?:[Zz]|[+-]00:00)|[T ]00:00:00(?:\\.0+)?)"
    } else {
        ""
    };
    format!("^(?:{date}(?:[Tt ]{clock}{offset}|[T ]{clock}){last})$")
}

/// The schema of `from` (`end` false) or `to` (`end` true): epoch milliseconds as a JSON
/// number, or an RFC 3339 string.
fn time(end: bool) -> Value {
    let (earliest, latest) = (EARLIEST / 1_000_000, LATEST / 1_000_000);
    let millis = if end {
        json!({"type": "number", "exclusiveMinimum": earliest, "maximum": latest})
    } else {
        json!({"type": "number", "minimum": earliest, "exclusiveMaximum": latest})
    };
    json!({"anyOf": [millis, {"type": "string", "pattern": rfc3339(end)}]})
}

/// The OpenAPI document.
pub fn spec() -> Value {
    let rider = param(
        "rider",
        "path",
        "The rider's id from the riders file; an unknown one is answered 404.",
        json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}),
    );
    let bounds = "Times are accepted from 1970-01-01T00:00:00Z (epoch ms 0) to 2200-01-01T00:00:00Z (epoch ms 7258118400000); outside them, or with `from` not before `to`, the answer is 400.";
    let from = param(
        "from",
        "query",
        &format!("Start of the range, inclusive: epoch milliseconds (a JSON number) or RFC 3339 (without an offset: UTC). Default: 24 hours before `to`. {bounds}"),
        time(false),
    );
    let to = param(
        "to",
        "query",
        &format!("End of the range, exclusive, in the same forms as `from`. Default: now. {bounds}"),
        time(true),
    );
    let at = param(
        "at",
        "query",
        &format!("The moment to give the standings of, as history holds them (a replay): epoch milliseconds or RFC 3339, as `from`, not in the future. Default: now. {bounds}"),
        time(true),
    );
    let budget = |default: usize, min: usize| {
        param(
            "max_points",
            "query",
            "Most points in the answer.",
            json!({"type": "integer", "minimum": min, "maximum": MAX_POINTS, "default": default}),
        )
    };
    let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let mut fields: Vec<&str> = Metric::ALL.iter().flat_map(|m| m.fields().iter().map(|f| f.name)).collect();
    fields.sort_unstable();
    fields.dedup();
    let error = |why: &str| json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut unavailable = error("InfluxDB is unavailable; retry after the Retry-After header (seconds).");
    unavailable["headers"] = json!({"Retry-After": {"schema": {"type": "integer", "minimum": 1}}});
    let errors = json!({
        "400": error("A parameter is malformed or out of range; the message says which and why."),
        "401": error("The rider is private and no viewer token, or an unknown one, was given."),
        "403": error("The viewer token does not list this rider."),
        "404": error("No such rider, metric or field."),
        "503": unavailable,
    });
    let ok = |description: &str, schema: &str| {
        let mut responses = errors.clone();
        responses["200"] = json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        responses
    };
    let get = |summary: &str, parameters: Vec<Value>, responses: Value| json!({"get": {"summary": summary, "parameters": parameters, "responses": responses, "security": [{}, {"viewer": []}]}});
    let mut export_responses = errors.clone();
    export_responses["200"] = json!({"description": "The file, streamed.", "content": {
        "application/gpx+xml": {"schema": {"type": "string"}}, "text/csv; charset=utf-8": {"schema": {"type": "string"}}}});
    // A route without parameters has no 400, and the list of riders is no rider's: no 403
    // or 404 either.
    let without_400 = |mut responses: Value| {
        if let Some(r) = responses.as_object_mut() {
            r.remove("400");
        }
        responses
    };
    let mut riders_responses = without_400(ok("Riders.", "Riders"));
    if let Some(r) = riders_responses.as_object_mut() {
        r.retain(|status, _| ["200", "401", "503"].contains(&status.as_str()));
    }
    let event = param(
        "event",
        "path",
        "The event's id from the riders file; an unknown one is answered 404.",
        json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}),
    );
    let event_errors = json!({
        "401": error("The event is private and no viewer token, or an unknown one, was given."),
        "403": error("The viewer token does not list this event."),
        "404": error("No such event (or, for stops, no such entrant the caller may see)."),
    });
    let event_ok = |description: &str, schema: &str, reads: bool, params: bool| {
        let mut responses = event_errors.clone();
        responses["200"] = json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        if reads {
            responses["503"] = errors["503"].clone();
        }
        if params {
            responses["400"] = errors["400"].clone();
        }
        responses
    };
    let mut csv_responses = event_ok("", "Standings", true, true);
    csv_responses["200"] = json!({"description": "The standings as CSV, one row per entrant, times in RFC 3339.", "content": {"text/csv; charset=utf-8": {"schema": {"type": "string"}}}});
    let mut events_responses = event_ok("Events.", "Events", false, false);
    if let Some(r) = events_responses.as_object_mut() {
        r.retain(|status, _| ["200", "401"].contains(&status.as_str()));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "velometry query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "History of riders' readings at any zoom: series downsampled to a point budget from rollup tiers, tracks, summaries and exports. Public riders are readable by anyone; private riders need a viewer token (Authorization: Bearer …). Times in answers are epoch milliseconds unless named otherwise."
        },
        "components": {
            "securitySchemes": {"viewer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas::components(&metrics, &fields)
        },
        "paths": {
            "/v1/riders": get("The riders the caller may see, with the time span of their data.", vec![], riders_responses),
            "/v1/riders/{rider}/series/{metric}": get(
                "One field of a metric over a range, at most max_points points. m4 (default) keeps each bucket's first, last, minimum and maximum, so a chart is pixel-identical to one of the raw data; lttb keeps the shape with fewer points; mean gives one mean per bucket. Answered from the coarsest rollup tier that gives what the raw data would.",
                vec![rider.clone(),
                    param("metric", "path", "The measurement; another is answered 404.", json!({"enum": metrics})),
                    param("field", "query", "The field, one of the metric's (docs/schema.md; another is answered 404). Default: the metric's first field.", json!({"enum": fields})),
                    from.clone(), to.clone(), budget(1000, 10),
                    param("method", "query", "How to reduce.", json!({"enum": ["m4", "lttb", "mean"], "default": "m4"})),
                    param("tier", "query", "Read from this tier instead of the one chosen; a tier whose windows do not tile the buckets of the range is answered 400.", json!({"enum": ["auto", "raw", "1m", "1h"], "default": "auto"}))],
                ok("The points.", "Series")),
            "/v1/riders/{rider}/track": get(
                "The route as a GeoJSON Feature: a LineString simplified to at most max_points vertices (endpoints kept), with the time of each vertex in properties.times (epoch ms) and properties.coordTimes (RFC 3339); geometry is null with fewer than two positions.",
                vec![rider.clone(), from.clone(), to.clone(), budget(1000, 2)],
                ok("A GeoJSON Feature.", "Track")),
            "/v1/riders/{rider}/latest": get("The latest reading of every metric.", vec![rider.clone()],
                without_400(ok("Per metric, the time, device and fields of its latest reading.", "Latest"))),
            "/v1/riders/{rider}/summary": get(
                "Distance, moving time, elevation gain and loss (3 m hysteresis), average and maximum speed, heart rate with time in zones (from the rider's max_hr), power and work.",
                vec![rider.clone(), from.clone(), to.clone()],
                ok("The summary.", "Summary")),
            "/v1/riders/{rider}/export.gpx": {"get": {"summary": "GPX 1.1 at full resolution, streamed, valid against the GPX 1.1 schema: heart rate, cadence and temperature in Garmin's TrackPointExtension v1, power in Garmin's PowerExtension v1 (PowerInWatts). Only where the range holds data is read; a range holding more readings than --max-export-points (30 million) is answered 400.",
                "parameters": [rider.clone(), from.clone(), to.clone()], "responses": export_responses.clone(), "security": [{}, {"viewer": []}]}},
            "/v1/riders/{rider}/export.csv": {"get": {"summary": "CSV at full resolution (time, lat, lon, alt, speed, heart_rate, cadence, power, temperature, distance), every value as stored, streamed; bounded as export.gpx.",
                "parameters": [rider, from, to], "responses": export_responses, "security": [{}, {"viewer": []}]}},
            "/v1/events": get("The events the caller may see: public ones, and with a viewer token the private ones it lists.", vec![], events_responses),
            "/v1/events/{event}": get("An event: its course length, checkpoints (distance along the course, cut-offs) and the entrants the caller may see, with their starts.",
                vec![event.clone()], event_ok("The event.", "Event", false, false)),
            "/v1/events/{event}/course": get("The course as a GeoJSON FeatureCollection: first a LineString simplified to at most max_points positions (the ends kept) with each position's distance along the course, then one Point per checkpoint.",
                vec![event.clone(), budget(2000, 2)], event_ok("The course.", "Course", false, true)),
            "/v1/events/{event}/profile": get("The course's elevation against distance, at most max_points points: per stretch the first, lowest, highest and last point, so every summit is kept. Empty when the course file has no elevation.",
                vec![event.clone(), budget(1000, 4)], event_ok("The profile.", "Profile", false, true)),
            "/v1/events/{event}/standings": get("The standings of the entrants the caller may see, from the progress service's readings: finishers by elapsed time, then the others by the furthest distance along the course; rank, distance, distance to go, gap to the leader in distance and in time, status and since when, age of the last fix, the next checkpoint and its ETA range (p10-p90), the ETA at the finish, checkpoints reached, and the point of the course where each is, for the map. Distances to the decimetre, durations to the tenth of a second. Shared by every caller alike for a second; with `at`, as history held them then.",
                vec![event.clone(), at.clone()], event_ok("The standings.", "Standings", true, true)),
            "/v1/events/{event}/standings.csv": get("The standings as CSV.", vec![event.clone(), at], csv_responses),
            "/v1/events/{event}/flow": get("The race flow: for every entrant the caller may see, the furthest distance along the course against time, at most max_points points each (per bucket the fix that first reached the bucket's furthest distance). Default range: from the first start to now.",
                vec![event.clone(), from.clone(), to.clone(), budget(500, 10)], event_ok("The race flow.", "Flow", true, true)),
            "/v1/events/{event}/checkpoints": get("Per checkpoint, the arrivals (interpolated between the fixes around the checkpoint), the missed checkpoints and the cut-offs breached, of the entrants the caller may see.",
                vec![event.clone()], event_ok("The checkpoint table.", "Checkpoints", true, false)),
            "/v1/events/{event}/riders/{rider}/stops": get("A rider's stops in the event, once each has ended: start, end, duration, place and what it was (stopped, resting, sleeping).",
                vec![event.clone(), param("rider", "path", "An entrant of the event the caller may see; another is answered 404.", json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}))],
                event_ok("The stops.", "Stops", true, false)),
            "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}}}}},
            "/healthz": {"get": {"summary": "The process is alive.", "responses": {"200": {"description": "ok", "content": {"text/plain; charset=utf-8": {"schema": {"const": "ok"}}}}}}}
        }
    })
}
