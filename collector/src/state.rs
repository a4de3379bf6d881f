//! What every handler shares. Its own module, below both the router and the handlers, so
//! that dependencies run one way: `app` (start-up) → `http` (the router) → `ingest/*` (the
//! handlers) → `state`.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::field_types::FieldTypes;
use crate::ingest::{BodyLimits, Ingest};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Token checks and rate limits.
    pub auth: Arc<Authenticator>,
    /// The durable path.
    pub ingest: Ingest,
    /// Body limits.
    pub limits: BodyLimits,
    /// The field types the sink holds, which line protocol is checked against.
    pub field_types: Arc<FieldTypes>,
}
