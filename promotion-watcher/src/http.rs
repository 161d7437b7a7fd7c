//! A repository manager that promotes on request.
//!
//! Each promotion or withdrawal is one `POST` of
//! `{"action": "promote"|"withdraw", "unit", "from", "to", "event_id"}`.
//! A promotion expects a 2xx JSON answer `{"uri", "sha256"}` (and
//! optionally `"name"`); a withdrawal expects any 2xx. The endpoint must
//! treat a repeated request (same `event_id`) as done, because events can
//! be delivered again. Transport failures, timeouts, 429 and 5xx are
//! retried; other statuses and malformed answers are permanent.

use crate::error::PromotionError;
use crate::{Promoted, Withdrawn};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A bearer token; never printed.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    pub(crate) fn new(secret: String) -> Token {
        Token(secret)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// The HTTP repository with its two channels.
#[derive(Debug, Clone)]
pub(crate) struct HttpRepo {
    http: reqwest::Client,
    url: reqwest::Url,
    token: Option<Token>,
    from: String,
    to: String,
}

#[derive(Serialize)]
struct Request<'a> {
    action: &'a str,
    unit: &'a str,
    from: &'a str,
    to: &'a str,
    event_id: &'a str,
}

#[derive(Deserialize)]
struct PromoteAnswer {
    uri: String,
    sha256: String,
    #[serde(default)]
    name: Option<String>,
}

impl HttpRepo {
    /// A client for `url`; fails only when no HTTP client can be built.
    pub(crate) fn new(
        url: reqwest::Url,
        token: Option<Token>,
        timeout_ms: u64,
        from: String,
        to: String,
    ) -> Result<HttpRepo, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate-promotion-watcher/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_millis(timeout_ms))
            // A redirect could carry the token elsewhere: follow none.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpRepo { http, url, token, from, to })
    }

    /// Asks the repository to promote `unit`.
    pub(crate) async fn promote(&self, unit: &str, event_id: &str) -> Result<Promoted, PromotionError> {
        let body = self.call("promote", unit, event_id).await?;
        let answer: PromoteAnswer =
            serde_json::from_str(&body).map_err(|e| PromotionError::BadAnswer(format!("{e}: {}", excerpt(&body))))?;
        let sha256 = answer.sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PromotionError::BadAnswer(format!("sha256 {:?} is not 64 hex characters", answer.sha256)));
        }
        if answer.uri.trim().is_empty() {
            return Err(PromotionError::BadAnswer("uri is empty".to_owned()));
        }
        Ok(Promoted { uri: answer.uri, sha256, name: answer.name, already: false })
    }

    /// Asks the repository to withdraw `unit` from the target channel.
    pub(crate) async fn withdraw(&self, unit: &str, event_id: &str) -> Result<Withdrawn, PromotionError> {
        self.call("withdraw", unit, event_id).await?;
        Ok(Withdrawn { moved_to: None, already: false })
    }

    /// Sends one request; the body of a 2xx answer.
    async fn call(&self, action: &str, unit: &str, event_id: &str) -> Result<String, PromotionError> {
        let body = Request { action, unit, from: &self.from, to: &self.to, event_id };
        let mut request = self.http.post(self.url.clone()).json(&body);
        if let Some(Token(token)) = &self.token {
            request = request.bearer_auth(token);
        }
        let unreachable =
            |e: reqwest::Error| PromotionError::Unreachable { url: self.url.to_string(), reason: e.to_string() };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(PromotionError::Refused { status: status.as_u16(), detail: excerpt(&text) });
        }
        Ok(text)
    }
}

/// The start of an answer, for error messages.
fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests;
