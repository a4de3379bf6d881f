//! How a service authenticates to InfluxDB. The collector writes and the query service reads
//! and writes rollups, against 1.x (user and password, or nothing), 2.x and 3.x (a token).

/// Credentials for InfluxDB.
#[derive(Debug, Clone)]
pub enum InfluxAuth {
    /// No credentials (InfluxDB 1.x with auth off).
    None,
    /// `Authorization: Token …` (2.x, 3.x).
    Token(String),
    /// User and password (1.x with auth on).
    UserPassword(String, String),
}

impl InfluxAuth {
    /// The credentials that `--influx-token`, `--influx-user` and `--influx-password` give.
    ///
    /// # Errors
    /// A message naming the flags that do not fit together.
    pub fn from_flags(
        token: Option<String>,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<InfluxAuth, String> {
        match (token, user, password) {
            (Some(token), None, None) => Ok(InfluxAuth::Token(token)),
            (None, Some(user), Some(password)) => Ok(InfluxAuth::UserPassword(user, password)),
            (None, None, None) => Ok(InfluxAuth::None),
            (Some(_), _, _) => Err("give either --influx-token or --influx-user/--influx-password".into()),
            _ => Err("--influx-user and --influx-password go together".into()),
        }
    }

    /// `request` with these credentials.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            InfluxAuth::None => request,
            InfluxAuth::Token(t) => request.header(reqwest::header::AUTHORIZATION, format!("Token {t}")),
            InfluxAuth::UserPassword(u, p) => request.basic_auth(u, Some(p)),
        }
    }
}

/// An error with its sources (a connection refused under a request error), for logs and
/// messages about InfluxDB.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
