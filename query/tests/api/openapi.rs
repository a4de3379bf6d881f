//! The OpenAPI document against the real service: every answer of every route, success and
//! error, validates against the schema the document gives for its status (every documented
//! status is seen), and every parameter's documented constraints are exactly what the
//! service refuses, probe by probe.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use velometry_core::testkit::{InfluxServer, Service};

use crate::helpers::*;

/// The document, and checks of answers against it.
struct Document(Value);

impl Document {
    async fn of(service: &Service) -> Document {
        let (status, doc) = get(service, "/openapi.json", None).await;
        assert_eq!(status, 200);
        Document(doc)
    }

    /// A validator of `schema`, with the document's components at hand for its `$ref`s.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.0["components"].clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the document's schema {schema} is not a schema: {e}"))
    }

    /// Checks an answer of `route` (a path of the document) against what the document says of
    /// its status: the status is documented, the content type is one documented, and the body
    /// validates against that content's schema.
    fn check(&self, route: &str, status: u16, content_type: &str, body: &str) {
        let answer = &self.0["paths"][route]["get"]["responses"][status.to_string()];
        assert!(answer.is_object(), "{route}: status {status} is not documented; answered {body}");
        let Some(contents) = answer["content"].as_object() else { return };
        let (_, content) =
            contents.iter().find(|(documented, _)| *documented == content_type).unwrap_or_else(|| {
                panic!("{route} {status}: {content_type:?} is not one of {:?}", contents.keys())
            });
        let instance = if content_type == "application/json" {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{route} {status}: not JSON ({e}): {body}"))
        } else {
            Value::String(body.to_owned())
        };
        let validator = self.validator(&content["schema"]);
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{route} {status} does not match the document: {errors:?}\n{body}");
    }

    /// The schema of parameter `name` of `route`.
    fn parameter(&self, route: &str, name: &str) -> Value {
        self.0["paths"][route]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["schema"].clone())
            .unwrap_or_else(|| panic!("{route} documents no parameter {name}"))
    }

    /// Every status the document gives for every route.
    fn statuses(&self) -> BTreeSet<(String, u16)> {
        let mut all = BTreeSet::new();
        for (route, item) in self.0["paths"].as_object().expect("paths") {
            for status in item["get"]["responses"].as_object().expect("responses").keys() {
                all.insert((route.clone(), status.parse().expect("a status")));
            }
        }
        all
    }
}

/// The data: alice (public, max_hr 190) rode with every sensor; bob (private) has a heart
/// rate.
async fn service_with_data(influx: &InfluxServer) -> (Service, tempfile::TempDir, Vec<Sample>) {
    let start = velometry_core::time::now_nanos() - 2 * HOUR;
    let samples = ride(start, 600, 21);
    let race = progress_lines("alice", start, start + 600 * SECOND, 10.0, None)
        + &progress_lines("bob", start, start + 600 * SECOND, 12.0, None);
    write_all(influx, &(ride_lines("alice", &samples) + &heart_rate("bob", "watch", start, 120.0) + &race))
        .await;
    let riders = event_riders_file(start);
    let service = query(influx, &riders, &[]).await;
    (service, riders, samples)
}

#[tokio::test]
async fn every_answer_of_every_route_is_what_the_document_says() {
    let mut influx = InfluxServer::start().await.expect("influxd");
    let (service, _riders, samples) = service_with_data(&influx).await;
    let doc = Document::of(&service).await;
    // The validators hold answers to the document: these would pass a lax one.
    let error = doc.validator(&json!({"$ref": "#/components/schemas/Error"}));
    assert!(!error.is_valid(&json!({})) && !error.is_valid(&json!({"error": "x", "extra": 1})));
    let riders = doc.validator(&json!({"$ref": "#/components/schemas/Riders"}));
    assert!(!riders
        .is_valid(&json!([{"id": "a", "name": "A", "public": true, "first": "yesterday", "last": null}])));
    let ride = format!(
        "from={}&to={}",
        samples[0].time / 1_000_000,
        samples[samples.len() - 1].time / 1_000_000 + 1
    );
    let r = |route: &str| route.replace("{rider}", "alice").replace("{metric}", "heart_rate");
    let bob = |route: &str| route.replace("{rider}", "bob").replace("{metric}", "heart_rate");
    let carol = |route: &str| route.replace("{rider}", "carol").replace("{metric}", "heart_rate");
    let mut asked: Vec<(&str, String, Option<&str>)> = vec![
        ("/v1/riders", "/v1/riders".into(), None),
        ("/v1/riders", "/v1/riders".into(), Some(COACH)),
        ("/v1/riders", "/v1/riders".into(), Some("velo_wrong")),
        ("/openapi.json", "/openapi.json".into(), None),
        ("/healthz", "/healthz".into(), None),
    ];
    let rider_routes = [
        "/v1/riders/{rider}/series/{metric}",
        "/v1/riders/{rider}/track",
        "/v1/riders/{rider}/latest",
        "/v1/riders/{rider}/summary",
        "/v1/riders/{rider}/export.gpx",
        "/v1/riders/{rider}/export.csv",
    ];
    for route in rider_routes {
        asked.push((route, format!("{}?{ride}", r(route)), None));
        asked.push((route, r(route), None));
        asked.push((route, bob(route), None));
        asked.push((route, bob(route), Some(STRANGER)));
        asked.push((route, bob(route), Some(COACH)));
        asked.push((route, carol(route), None));
        if route != "/v1/riders/{rider}/latest" {
            asked.push((route, format!("{}?from=yesterday", r(route)), None));
            asked.push((route, format!("{}?from=0&to=1000", r(route)), None));
        }
    }
    asked.push(("/v1/events", "/v1/events".into(), None));
    asked.push(("/v1/events", "/v1/events".into(), Some(CLUB)));
    asked.push(("/v1/events", "/v1/events".into(), Some("velo_wrong")));
    let event_routes = [
        "/v1/events/{event}",
        "/v1/events/{event}/course",
        "/v1/events/{event}/profile",
        "/v1/events/{event}/standings",
        "/v1/events/{event}/standings.csv",
        "/v1/events/{event}/flow",
        "/v1/events/{event}/checkpoints",
        "/v1/events/{event}/riders/{rider}/stops",
    ];
    let e = |route: &str, event: &str, rider: &str| route.replace("{event}", event).replace("{rider}", rider);
    for route in event_routes {
        asked.push((route, e(route, "race", "alice"), None));
        asked.push((route, e(route, "race", "bob"), Some(COACH)));
        asked.push((route, e(route, "club", "alice"), None));
        asked.push((route, e(route, "club", "alice"), Some(COACH)));
        asked.push((route, e(route, "club", "alice"), Some(CLUB)));
        asked.push((route, e(route, "nope", "alice"), None));
    }
    asked.push(("/v1/events/{event}/riders/{rider}/stops", "/v1/events/race/riders/bob/stops".into(), None));
    for route in ["/v1/events/{event}/course", "/v1/events/{event}/profile", "/v1/events/{event}/flow"] {
        asked.push((route, format!("{}?max_points=1", e(route, "race", "alice")), None));
    }
    asked.push(("/v1/events/{event}/flow", "/v1/events/race/flow?from=yesterday".into(), None));
    for route in ["/v1/events/{event}/standings", "/v1/events/{event}/standings.csv"] {
        asked.push((route, format!("{}?at=yesterday", e(route, "race", "alice")), None));
        asked.push((route, format!("{}?at=7258118400000", e(route, "race", "alice")), None));
    }
    let series = "/v1/riders/{rider}/series/{metric}";
    for query in ["method=lttb", "method=mean&tier=raw", "field=nope", "max_points=5", "tier=1h"] {
        asked.push((series, format!("{}?{ride}&{query}", r(series)), None));
    }
    asked.push((series, "/v1/riders/alice/series/pulse".into(), None));
    asked.push((series, "/v1/riders/alice/series/power?from=0&to=7258118400000&max_points=10".into(), None));

    let mut seen = BTreeSet::new();
    for (route, path, token) in &asked {
        let (status, headers, body) = get_raw(&service, path, *token).await;
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        doc.check(route, status, content_type, &body);
        seen.insert(((*route).to_owned(), status));
    }
    // Without InfluxDB, every route that reads it answers 503 (after the shared answers of
    // the last second expired).
    influx.kill().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    for route in std::iter::once("/v1/riders").chain(rider_routes) {
        let (status, headers, body) = get_raw(&service, &format!("{}?from=5&to=6", r(route)), None).await;
        assert_eq!(status, 503, "{route}: {body}");
        assert!(headers.contains_key("retry-after"), "{route}");
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        doc.check(route, status, content_type, &body);
        seen.insert((route.to_owned(), status));
    }
    for route in event_routes.iter().filter(|r| doc.0["paths"][**r]["get"]["responses"]["503"].is_object()) {
        let (status, headers, body) = get_raw(&service, &e(route, "race", "alice"), None).await;
        assert_eq!(status, 503, "{route}: {body}");
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        doc.check(route, status, content_type, &body);
        seen.insert(((*route).to_owned(), status));
    }
    let unseen: Vec<_> = doc.statuses().difference(&seen).cloned().collect();
    assert!(unseen.is_empty(), "documented but never answered here: {unseen:?}");
}

/// `value` percent-encoded for a query string (`+` would read as a space).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What `raw` is as a parameter value: a JSON number when written as one (no `+`, no
/// spaces), and always a string.
fn instances(raw: &str) -> Vec<Value> {
    let mut all = vec![Value::String(raw.to_owned())];
    let numeric = raw.starts_with(|c: char| c.is_ascii_digit() || c == '-') && raw.trim_end() == raw;
    if let (true, Ok(n)) = (numeric, serde_json::from_str::<serde_json::Number>(raw)) {
        all.push(Value::Number(n));
    }
    all
}

#[tokio::test]
async fn documented_parameter_constraints_are_exactly_what_the_service_refuses() {
    let influx = InfluxServer::start().await.expect("influxd");
    let (service, _riders, _) = service_with_data(&influx).await;
    let doc = Document::of(&service).await;
    let times = [
        "0",
        "1764237600000",
        "1764237600000.5",
        "1.5e12",
        "2025-11-27T10:00:00Z",
        "2025-11-27t10:00:00z",
        "2025-11-27T11:00:00+01:00",
        "2025-11-27T10:00:00-05:30",
        "2025-11-27 10:00:00",
        "2025-11-27T10:00:00",
        "2025-11-27 10:00:00Z",
        "2025-11-27T10:00:00.123456789Z",
        "1970-01-01T00:00:00Z",
        "2199-12-31T23:59:59.999Z",
        "2200-01-01T00:00:00Z",
        "2200-01-01T00:00:00.001Z",
        "7258118400000",
        "7258118400001",
        "",
        "yesterday",
        "-1",
        "+1764237600000",
        " 1764237600000",
        "1764237600000 ",
        "0x10",
        "2300-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1800-01-01T00:00:00Z",
        "2025-11-27",
        "2025-11-27T10:00",
        "10:00:00",
        "1e300",
        "NaN",
        "2025-13-01T00:00:00Z",
    ];
    // With from=0, a `to` of 1970-01-01T00:00:00Z is the same instant: refused as an empty
    // range, which no schema of one parameter can say.
    let ends: Vec<&str> = times.iter().copied().filter(|t| *t != "1970-01-01T00:00:00Z").collect();
    let budgets = [
        "1", "2", "9", "10", "100", "10000", "10001", "1e3", "1000.0", "0", "-5", "1.5", "", "abc", "+100",
        "0100", " 100",
    ];
    // route, parameter, the other parameters, probes
    let cases: Vec<(&str, &str, &str, Vec<&str>)> = vec![
        ("/v1/riders/{rider}/series/{metric}", "from", "to=7258118400000", times.to_vec()),
        ("/v1/riders/{rider}/series/{metric}", "to", "from=0", ends.clone()),
        ("/v1/riders/{rider}/series/{metric}", "max_points", "", budgets.to_vec()),
        ("/v1/riders/{rider}/series/{metric}", "method", "", vec!["m4", "lttb", "mean", "", "M4", "avg"]),
        (
            "/v1/riders/{rider}/series/{metric}",
            "tier",
            "from=0&to=7258118400000",
            vec!["auto", "raw", "1m", "1h", "", "5m", "RAW"],
        ),
        ("/v1/riders/{rider}/series/{metric}", "field", "", vec!["bpm", "", "nope", "BPM"]),
        ("/v1/riders/{rider}/track", "from", "to=7258118400000", times.to_vec()),
        ("/v1/riders/{rider}/track", "to", "from=0", ends.clone()),
        ("/v1/riders/{rider}/track", "max_points", "", budgets.to_vec()),
        ("/v1/riders/{rider}/summary", "from", "to=7258118400000", times.to_vec()),
        ("/v1/riders/{rider}/summary", "to", "from=0", ends.clone()),
        ("/v1/riders/{rider}/export.csv", "from", "to=7258118400000", times.to_vec()),
        ("/v1/riders/{rider}/export.gpx", "to", "from=0", ends.clone()),
        ("/v1/events/{event}/flow", "from", "to=7258118400000", times.to_vec()),
        ("/v1/events/{event}/flow", "to", "from=0", ends.clone()),
        ("/v1/events/{event}/flow", "max_points", "", budgets.to_vec()),
        ("/v1/events/{event}/course", "max_points", "", budgets.to_vec()),
        ("/v1/events/{event}/profile", "max_points", "", budgets.to_vec()),
    ];
    let mut wrong = Vec::new();
    for (route, name, others, probes) in &cases {
        let validator = doc.validator(&doc.parameter(route, name));
        let path =
            route.replace("{rider}", "alice").replace("{metric}", "heart_rate").replace("{event}", "race");
        for probe in probes {
            let documented = instances(probe).iter().any(|v| validator.is_valid(v));
            let query = format!("{name}={}", encode(probe));
            let sep = if others.is_empty() { "" } else { "&" };
            let (status, _, body) = get_raw(&service, &format!("{path}?{others}{sep}{query}"), None).await;
            let accepted = match status {
                200 => true,
                400 | 404 => false,
                other => panic!("{route} {name}={probe:?}: {other} {body}"),
            };
            if documented != accepted {
                wrong.push(format!(
                    "{route} {name}={probe:?}: documented {}, answered {status} {body}",
                    if documented { "valid" } else { "invalid" }
                ));
            }
        }
    }
    // Path parameters: an invalid one is a 404.
    for (name, probes) in [
        ("rider", ["alice", "Alice", "al ice", "x-y_z"]),
        ("metric", ["heart_rate", "pulse", "HEART_RATE", "gps"]),
    ] {
        let route = "/v1/riders/{rider}/series/{metric}";
        let validator = doc.validator(&doc.parameter(route, name));
        for probe in probes {
            let documented = validator.is_valid(&json!(probe));
            let (rider, metric) = if name == "rider" { (probe, "heart_rate") } else { ("alice", probe) };
            let path = format!("/v1/riders/{}/series/{metric}", encode(rider));
            let (status, _, body) = get_raw(&service, &path, None).await;
            // x-y_z is a well-formed id of no rider: documented, and answered 404 for that.
            let accepted = status == 200 || (probe == "x-y_z" && status == 404);
            if documented != accepted {
                wrong.push(format!("{name}={probe:?}: documented {documented}, answered {status} {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "the document and the service disagree:\n{}", wrong.join("\n"));
}
