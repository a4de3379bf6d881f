//! OAuth 2.0 refresh tokens, as Fitbit and Strava issue them: an access token that expires
//! within hours and a refresh token that is replaced at every refresh (the old one stops
//! working). The current pair lives in the source's state under `"oauth"`, which the runner
//! saves even when a run fails, so a rotated refresh token is never lost; the refresh token
//! in the sources file is only the first one.

use std::path::PathBuf;
use std::sync::OnceLock;
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
#[derive(Clone)]
pub struct OAuth {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    first_refresh_token: String,
    auth: ClientAuth,
    /// The source's state file: a rotated refresh token is written there the moment it
    /// arrives, because the provider has already invalidated the old one.
    state_file: OnceLock<PathBuf>,
}

impl std::fmt::Debug for OAuth {
    // Secrets and tokens stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish()
    }
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
            state_file: OnceLock::new(),
        }
    }

    /// Saves rotated tokens into `path` (the source's state file) as soon as they arrive.
    pub fn keep_in(&self, path: PathBuf) {
        let _ = self.state_file.set(path);
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
        if let Some(path) = self.state_file.get() {
            // The rest of the state on disk stays as it was: progress moves only with the
            // readings it describes.
            let saved = super::with_oauth(super::load_state(path), state);
            if let Err(e) = super::save_state(path, &saved) {
                tracing::error!(file = %path.display(), error = %e,
                    "Cannot save a rotated OAuth refresh token (is the disk full?); it is kept in memory and saved at the next run, but if the collector stops before then, authorise the source again.");
            }
        }
        Ok(access)
    }
}

fn saved(state: &Value) -> Option<Tokens> {
    serde_json::from_value(state.get("oauth")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use axum::routing::post;
    use axum::{Form, Json, Router};
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_rotated_token_is_on_disk_at_once_and_the_progress_on_disk_is_left_alone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        let app = Router::new().route(
            "/token",
            post(|Form(form): Form<std::collections::BTreeMap<String, String>>| async move {
                let next = format!("{}+", form["refresh_token"]);
                Json(json!({"access_token": "a1", "refresh_token": next, "expires_in": 3600}))
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fitbit.json");
        super::super::save_state(&path, &json!({"since": 5})).expect("saved");

        let oauth = OAuth::new(reqwest::Client::new(), &url, "id", "secret", "r0", ClientAuth::Form);
        oauth.keep_in(path.clone());
        // Progress made in memory during the run, not yet stored with its readings.
        let mut state = json!({"since": 9});
        assert_eq!(oauth.access_token(&mut state).await.expect("token"), "a1");
        let on_disk: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        assert_eq!(on_disk["oauth"]["refresh_token"], "r0+", "the rotated token, at once");
        assert_eq!(on_disk["since"], 5, "the progress on disk moves only with its readings");
        assert_eq!(state["since"], 9);
        oauth.refresh(&mut state).await.expect("token");
        let on_disk: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        assert_eq!(on_disk["oauth"]["refresh_token"], "r0++", "refreshed from the rotated one");
        assert!(!format!("{oauth:?}").contains("secret"));
    }
}
