//! OAuth 2.0 refresh tokens, as Fitbit and Strava issue them: an access token that expires
//! within hours and a refresh token that is replaced at every refresh (the old one stops
//! working). The current pair lives in the source's state under `"oauth"`, which the runner
//! saves even when a run fails, so a rotated refresh token is never lost; the refresh token
//! in the sources file is only the first one.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use velometry_core::time::now_nanos;

use super::Failure;

/// How the client proves who it is to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (Fitbit).
    Basic,
    /// `client_id` and `client_secret` in the form (Strava).
    Form,
}

/// A token endpoint and the client's credentials.
#[derive(Debug, Clone)]
pub struct OAuth {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    first_refresh_token: String,
    auth: ClientAuth,
}

/// The current tokens, as saved in the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
    /// Unix seconds.
    expires_at: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: Option<i64>,
    expires_at: Option<i64>,
}

impl OAuth {
    /// A client of `token_url`.
    pub fn new(
        http: reqwest::Client,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        auth: ClientAuth,
    ) -> OAuth {
        OAuth {
            http,
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            first_refresh_token: refresh_token.to_owned(),
            auth,
        }
    }

    /// An access token valid for at least another minute: the saved one, or a fresh one
    /// (saved into `state`).
    ///
    /// # Errors
    /// The token endpoint refusing (a revoked grant: [`Failure::Auth`]) or failing.
    pub async fn access_token(&self, state: &mut Value) -> Result<String, Failure> {
        let now = now_nanos() / 1_000_000_000;
        match saved(state) {
            Some(tokens) if tokens.expires_at > now + 60 => Ok(tokens.access_token),
            _ => self.refresh(state).await,
        }
    }

    /// Refreshes now (after a 401 with a token that should have been valid).
    ///
    /// # Errors
    /// As [`OAuth::access_token`].
    pub async fn refresh(&self, state: &mut Value) -> Result<String, Failure> {
        let refresh_token =
            saved(state).map_or_else(|| self.first_refresh_token.clone(), |t| t.refresh_token);
        let mut form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token)];
        let mut request = self.http.post(&self.token_url).timeout(Duration::from_secs(30));
        match self.auth {
            ClientAuth::Basic => request = request.basic_auth(&self.client_id, Some(&self.client_secret)),
            ClientAuth::Form => {
                form.push(("client_id", self.client_id.clone()));
                form.push(("client_secret", self.client_secret.clone()));
            }
        }
        let response = request.form(&form).send().await.map_err(|e| Failure::Network(e.to_string()))?;
        let status = response.status();
        if status.as_u16() == 400 || status.as_u16() == 401 {
            let body = response.text().await.unwrap_or_default();
            return Err(Failure::Auth(format!(
                "the refresh token was refused ({status}: {}); authorise again and put the new refresh token in the sources file, then delete the source's state file",
                body.trim()
            )));
        }
        if let Some(failure) = Failure::of_status(&response) {
            return Err(failure);
        }
        let answer: TokenAnswer =
            response.json().await.map_err(|e| Failure::BadResponse(format!("token answer: {e}")))?;
        let now = now_nanos() / 1_000_000_000;
        let tokens = Tokens {
            expires_at: answer.expires_at.or(answer.expires_in.map(|s| now + s)).unwrap_or(now + 3600),
            access_token: answer.access_token,
            refresh_token: answer.refresh_token,
        };
        let access = tokens.access_token.clone();
        if !state.is_object() {
            *state = Value::Object(serde_json::Map::new());
        }
        if let Some(object) = state.as_object_mut() {
            object.insert("oauth".into(), serde_json::to_value(tokens).unwrap_or(Value::Null));
        }
        Ok(access)
    }
}

fn saved(state: &Value) -> Option<Tokens> {
    serde_json::from_value(state.get("oauth")?.clone()).ok()
}
