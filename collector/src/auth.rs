//! Who is writing: the device (or organiser) token, from any of the places real clients put
//! it, checked against the riders file in force, then the per-token rate limit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use velometry_core::ids::OrganiserId;
use velometry_core::riders::reload::SharedRegistry;
use velometry_core::riders::{DeviceIdentity, Organiser, OwnTracksKey, Registry, Service};

use crate::error::ApiError;

/// A token from `Authorization: Token|Bearer …`, Basic auth (the password, or the user when
/// the password is empty), or the InfluxDB v1 `p` query parameter.
pub fn token_from(headers: &HeaderMap, query_password: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "token" | "bearer" if !rest.is_empty() => return Some(rest.to_owned()),
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
                let decoded = String::from_utf8(decoded).ok()?;
                let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                let token = if password.is_empty() { user } else { password };
                return (!token.is_empty()).then(|| token.to_owned());
            }
            _ => {}
        }
    }
    query_password.filter(|p| !p.is_empty()).map(str::to_owned)
}

/// Checks tokens and rate limits.
pub struct Authenticator {
    registry: SharedRegistry,
    limiter: DefaultKeyedRateLimiter<DeviceIdentity>,
    organisers: DefaultKeyedRateLimiter<OrganiserId>,
}

impl Authenticator {
    /// An authenticator allowing each token `per_second` requests with bursts of `burst`,
    /// against the riders file in force in `registry` at each request.
    pub fn new(registry: SharedRegistry, per_second: NonZeroU32, burst: NonZeroU32) -> Authenticator {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Authenticator {
            registry,
            limiter: governor::RateLimiter::keyed(quota),
            organisers: governor::RateLimiter::keyed(quota),
        }
    }

    /// The riders file in force.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.current()
    }

    /// The device a token belongs to, if the token is known and within its rate.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] for a missing or unknown token, [`ApiError::RateLimited`]
    /// past the token's rate.
    pub fn device(&self, token: Option<&str>) -> Result<DeviceIdentity, ApiError> {
        let token = token.ok_or_else(|| {
            ApiError::Unauthorized(
                "authorization required: send the device token as `Authorization: Token <token>`, \
                 Basic auth (token as password) or the `p` parameter"
                    .into(),
            )
        })?;
        let registry = self.registry.current();
        let identity = registry
            .authenticate_device(token)
            .ok_or_else(|| ApiError::Unauthorized("authorization failed: unknown device token".into()))?;
        if let Err(not_until) = self.limiter.check_key(identity) {
            let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::RateLimited(wait));
        }
        Ok(identity.clone())
    }

    /// The organiser a token belongs to, in the riders file in force (returned with it), if
    /// the token is known and within its rate.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] for a missing token or one that is no organiser's,
    /// [`ApiError::RateLimited`] past the token's rate.
    pub fn organiser(&self, token: Option<&str>) -> Result<(Organiser, Arc<Registry>), ApiError> {
        let token = token.ok_or_else(|| {
            ApiError::Unauthorized(
                "authorization required: send an organiser token as `Authorization: Token <token>`".into(),
            )
        })?;
        let registry = self.registry.current();
        let organiser = registry.authenticate_organiser(token).cloned().ok_or_else(|| {
            ApiError::Unauthorized(
                "authorization failed: not an organiser token (an [[organiser]] of the riders file)".into(),
            )
        })?;
        if let Err(not_until) = self.organisers.check_key(&organiser.id) {
            let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::RateLimited(wait));
        }
        Ok((organiser, registry))
    }

    /// The service of a token (the progress service), with the registry it was found in.
    /// Services are not rate-limited: one writes for every entrant of its events.
    ///
    /// # Errors
    /// 401 without a token, or with one that is no service's.
    pub fn service(&self, token: Option<&str>) -> Result<(Service, Arc<Registry>), ApiError> {
        let token = token.ok_or_else(|| {
            ApiError::Unauthorized(
                "authorization required: send a service token as `Authorization: Token <token>`".into(),
            )
        })?;
        let registry = self.registry.current();
        let service = registry.authenticate_service(token).cloned().ok_or_else(|| {
            ApiError::Unauthorized(
                "authorization failed: not a service token (a [[service]] of the riders file)".into(),
            )
        })?;
        Ok((service, registry))
    }

    /// The key the device's OwnTracks app encrypts with, if the riders file gives one.
    pub fn owntracks_key(&self, device: &DeviceIdentity) -> Option<OwnTracksKey> {
        self.registry.current().owntracks_key(device).cloned()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn reads_every_place_clients_put_a_token() {
        assert_eq!(token_from(&headers("Token abc"), None).as_deref(), Some("abc"));
        assert_eq!(token_from(&headers("Bearer abc"), None).as_deref(), Some("abc"));
        // "user:abc" and "abc:" in base64.
        assert_eq!(token_from(&headers("Basic dXNlcjphYmM="), None).as_deref(), Some("abc"));
        assert_eq!(token_from(&headers("Basic YWJjOg=="), None).as_deref(), Some("abc"));
        assert_eq!(token_from(&HeaderMap::new(), Some("abc")).as_deref(), Some("abc"));
        assert_eq!(token_from(&HeaderMap::new(), Some("")), None);
    }
}
