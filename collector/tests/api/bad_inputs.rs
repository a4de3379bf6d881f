//! A table of bad inputs, each with the status and message it must get, and proof that
//! none of them costs data already accepted.

use serde_json::json;

use crate::helpers::{Env, ALICE_EDGE, BOB_PHONE, DB};

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    token: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn case(
    name: &'static str,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        name,
        method: "POST",
        path: path.to_owned(),
        token: Some(ALICE_EDGE),
        content_type: Some("application/json"),
        body: body.into(),
        status,
        message,
    }
}

#[tokio::test]
async fn bad_inputs_get_a_clear_error_and_cost_nothing_already_accepted() {
    let env = Env::start(&["--max-body-bytes=64KiB"]).await;
    // Data accepted before the bad requests.
    let good = env.post_json(ALICE_EDGE, &json!([{"metric": "heart_rate", "bpm": 120}])).await;
    assert_eq!(good.status(), 200);

    let day_ahead = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let cases = vec![
        Case {
            content_type: None,
            ..case(
                "malformed line",
                "/write",
                "this is not line protocol",
                400,
                "unable to parse 'this is not line protocol' (line 1)",
            )
        },
        case("bad JSON", "/v1/readings", "{\"metric\": ", 400, "body is not valid JSON"),
        case(
            "lat 95",
            "/v1/readings",
            r#"[{"metric":"gps","lat":95,"lon":7}]"#,
            400,
            "lat 95 is out of range [-90, 90] degrees",
        ),
        Case {
            method: "GET",
            token: None,
            content_type: None,
            // A number that is not one; a NaN fix is answered 200 and dead-lettered (devices.rs).
            ..case(
                "not a number",
                &format!("/v1/osmand?id={ALICE_EDGE}&lat=north&lon=7"),
                "",
                400,
                "lat \"north\" is not a number",
            )
        },
        Case {
            token: Some("velo_nobody"),
            ..case(
                "unknown token",
                "/v1/readings",
                r#"[{"metric":"heart_rate","bpm":60}]"#,
                401,
                "unknown device token",
            )
        },
        Case {
            token: None,
            ..case(
                "no token",
                "/v1/readings",
                r#"[{"metric":"heart_rate","bpm":60}]"#,
                401,
                "authorization required",
            )
        },
        Case {
            token: Some(BOB_PHONE),
            ..case(
                "another rider's device",
                "/v1/readings",
                r#"[{"metric":"heart_rate","bpm":60,"rider":"alice"}]"#,
                400,
                "\"rider\" comes from the device token",
            )
        },
        case("oversized body", "/v1/readings", vec![b' '; 100 * 1024], 413, "request body too large"),
        case(
            "timestamp a day ahead",
            "/v1/readings",
            format!(r#"[{{"metric":"heart_rate","bpm":60,"time":{day_ahead}}}]"#),
            400,
            "more than 5 minutes in the future",
        ),
        case(
            "unknown metric",
            "/v1/readings",
            r#"[{"metric":"mood","happy":1}]"#,
            400,
            "unknown metric \"mood\"",
        ),
        Case {
            content_type: Some("text/plain"),
            ..case(
                "wrong content type",
                "/v1/readings",
                r#"[{"metric":"heart_rate","bpm":60}]"#,
                415,
                "Content-Type: application/json",
            )
        },
        Case {
            content_type: None,
            ..case(
                "bad precision",
                "/write?precision=fortnight",
                "heart_rate bpm=60",
                400,
                "invalid precision \"fortnight\"",
            )
        },
        Case {
            content_type: Some("application/xml"),
            ..case("OsmAnd in XML", "/v1/osmand", "<fix/>", 415, "is not OsmAnd")
        },
    ];

    for c in &cases {
        let mut request =
            env.http.request(c.method.parse().expect("method"), env.url(&c.path)).body(c.body.clone());
        if let Some(token) = c.token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(ct) = c.content_type {
            request = request.header("Content-Type", ct);
        }
        let resp = request.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("body");
        assert_eq!(status, c.status, "{}: {body}", c.name);
        let error: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{}: not JSON: {body}", c.name));
        let mut messages = vec![error["error"].as_str().unwrap_or_default().to_owned()];
        for invalid in error["invalid"].as_array().into_iter().flatten() {
            messages.push(invalid["error"].as_str().unwrap_or_default().to_owned());
        }
        assert!(
            messages.iter().any(|m| m.contains(c.message)),
            "{}: expected {:?} in {messages:?}",
            c.name,
            c.message
        );
    }

    // An empty OwnTracks body is accepted and ignored, as the app expects.
    let empty = env
        .http
        .post(env.url("/v1/owntracks"))
        .basic_auth("x", Some(ALICE_EDGE))
        .header("Content-Type", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!((empty.status().as_u16(), empty.text().await.expect("body")), (200, "[]".to_owned()));

    // The one good reading is there, and nothing of the bad ones.
    env.wait_rows("SELECT bpm FROM heart_rate", 1).await;
    assert_eq!(env.influx.count(DB, "heart_rate", "bpm").await.expect("count"), 1);
    assert_eq!(env.influx.count(DB, "gps", "lat").await.expect("count"), 0);
    let invalid = env.post_json(ALICE_EDGE, &json!([{"metric":"heart_rate","bpm":60}, {"metric":"gps","lat":1}, {"metric":"power","watts":-5}])).await;
    let answer: serde_json::Value = invalid.json().await.expect("json");
    assert_eq!(answer["invalid"].as_array().map(Vec::len), Some(2), "every bad index is listed: {answer}");
    assert_eq!(answer["invalid"][0]["index"], json!(1));
    assert_eq!(answer["invalid"][1]["index"], json!(2));
}
