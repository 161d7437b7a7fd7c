//! The HTTP client behind the client commands: bearer token, JSON in and
//! out, and problem+json answers turned into readable errors.

use crate::cli::ClientArgs;
use anyhow::{anyhow, bail, Context};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// A configured client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base: args.server.trim_end_matches('/').to_owned(), token: args.token.clone() })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends and returns the JSON answer, or the server's problem as an error.
    pub async fn send(&self, builder: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send_raw(builder).await?;
        let text = response.text().await.context("reading the answer")?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).context("the server's answer is not JSON")
    }

    /// Sends and returns the response when it succeeded.
    pub async fn send_raw(&self, builder: RequestBuilder) -> anyhow::Result<Response> {
        let response = builder.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(problem(status, &body))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn require_token(&self) -> anyhow::Result<()> {
        if self.token.is_none() {
            bail!("no token: pass --token or set TOLLGATE_TOKEN (tollgate token mint makes one)");
        }
        Ok(())
    }
}

/// Turns a problem+json answer into one readable error.
fn problem(status: reqwest::StatusCode, body: &str) -> anyhow::Error {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let detail = parsed.as_ref().and_then(|p| p.get("detail")).and_then(Value::as_str).unwrap_or(body);
    anyhow!("the server refused the request ({status}): {detail}")
}
