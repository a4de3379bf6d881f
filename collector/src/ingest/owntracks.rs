//! OwnTracks in HTTP mode at `POST /v1/owntracks`: Basic auth with the device token as the
//! password. The body is one message or a JSON array of them (the app sends its queue that
//! way); each is handled on its own. Locations become gps readings (`vel` is km/h); other
//! message types and empty bodies are accepted and ignored.
//!
//! With encryption on in the app, every message arrives as `{"_type":"encrypted","data":…}`:
//! libsodium's `crypto_secretbox` (XSalsa20-Poly1305), `data` the base64 of a 24-byte nonce
//! followed by the box, under the device's `owntracks_key` from the riders file (cut or
//! zero-padded to 32 bytes, as the apps do). The inner message is handled as if it had come
//! in the clear.
//!
//! The answer is `200 []`: the app waits for a 2xx before it sends its next message, so a
//! 4xx is given only for auth failures and bodies that are not JSON. A message that can never
//! be stored — a location without a position or out of range, one encrypted with no key or
//! another key — is dead-lettered ([`super::device`]); a location stamped ahead of the
//! collector's clock is kept at the collector's time.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use serde_json::Value;
use velometry_core::reading::Metric;
use velometry_core::riders::OwnTracksKey;

use super::device::{DeadReason, Fixes};
use super::read_body;
use crate::auth::token_from;
use crate::error::ApiError;
use crate::state::AppState;

const PROTOCOL: &str = "owntracks";
/// libsodium's `crypto_secretbox_NONCEBYTES` and `crypto_secretbox_MACBYTES`.
const NONCE_BYTES: usize = 24;
const MAC_BYTES: usize = 16;

/// `POST /v1/owntracks`.
///
/// # Errors
/// 401 without a known token; 400 for a body that is not JSON; 503 when nothing can be made
/// durable.
pub async fn owntracks(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let identity = state.auth.device(token_from(&headers, None).as_deref())?;
    let body = read_body(&headers, body, state.limits).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
        let key = state.auth.owntracks_key(&identity);
        let fixes = parse(&value, key.as_ref());
        state.ingest.commit_fixes(PROTOCOL, &identity, fixes).await?;
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], "[]").into_response())
}

/// What a body gives: one message, or an array of them, each read on its own; `key`
/// opens encrypted ones.
pub fn parse(body: &Value, key: Option<&OwnTracksKey>) -> Fixes {
    let mut fixes = Fixes::default();
    match body {
        Value::Array(messages) => messages.iter().for_each(|m| message(m, key, true, &mut fixes)),
        one => message(one, key, true, &mut fixes),
    }
    fixes
}

/// Reads one message into `fixes`; an encrypted one only when `may_decrypt` (the inner
/// message of an encrypted one is never opened again).
fn message(value: &Value, key: Option<&OwnTracksKey>, may_decrypt: bool, fixes: &mut Fixes) {
    match value.get("_type").and_then(Value::as_str) {
        Some("location") => location(value, fixes),
        Some("encrypted") if may_decrypt => match decrypt(value, key) {
            Ok(Value::Array(inner)) => inner.iter().for_each(|m| message(m, key, false, fixes)),
            Ok(inner) => message(&inner, key, false, fixes),
            // The encrypted message itself is kept: with the right key it can be read later.
            Err((reason, error)) => fixes.dead(reason, error, value.clone()),
        },
        _ => {}
    }
}

/// A location message: one gps reading.
fn location(value: &Value, fixes: &mut Fixes) {
    let number = |key: &str| value.get(key).and_then(Value::as_f64);
    let (Some(lat), Some(lon)) = (number("lat"), number("lon")) else {
        let error = "a location needs \"lat\" and \"lon\"".to_owned();
        return fixes.dead(DeadReason::Invalid, error, value.clone());
    };
    let time = fixes.time(number("tst").map(|tst| (tst * 1e9) as i64));
    let known = |v: Option<f64>| v.filter(|v| *v >= 0.0);
    let fields = [
        ("lat", Some(lat)),
        ("lon", Some(lon)),
        ("alt", number("alt")),
        ("speed", known(number("vel")).map(|kmh| kmh / 3.6)),
        ("heading", known(number("cog"))),
        ("accuracy", known(number("acc"))),
    ];
    fixes.add(Metric::Gps, time, fields.into_iter().filter_map(|(k, v)| Some((k, v?))), value);
}

/// The message inside an encrypted one.
fn decrypt(value: &Value, key: Option<&OwnTracksKey>) -> Result<Value, (DeadReason, String)> {
    let Some(key) = key else {
        return Err((
            DeadReason::NoKey,
            "an encrypted message, and the riders file gives this device no owntracks_key".into(),
        ));
    };
    let invalid = |why: String| (DeadReason::Invalid, format!("an encrypted message {why}"));
    let data = value.get("data").and_then(Value::as_str).ok_or_else(|| invalid("without \"data\"".into()))?;
    // The apps write standard base64; Android's decoder also takes line breaks.
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| invalid(format!("whose data is not base64: {e}")))?;
    if bytes.len() < NONCE_BYTES + MAC_BYTES {
        return Err(invalid(format!("of {} bytes, shorter than a nonce and a MAC", bytes.len())));
    }
    let (nonce, boxed) = bytes.split_at(NONCE_BYTES);
    let cipher = XSalsa20Poly1305::new(&key.secretbox_key().into());
    let plain = cipher.decrypt(Nonce::from_slice(nonce), boxed).map_err(|_| {
        (
            DeadReason::WrongKey,
            "an encrypted message that the device's owntracks_key does not open (another secret in the app?)"
                .to_owned(),
        )
    })?;
    serde_json::from_slice(&plain).map_err(|e| invalid(format!("that decrypts to something not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn riders_key(secret: &str) -> OwnTracksKey {
        let file = format!(
            "[[rider]]\nid = \"a\"\n[[rider.device]]\nid = \"p\"\ntoken_sha256 = \"{}\"\nowntracks_key = \"{secret}\"\n",
            velometry_core::riders::TokenHash::of("t").to_hex()
        );
        let registry = velometry_core::riders::Registry::parse(&file).expect("riders");
        let device = registry.authenticate_device("t").expect("device").clone();
        registry.owntracks_key(&device).expect("key").clone()
    }

    /// `crypto_secretbox_easy` output for the key "secret" zero-padded, nonce 0..24 and
    /// `{"_type":"location","lat":1,"lon":2,"tst":1600000000}`, from libsodium (PyNaCl).
    const SEALED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXt5wyGqsHZwieIhGdx/OxBzPaD19DoFwPtzMVfM+ed5VTyE5AhYlW5nNuqBk77Jtw+VHCIULB8d0H8q9EV38EAqBU6ebE";

    #[test]
    fn reads_a_location_with_speed_in_kmh() {
        let msg = json!({"_type":"location","lat":48.85833,"lon":2.29513,"tst":1_497_476_456,"tid":"JJ",
            "alt":35,"acc":10,"vel":18,"cog":270,"batt":80});
        let r = &parse(&msg, None).readings[0];
        assert_eq!(r.time(), 1_497_476_456_000_000_000);
        assert_eq!(r.float("speed"), Some(5.0));
        assert_eq!(r.float("heading"), Some(270.0));
    }

    #[test]
    fn an_array_is_each_of_its_messages() {
        let body = json!([
            {"_type":"location","lat":1.0,"lon":2.0,"tst":1_600_000_000},
            {"_type":"transition","event":"enter"},
            {"_type":"location","lat":3.0,"lon":4.0,"tst":1_600_000_001},
            {"_type":"location","lat":95.0,"lon":4.0,"tst":1_600_000_002},
        ]);
        let fixes = parse(&body, None);
        let lats: Vec<f64> = fixes.readings.iter().filter_map(|r| r.float("lat")).collect();
        assert_eq!(lats, [1.0, 3.0]);
        assert_eq!(fixes.dead.len(), 1, "the one out of range is dead-lettered, not the request refused");
    }

    #[test]
    fn ignores_other_message_types() {
        let fixes = parse(&json!({"_type":"transition","event":"enter"}), None);
        assert!(fixes.readings.is_empty() && fixes.dead.is_empty());
    }

    #[test]
    fn an_encrypted_message_without_a_key_or_with_another_is_a_dead_letter() {
        let sealed = json!({"_type": "encrypted", "data": SEALED});
        let none = parse(&sealed, None);
        assert_eq!(none.dead[0].reason, DeadReason::NoKey);
        assert_eq!(none.dead[0].message, sealed, "kept whole, to be read once the key is known");
        let wrong = parse(&sealed, Some(&riders_key("another")));
        assert_eq!(wrong.dead[0].reason, DeadReason::WrongKey);
        let short = parse(&json!({"_type": "encrypted", "data": "AAAA"}), Some(&riders_key("s")));
        assert_eq!(short.dead[0].reason, DeadReason::Invalid);
    }

    #[test]
    fn a_message_sealed_by_libsodium_opens_with_the_padded_key() {
        let fixes = parse(&json!([{"_type": "encrypted", "data": SEALED}]), Some(&riders_key("secret")));
        assert_eq!(fixes.readings.len(), 1, "{:?}", fixes.dead);
        assert_eq!(fixes.readings[0].float("lon"), Some(2.0));
        assert_eq!(fixes.readings[0].time(), 1_600_000_000_000_000_000);
    }
}
