//! Who is calling and with which request: what goes into each event's
//! metadata, and the optional idempotency key.

use crate::errors::idempotency_error;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{json, Value};
use tollgate_api_common::{ApiError, RequestId};
use tollgate_auth::Principal;

/// The request's context as recorded in event metadata.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    /// W3C trace context, kept only when well formed.
    pub traceparent: Option<String>,
    pub idempotency_key: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let traceparent = header("traceparent").filter(|t| valid_traceparent(t)).map(str::to_owned);
        let idempotency_key = match header("idempotency-key") {
            None => None,
            Some(k) if valid_key(k) => Some(k.to_owned()),
            Some(_) => return Err(idempotency_error("must be 1 to 255 visible ASCII characters")),
        };
        if parts.headers.contains_key("idempotency-key") && idempotency_key.is_none() {
            return Err(idempotency_error("must be 1 to 255 visible ASCII characters"));
        }
        Ok(RequestContext {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default(),
            traceparent,
            idempotency_key,
        })
    }
}

impl RequestContext {
    /// Metadata stored with every event a request appends.
    pub fn metadata(&self, principal: &Principal) -> Value {
        let mut meta = json!({
            "request_id": self.request_id,
            "principal": principal.identity(),
        });
        if let Some(tp) = &self.traceparent {
            meta["traceparent"] = json!(tp);
        }
        if let Some(key) = &self.idempotency_key {
            meta["idempotency_key"] = json!(key);
        }
        meta
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, per W3C Trace Context.
fn valid_traceparent(tp: &str) -> bool {
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4 && hex(parts[0], 2) && hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2)
}
