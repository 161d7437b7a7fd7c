//! Reading a JSON body: the size limit answered as 413 (on the wire and
//! again after gzip), the media type checked, the nesting bounded before
//! parsing, the JSON parsed and scanned for binary data; schema checks
//! follow in the handler's service.

use crate::encoding::{coding, gunzip, Coding};
use crate::nesting::{nested_deeper_than, MAX_JSON_DEPTH};
use crate::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde_json::Value;
use tollgate_domain::find_blob;

/// Requests and events are limited to 1 MiB, compressed or not.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A DSSE envelope (a producer-signed receipt). Its payload is base64 by
/// definition, so the envelope is spared the blob scan; the receipt inside
/// is decoded and read with [`parse_json`], scan included.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A parsed JSON body with its media type and raw bytes (the bytes feed
/// idempotency hashes; a gzip body's are the inflated JSON, so the same
/// request hashes the same however it travelled). An empty body reads as `{}`.
#[derive(Debug)]
pub struct JsonBody {
    pub media_type: String,
    pub value: Value,
    pub raw: Bytes,
}

/// A receipt's body: JSON like any other, or a DSSE envelope, the one
/// body spared the blob scan (the receipt inside is scanned when opened).
/// Every other endpoint takes [`JsonBody`], which refuses envelopes.
#[derive(Debug)]
pub struct ReceiptBody(pub JsonBody);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonBody::read(req, state, false).await
    }
}

impl<S: Send + Sync> FromRequest<S> for ReceiptBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonBody::read(req, state, true).await.map(ReceiptBody)
    }
}

impl JsonBody {
    async fn read<S: Send + Sync>(req: Request, state: &S, envelopes: bool) -> Result<Self, ApiError> {
        let media_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        if media_type == DSSE_ENVELOPE && !envelopes {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{media_type:?}: only receipts (POST /v1/receipts) may be sent as DSSE envelopes"
            )));
        }
        // Before the body is read: an unknown coding costs nothing.
        let coding = coding(req.headers())?;
        // The server's DefaultBodyLimit bounds this read, whether the body
        // has a Content-Length or arrives in chunks.
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
        let raw = match coding {
            Coding::Identity => raw,
            Coding::Gzip => Bytes::from(gunzip(&raw, MAX_BODY_BYTES)?),
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody { media_type, value: Value::Object(Default::default()), raw });
        }
        let json_like = media_type == "application/json" || media_type.ends_with("+json");
        if !json_like {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{media_type:?}; send application/json (or application/cloudevents+json for receipts)"
            )));
        }
        let value = if media_type == DSSE_ENVELOPE { parse_unscanned(&raw)? } else { parse_json(&raw)? };
        Ok(JsonBody { media_type, value, raw })
    }
}

/// JSON as every body is read: nesting bounded before parsing, then
/// parsed (an object naming a key twice is malformed), then every string (not only receipts' custom sections) scanned
/// for binary data, which has no place anywhere in the log.
pub fn parse_json(raw: &[u8]) -> Result<Value, ApiError> {
    let value = parse_unscanned(raw)?;
    if let Some(blob) = find_blob(&value, "") {
        return Err(ApiError::invalid(blob.path, blob.rule));
    }
    Ok(value)
}

fn parse_unscanned(raw: &[u8]) -> Result<Value, ApiError> {
    if nested_deeper_than(raw, MAX_JSON_DEPTH) {
        return Err(ApiError::BadRequest(format!(
            "the JSON body is nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays"
        )));
    }
    // A key named twice in one object is refused: readers disagree on
    // which of the two counts.
    tollgate_eventlog::strict_json::parse_strict_slice(raw).map_err(|e| ApiError::MalformedJson(e.to_string()))
}
