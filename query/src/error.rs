//! `ApiError`: every refusal the query service answers, as `{"error": "…"}`.
//!
//! 4xx messages say precisely what to fix; 5xx say little and the cause goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::influx::InfluxError;

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is malformed or out of range.
    #[error("{0}")]
    BadRequest(String),
    /// No token, or an unknown one, for a private rider.
    #[error("{0}")]
    Unauthorized(String),
    /// The token does not allow this rider.
    #[error("{0}")]
    Forbidden(String),
    /// No such rider, metric or field.
    #[error("{0}")]
    NotFound(String),
    /// InfluxDB did not answer or failed.
    #[error("InfluxDB is unavailable; retry shortly")]
    Unavailable(#[source] InfluxError),
}

impl From<InfluxError> for ApiError {
    fn from(e: InfluxError) -> ApiError {
        ApiError::Unavailable(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(e) => {
                tracing::error!(error = %e, "InfluxDB failed a request.");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return (status, [(axum::http::header::RETRY_AFTER, "5")], body).into_response();
        }
        (status, body).into_response()
    }
}
