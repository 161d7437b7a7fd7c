//! Reporting back: a watcher's result becomes a receipt on Tollgate's
//! command API (`POST /v1/receipts`), which closes the loop.
//!
//! Every submission carries an idempotency key derived from the watcher,
//! the event it reacted to and what it reports, so a redelivered event
//! (after a crash, a rebalance or a retry) replays the first answer instead
//! of appending a second receipt.

use crate::error::HandlerError;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// A receipt to submit: the body of `POST /v1/receipts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiptDraft {
    /// The unit's canonical key (`name@version-release/platform/package`).
    pub unit: String,
    pub gate: String,
    pub action: String,
    /// Whether the action passed.
    pub multipass: bool,
    /// Facts about the action, checked against the gate's custom schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
}

/// A file the receipt refers to, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub uri: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ReceiptDraft {
    /// A receipt without custom facts or artifacts.
    pub fn new(unit: &str, gate: &str, action: &str, multipass: bool) -> ReceiptDraft {
        ReceiptDraft {
            unit: unit.to_owned(),
            gate: gate.to_owned(),
            action: action.to_owned(),
            multipass,
            custom: None,
            artifacts: Vec::new(),
        }
    }
}

/// What Tollgate answered to a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The receipt's id.
    pub receipt_id: String,
    /// Whether the server replayed an earlier answer for this key.
    pub replayed: bool,
    /// The whole answer (`id`, `unit_key`, `position`, `hash`, and the
    /// `events` the receipt caused, e.g. `StagePassed`).
    pub answer: Value,
}

/// Submits receipts to one Tollgate server with one bearer token.
#[derive(Clone)]
pub struct Reporter {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// Shows the server, never the token.
impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("server", &self.base).finish_non_exhaustive()
    }
}

/// The longest a submission may take before it counts as failed (and is
/// retried with the same idempotency key).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

impl Reporter {
    /// A reporter for `server` (e.g. `http://127.0.0.1:8080`) authenticating
    /// with `token` (a JWT with the submitter role).
    pub fn new(server: &str, token: &str) -> Result<Reporter, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate-watchers/", env!("CARGO_PKG_VERSION")))
            .timeout(SUBMIT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Reporter { http, base: server.trim_end_matches('/').to_owned(), token: token.to_owned() })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// Submits `receipt` once per `idempotency_key` (see
    /// [`idempotency_key`]), continuing `traceparent` when given.
    ///
    /// Transport failures, 429 and 5xx are [`SubmitError::Retryable`]; a
    /// key first used with a different receipt is [`SubmitError::KeyReused`];
    /// any other refusal (a 4xx naming the field and rule) is
    /// [`SubmitError::Refused`]. Each converts into the [`HandlerError`]
    /// it should be, so `?` in a handler does the right thing.
    pub async fn submit(
        &self,
        receipt: &ReceiptDraft,
        idempotency_key: &str,
        traceparent: Option<&str>,
    ) -> Result<Submitted, SubmitError> {
        let mut request = self
            .http
            .post(format!("{}/v1/receipts", self.base))
            .bearer_auth(&self.token)
            .header("idempotency-key", idempotency_key)
            .json(receipt);
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        let response =
            request.send().await.map_err(|e| SubmitError::Retryable(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let body = response
            .text()
            .await
            .map_err(|e| SubmitError::Retryable(format!("reading the answer from {}: {e}", self.base)))?;
        if status.is_success() {
            let answer: Value = serde_json::from_str(&body)
                .map_err(|e| SubmitError::Retryable(format!("the answer is not JSON: {e}")))?;
            let receipt_id = answer.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            return Ok(Submitted { receipt_id, replayed, answer });
        }
        let problem: Option<Value> = serde_json::from_str(&body).ok();
        let detail = problem_detail(problem.as_ref(), &body);
        let message = format!("receipt for {} at gate {} refused ({status}): {detail}", receipt.unit, receipt.gate);
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SubmitError::Retryable(message))
        } else if status.as_u16() == 422 && names_field(problem.as_ref(), "Idempotency-Key") {
            Err(SubmitError::KeyReused(message))
        } else {
            Err(SubmitError::Refused { status: status.as_u16(), message })
        }
    }
}

/// Why a receipt was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Unreachable, rate-limited or failing server: try again later.
    #[error("{0}")]
    Retryable(String),
    /// The idempotency key was first used with a different receipt: this
    /// event was already reported (a redelivered event whose rerun came
    /// out differently), and the first receipt stands.
    #[error("{0}")]
    KeyReused(String),
    /// The server refused the receipt (an unknown gate or action, a body
    /// breaking a rule): sending it again cannot help.
    #[error("{message}")]
    Refused { status: u16, message: String },
}

impl From<SubmitError> for HandlerError {
    fn from(e: SubmitError) -> HandlerError {
        match e {
            SubmitError::Retryable(_) => HandlerError::retryable(e),
            SubmitError::KeyReused(_) | SubmitError::Refused { .. } => HandlerError::permanent(e),
        }
    }
}

/// Whether a problem+json names `field` among its `errors`.
fn names_field(problem: Option<&Value>, field: &str) -> bool {
    let errors = problem.and_then(|p| p.get("errors")).and_then(Value::as_array);
    errors.into_iter().flatten().any(|e| e.get("field").and_then(Value::as_str) == Some(field))
}

/// The idempotency key of what `watcher` reports about `event_id`;
/// `what` tells apart several receipts for one event (a suite, a case).
/// Keys longer than the server's 255 characters keep a digest suffix.
pub fn idempotency_key(watcher: &str, event_id: &str, what: &str) -> String {
    let key: String = format!("{watcher}:{event_id}:{what}").chars().filter(|c| c.is_ascii_graphic()).collect();
    if key.len() <= 255 {
        return key;
    }
    // Printable ASCII only, so byte slicing stays on char boundaries.
    let digest = fnv1a(key.as_bytes());
    format!("{}~{digest:016x}", &key[..255 - 17])
}

/// A stable 64-bit digest, enough to keep long keys distinct.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The `detail` of a problem+json body, or the body itself.
fn problem_detail(problem: Option<&Value>, body: &str) -> String {
    problem
        .and_then(|p| p.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_printable_and_bounded() {
        assert_eq!(idempotency_key("promote", "01J", "testing"), "promote:01J:testing");
        assert_eq!(idempotency_key("w", "e", "a case name"), "w:e:acasename");
        let long = idempotency_key("w", "e", &"x".repeat(400));
        assert_eq!(long.len(), 255);
        assert_ne!(long, idempotency_key("w", "e", &"x".repeat(401)));
        assert_eq!(long, idempotency_key("w", "e", &"x".repeat(400)));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let reporter = Reporter::new("http://127.0.0.1:1", "secret-token").unwrap();
        let shown = format!("{reporter:?}");
        assert!(shown.contains("127.0.0.1:1") && !shown.contains("secret-token"), "{shown}");
    }

    #[test]
    fn drafts_serialize_as_the_receipt_schema_wants() {
        let mut draft = ReceiptDraft::new("a@1-1/x86_64/rpm", "promotion", "promote-testing", true);
        assert_eq!(
            serde_json::to_value(&draft).unwrap(),
            serde_json::json!({"unit": "a@1-1/x86_64/rpm", "gate": "promotion", "action": "promote-testing", "multipass": true})
        );
        draft.artifacts.push(Artifact { uri: "file:///r/a.rpm".into(), sha256: "ab".repeat(32), name: None });
        assert_eq!(serde_json::to_value(&draft).unwrap()["artifacts"][0]["uri"], "file:///r/a.rpm");
    }
}
