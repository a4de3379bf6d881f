//! InfluxDB line protocol at `POST /write` and `POST /api/v2/write`, answered the way
//! InfluxDB answers, so Telegraf and every Influx client library can point here.
//!
//! Nothing is acknowledged that the sink would refuse: each line is read with InfluxDB's
//! own rules and checked as InfluxDB checks it when it stores it (duplicate tags, `time`
//! as a key, the series key's length with the collector's tags, unsigned integers on a
//! 1.x server, field types against the database's and the lines before it; see
//! [`crate::field_types`]), and refused with InfluxDB's reason. Partial writes work as in
//! InfluxDB 1.x: the good lines are kept and the answer is 400 `partial write: <first
//! error> dropped=<bad lines>`. The `db`, `rp`, `org` and `bucket` parameters are accepted
//! and ignored: the collector writes where it is configured to.

mod line;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use velometry_core::lineproto::{lines, Origin, OriginTags};
use velometry_core::reading::Reading;
use velometry_core::time::{now_nanos, Nanos};

use super::{read_body, Ages, LateSpans};
use crate::auth::token_from;
use crate::error::ApiError;
use crate::field_types::Checker;
use crate::metrics as m;
use crate::state::AppState;

const PROTOCOL: &str = "lineproto";

/// Query parameters of `/write` (v1) and `/api/v2/write` (v2).
#[derive(Debug, Deserialize)]
pub struct WriteParams {
    precision: Option<String>,
    p: Option<String>,
    /// `import` or `replay`, for velometry's own tools; `lineproto` otherwise.
    source: Option<String>,
}

/// `POST /write` and `POST /api/v2/write`.
///
/// # Errors
/// 401 without a known token, 400 with InfluxDB's message for bad lines (and, shaped as
/// InfluxDB's `unable to parse …` so that Telegraf drops rather than retries them, for a
/// bad `precision`, `source` or body encoding), 413 past the limit.
pub async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<WriteParams>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let identity = state.auth.device(token_from(&headers, params.p.as_deref()).as_deref())?;
    let unparsable =
        |message: String| ApiError::LineProtocol { message: format!("unable to parse: {message}") };
    let multiplier = precision(params.precision.as_deref()).map_err(unparsable)?;
    let body = read_body(&headers, body, state.limits).await.map_err(|e| match e {
        ApiError::BadRequest(message) => unparsable(message),
        other => other,
    })?;
    let source = match params.source.as_deref() {
        None => PROTOCOL,
        Some("import") => "import",
        Some("replay") => "replay",
        Some(other) => return Err(unparsable(format!("source={other:?} is not one of import, replay"))),
    };
    let now = now_nanos();
    let origin = Origin { rider: &identity.rider, device: &identity.device, source };
    let request = Request { multiplier, now, origin, ages: state.ingest.ages(now) };
    let (parsed, claimed) = state.field_types.check(|types| parse(&body, request, types));
    let committed = state
        .ingest
        .commit_lines(PROTOCOL, &identity, parsed.lines, parsed.count, &parsed.live, &parsed.late)
        .await;
    state.field_types.written(claimed, state.ingest.wal().committed_lsn());
    committed?;
    match parsed.first_error {
        None => Ok(StatusCode::NO_CONTENT),
        Some(first) => {
            m::rejected(PROTOCOL, "invalid", parsed.bad);
            let others = match parsed.bad {
                1 => String::new(),
                n => format!(" (and {} other errors)", n - 1),
            };
            let message = if parsed.count == 0 {
                format!("{first}{others}")
            } else {
                format!("partial write: {first}{others} dropped={}", parsed.bad)
            };
            Err(ApiError::LineProtocol { message })
        }
    }
}

/// Nanoseconds per unit of the `precision` parameter (v1 and v2 spellings).
fn precision(value: Option<&str>) -> Result<i64, String> {
    Ok(match value.unwrap_or("ns") {
        "" | "n" | "ns" => 1,
        "u" | "us" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(format!("invalid precision {other:?}: expected ns, us, ms, s, m or h")),
    })
}

/// What one request's lines are read with.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Nanoseconds per unit of the timestamps.
    pub multiplier: i64,
    /// The collector's clock when the request arrived: the time of lines without one.
    pub now: Nanos,
    /// Who sent them.
    pub origin: Origin<'a>,
    /// Where they stand against the clock.
    pub ages: Ages,
}

/// The valid lines of a body, encoded for the log, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid lines, normalised and tagged with their origin.
    pub lines: Vec<u8>,
    /// How many lines `lines` holds.
    pub count: usize,
    /// The live readings among them (gps, heart rate, power, cadence) recent enough to publish.
    pub live: Vec<Reading>,
    /// The spans of readings late for the rollups.
    pub late: LateSpans,
    /// Number of bad lines.
    pub bad: usize,
    /// The first bad line and why.
    pub first_error: Option<String>,
}

/// Parses, checks and encodes every line; a bad line does not stop the others.
///
/// This is the ingest hot path (bulk imports, Telegraf), so lines of known measurements
/// are checked and re-encoded straight from the parsed text, without building a
/// [`Reading`] for each (only those that will be published live).
pub fn parse(body: &[u8], request: Request<'_>, types: &mut Checker) -> Parsed {
    let mut parsed = Parsed { lines: Vec::with_capacity(body.len() + body.len() / 2), ..Parsed::default() };
    let tags = OriginTags::new(request.origin);
    // InfluxDB stamps the lines without a timestamp with its clock, cut to the precision.
    let now = request.now - request.now.rem_euclid(request.multiplier);
    let context = line::Context { request, now, origin_tags: &tags };
    for (number, raw) in lines(body).enumerate() {
        // A CRLF line ending: InfluxDB refuses the CR, the collector drops it.
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let start = raw.iter().position(|b| !matches!(b, b' ' | b'\t' | 0)).unwrap_or(raw.len());
        if start == raw.len() || raw[start] == b'#' {
            continue;
        }
        let result = match std::str::from_utf8(raw) {
            Ok(text) => {
                line::encode(text, &context, types, &mut parsed).map_err(|reason| (text.into(), reason))
            }
            Err(e) => Err((
                String::from_utf8_lossy(raw),
                format!("invalid UTF-8 at byte {}: velometry stores text only", e.valid_up_to()),
            )),
        };
        match result {
            Ok(()) => parsed.count += 1,
            Err((text, reason)) => {
                parsed.bad += 1;
                if parsed.first_error.is_none() {
                    let shown: String = text.chars().take(200).collect();
                    parsed.first_error =
                        Some(format!("unable to parse '{shown}' (line {}): {reason}", number + 1));
                }
            }
        }
    }
    parsed
}

#[cfg(test)]
mod tests;
