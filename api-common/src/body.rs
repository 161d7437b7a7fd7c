//! Reading a JSON body: the size limit answered as 413, the media type
//! checked, the JSON parsed and scanned for binary data; schema checks
//! follow in the handler's service.

use crate::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde_json::Value;
use tollgate_domain::find_blob;

/// Requests and events are limited to 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A parsed JSON body with its media type and raw bytes (the bytes feed
/// idempotency hashes). An empty body reads as `{}`.
#[derive(Debug)]
pub struct JsonBody {
    pub media_type: String,
    pub value: Value,
    pub raw: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit: MAX_BODY_BYTES }
            } else {
                ApiError::MalformedJson(rejection.body_text())
            }
        })?;
        if raw.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge { limit: MAX_BODY_BYTES });
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody { media_type, value: Value::Object(Default::default()), raw });
        }
        let json_like = media_type == "application/json" || media_type.ends_with("+json");
        if !json_like {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{media_type:?}; send application/json (or application/cloudevents+json for receipts)"
            )));
        }
        let value = serde_json::from_slice(&raw).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        // Every string of every body, not only receipts' custom sections:
        // binary data has no place anywhere in the log.
        if let Some(blob) = find_blob(&value, "") {
            return Err(ApiError::invalid(blob.path, blob.rule));
        }
        Ok(JsonBody { media_type, value, raw })
    }
}
