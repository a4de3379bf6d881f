//! `ApiError`: every refusal the collector answers, with one JSON shape.
//!
//! The body is `{"error": "…"}` as InfluxDB answers, so Influx clients show our messages;
//! 4xx messages say precisely what to fix, 5xx say little and the cause goes to the log.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid reading of a batch.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Invalid {
    /// Position in the batch (0-based).
    pub index: usize,
    /// What is wrong with it.
    pub error: String,
}

/// A refused request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Some readings of an all-or-nothing batch are invalid.
    #[error("{} of {total} readings are invalid; nothing was accepted", .invalid.len())]
    InvalidReadings {
        /// Size of the batch.
        total: usize,
        /// Every invalid reading and why.
        invalid: Vec<Invalid>,
    },
    /// Line protocol with bad lines: InfluxDB's answer (good lines, if any, were kept).
    #[error("{message}")]
    LineProtocol {
        /// `partial write: …` or the first parse error.
        message: String,
    },
    /// No credentials, or unknown ones.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials that do not cover what is asked (an organiser of another event).
    #[error("{0}")]
    Forbidden(String),
    /// What the path names does not exist (an event, or a rider who is not its entrant).
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the limit.
    #[error("http: request body too large (limit {0} bytes)")]
    TooLarge(usize),
    /// The body took too long to arrive.
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    /// The content type is not one this route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// This token sends faster than its rate limit.
    #[error("rate limit exceeded for this token; retry after {0:?}")]
    RateLimited(Duration),
    /// The WAL is full: InfluxDB is behind. Nothing was accepted.
    #[error("the collector's write-ahead log is full (InfluxDB is behind or down); nothing was accepted, retry later")]
    Full,
    /// The collector cannot make anything durable right now: its disk is full or failing
    /// (the cause goes to the log). Nothing was accepted; it recovers by itself.
    #[error("the collector cannot write to its disk right now; nothing was accepted, retry later")]
    Unavailable(#[source] anyhow::Error),
    /// Something failed on our side.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// Bounded label for the rejected-readings metric.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "malformed",
            ApiError::InvalidReadings { .. } | ApiError::LineProtocol { .. } => "invalid",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Timeout(_) => "timeout",
            ApiError::UnsupportedMediaType(_) => "media_type",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Full => "wal_full",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidReadings { .. } | ApiError::LineProtocol { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Full | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "Request failed.");
        }
        if let ApiError::Unavailable(e) = &self {
            // The writer logs the disk's failure once, as ERROR; each refusal is routine.
            tracing::debug!(error = format!("{e:#}"), "Request refused: nothing can be made durable.");
        }
        let message = self.to_string();
        let body = match &self {
            ApiError::InvalidReadings { invalid, .. } => {
                serde_json::json!({ "error": message, "invalid": invalid })
            }
            _ => serde_json::json!({ "error": message }),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        // As InfluxDB sends it, UTF-8 and all (a line's text is in it), but no control
        // character a header cannot hold.
        let header: Vec<u8> =
            message.bytes().map(|b| if b.is_ascii_control() && b != b'\t' { b' ' } else { b }).collect();
        if let Ok(v) = HeaderValue::from_bytes(&header) {
            headers.insert("x-influxdb-error", v);
        }
        let retry_after = match &self {
            ApiError::RateLimited(wait) => Some(wait.as_secs().max(1)),
            ApiError::Full | ApiError::Unavailable(_) => Some(5),
            _ => None,
        };
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Unauthorized(_) = &self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"velometry\""));
        }
        response
    }
}
