//! The WebSocket protocol at `GET /v1/live`, documented in docs/live.md.
//!
//! Client → server: `{"op":"auth","token":"…"}`, `{"op":"subscribe","riders":["alice"]}`,
//! `{"op":"subscribe","events":["race"]}`, `{"op":"unsubscribe",…}` alike; `"*"` means every
//! rider (or event) the client may see.
//! Server → client: `hello`, `subscribed`, `snapshot`, `reading`, `standings`, `progress`,
//! `error` (see [`Frame`]).

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    /// Present a viewer token (instead of `?token=`).
    Auth {
        /// The viewer token.
        token: String,
    },
    /// Follow riders, events or both.
    Subscribe {
        /// Rider ids, or `"*"`.
        #[serde(default)]
        riders: Vec<String>,
        /// Event ids, or `"*"`.
        #[serde(default)]
        events: Vec<String>,
    },
    /// Stop following riders or events.
    Unsubscribe {
        /// Rider ids, or `"*"`.
        #[serde(default)]
        riders: Vec<String>,
        /// Event ids, or `"*"`.
        #[serde(default)]
        events: Vec<String>,
    },
}

impl ClientMessage {
    /// Parses a client message.
    ///
    /// # Errors
    /// A message for the client saying what is wrong.
    pub fn parse(text: &str) -> Result<ClientMessage, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "cannot read message ({e}): send {{\"op\":\"subscribe\",\"riders\":[\"…\"]}}, \
                 {{\"op\":\"unsubscribe\",\"riders\":[\"…\"]}} or {{\"op\":\"auth\",\"token\":\"…\"}}"
            )
        })
    }
}

/// A position of a rider's trail: `(epoch ms, lat, lon)`, sent as `[ms, lat, lon]` with the
/// time an integer, as `accepted_at_ms` is, so clients may decode it as a 64-bit integer.
pub type TrailPoint = (i64, f64, f64);

/// A rider as listed to clients.
#[derive(Debug, Clone, Serialize)]
pub struct RiderInfo {
    /// Rider id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// Frames the server sends that are not readings (those are pre-encoded once per reading).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame<'a> {
    /// On connect: the riders this client may follow.
    Hello {
        /// Riders visible to the client.
        riders: &'a [RiderInfo],
        /// Events visible to the client.
        events: &'a [String],
    },
    /// After a subscribe or unsubscribe: what the client now follows.
    Subscribed {
        /// Rider ids.
        riders: Vec<&'a str>,
        /// Event ids.
        events: Vec<&'a str>,
    },
    /// Right after a subscribe: the latest readings and the recent trail of one rider.
    Snapshot {
        /// Rider id.
        rider: &'a str,
        /// The latest reading of each live metric, as sent in `reading` frames.
        latest: Vec<&'a serde_json::value::RawValue>,
        /// Recent positions, oldest first.
        trail: &'a [TrailPoint],
    },
    /// Right after subscribing to an event: its standings, ranked from the latest progress
    /// of each entrant the client may see.
    Standings {
        /// Event id.
        event: &'a str,
        /// When it was made (epoch ms).
        as_of: i64,
        /// The rows, in rank order.
        standings: &'a [velometry_core::event::standings::Standing],
    },
    /// An event's progress: the readings of its entrants made since the last frame, in the
    /// order they came, as `reading` frames have them but without `type` and `event`.
    Progress {
        /// Event id.
        event: &'a str,
        /// `course_progress`, `course_status` and `checkpoint` readings.
        readings: Vec<&'a serde_json::value::RawValue>,
    },
    /// Something the client asked for cannot be done.
    Error {
        /// What and why.
        message: &'a str,
    },
}

impl Frame<'_> {
    /// The frame as WebSocket text.
    pub fn encode(&self) -> Utf8Bytes {
        // Serialising these types cannot fail: no maps with non-string keys, no floats
        // that JSON cannot hold (trail values come from validated readings).
        Utf8Bytes::from(serde_json::to_string(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_operations() {
        assert_eq!(
            ClientMessage::parse(r#"{"op":"subscribe","riders":["alice","*"]}"#),
            Ok(ClientMessage::Subscribe { riders: vec!["alice".into(), "*".into()], events: Vec::new() })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"op":"auth","token":"t"}"#),
            Ok(ClientMessage::Auth { token: "t".into() })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"op":"subscribe","events":["race"]}"#),
            Ok(ClientMessage::Subscribe { riders: Vec::new(), events: vec!["race".into()] })
        );
        let err = ClientMessage::parse(r#"{"op":"dance"}"#).unwrap_err();
        assert!(err.starts_with("cannot read message (unknown variant `dance`"), "{err}");
        assert!(ClientMessage::parse("not json").is_err());
    }

    #[test]
    fn trail_times_are_integers() {
        let text = Frame::Snapshot {
            rider: "alice",
            latest: Vec::new(),
            trail: &[(1_796_159_111_692, 45.01, 7.02)],
        }
        .encode();
        assert_eq!(
            text.as_str(),
            r#"{"type":"snapshot","rider":"alice","latest":[],"trail":[[1796159111692,45.01,7.02]]}"#
        );
    }

    #[test]
    fn frames_are_tagged_by_type() {
        let text = Frame::Error { message: "no such rider \"zed\"" }.encode();
        assert_eq!(text.as_str(), r#"{"type":"error","message":"no such rider \"zed\""}"#);
    }
}
