//! The subset of Jira's REST API v2 the watcher speaks: create an issue,
//! read its status, comment on it.

use crate::config::{is_issue_key, Jira};
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;
use tollgate_watchers::{secret_from_env, ConfigError, HandlerError};

/// A Jira request that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JiraError {
    /// No answer: connection refused, timeout, reset.
    #[error("cannot reach Jira to {operation}: {source}")]
    Transport { operation: String, source: reqwest::Error },
    /// Jira answered with an error status; `detail` holds its
    /// `errorMessages` and `errors`.
    #[error("Jira refused to {operation} ({status}): {detail}")]
    Refused { operation: String, status: u16, detail: String },
    /// A success status whose body is not what the API documents (a login
    /// page from a proxy, say).
    #[error("Jira's answer to {operation} is not the documented one: {reason}")]
    BadAnswer { operation: String, reason: String },
    /// A stored key that is not shaped like an issue key; never sent.
    #[error("{key:?} is not a Jira issue key")]
    BadKey { key: String },
}

impl JiraError {
    /// Transport failures, 429, 5xx and odd answers may go away; any other
    /// refusal will not.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            JiraError::Transport { .. } | JiraError::BadAnswer { .. } => true,
            JiraError::Refused { status, .. } => *status == 429 || *status >= 500,
            JiraError::BadKey { .. } => false,
        }
    }
}

impl From<JiraError> for HandlerError {
    fn from(e: JiraError) -> HandlerError {
        if e.is_retryable() {
            HandlerError::retryable(e)
        } else {
            HandlerError::permanent(e)
        }
    }
}

/// How requests authenticate. Its `Debug` never shows the secrets.
enum Credentials {
    Basic { user: String, token: String },
    Bearer { token: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { .. } => f.write_str("Basic(..)"),
            Credentials::Bearer { .. } => f.write_str("Bearer(..)"),
        }
    }
}

/// A client for one Jira project.
#[derive(Debug)]
pub(crate) struct JiraClient {
    http: reqwest::Client,
    base: String,
    project: String,
    issue_type: String,
    credentials: Credentials,
}

impl JiraClient {
    /// Reads the credentials from the environment variables `config.auth`
    /// names.
    pub(crate) fn new(config: &Jira) -> Result<JiraClient, ConfigError> {
        let token = secret_from_env("jira.auth.token_env", &config.auth.token_env)?;
        let credentials = match &config.auth.user_env {
            Some(var) => Credentials::Basic { user: secret_from_env("jira.auth.user_env", var)?, token },
            None => Credentials::Bearer { token },
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate-ticket-watcher/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_millis(config.timeout_ms))
            // A redirect would carry the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::new("jira", format!("cannot build an HTTP client: {e}")))?;
        Ok(JiraClient {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            project: config.project.clone(),
            issue_type: config.issue_type.clone(),
            credentials,
        })
    }

    /// Where a person looks at the issue.
    pub(crate) fn browse_url(&self, key: &str) -> String {
        format!("{}/browse/{key}", self.base)
    }

    /// Opens an issue in the project; returns its key.
    pub(crate) async fn create_issue(&self, summary: &str, description: &str) -> Result<String, JiraError> {
        let operation = "create an issue".to_owned();
        let body = json!({"fields": {
            "project": {"key": self.project},
            "summary": summary,
            "description": description,
            "issuetype": {"name": self.issue_type},
        }});
        let request = self.http.post(format!("{}/rest/api/2/issue", self.base)).json(&body);
        let answer = self.send(request, &operation).await?;
        match answer.get("key").and_then(Value::as_str) {
            Some(key) if is_issue_key(key) => Ok(key.to_owned()),
            _ => Err(JiraError::BadAnswer { operation, reason: "no valid issue key in it".to_owned() }),
        }
    }

    /// The name of the issue's status (`fields.status.name`).
    pub(crate) async fn status(&self, key: &str) -> Result<String, JiraError> {
        let operation = format!("read the status of {key}");
        let request =
            self.http.get(format!("{}/rest/api/2/issue/{}", self.base, checked(key)?)).query(&[("fields", "status")]);
        let answer = self.send(request, &operation).await?;
        match answer.pointer("/fields/status/name").and_then(Value::as_str) {
            Some(name) => Ok(name.to_owned()),
            None => Err(JiraError::BadAnswer { operation, reason: "no fields.status.name in it".to_owned() }),
        }
    }

    /// Adds a comment to the issue.
    pub(crate) async fn comment(&self, key: &str, text: &str) -> Result<(), JiraError> {
        let operation = format!("comment on {key}");
        let url = format!("{}/rest/api/2/issue/{}/comment", self.base, checked(key)?);
        self.send(self.http.post(url).json(&json!({"body": text})), &operation).await.map(drop)
    }

    /// Authenticates and sends `request`; a success's body as JSON.
    async fn send(&self, request: reqwest::RequestBuilder, operation: &str) -> Result<Value, JiraError> {
        let request = match &self.credentials {
            Credentials::Basic { user, token } => request.basic_auth(user, Some(token)),
            Credentials::Bearer { token } => request.bearer_auth(token),
        };
        let transport = |source| JiraError::Transport { operation: operation.to_owned(), source };
        let response = request.header("accept", "application/json").send().await.map_err(transport)?;
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        if !status.is_success() {
            let detail = error_detail(&body);
            return Err(JiraError::Refused { operation: operation.to_owned(), status: status.as_u16(), detail });
        }
        serde_json::from_str(&body)
            .map_err(|e| JiraError::BadAnswer { operation: operation.to_owned(), reason: format!("not JSON: {e}") })
    }
}

/// Stored keys are checked again before they become part of a path.
fn checked(key: &str) -> Result<&str, JiraError> {
    if is_issue_key(key) {
        Ok(key)
    } else {
        Err(JiraError::BadKey { key: key.to_owned() })
    }
}

/// Jira's error body (`{"errorMessages": [..], "errors": {field: message}}`)
/// in one line, or the start of whatever else came back.
pub(crate) fn error_detail(body: &str) -> String {
    let Ok(parsed) = serde_json::from_str::<Value>(body) else {
        return body.chars().take(300).collect();
    };
    let messages =
        parsed.get("errorMessages").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    let fields = parsed
        .get("errors")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(field, message)| format!("{field}: {}", message.as_str().unwrap_or_default()));
    let parts: Vec<String> = messages.map(str::to_owned).chain(fields).collect();
    if parts.is_empty() {
        body.chars().take(300).collect()
    } else {
        parts.join("; ")
    }
}
